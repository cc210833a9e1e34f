using Jevons.Training.Autograd;

namespace Jevons.Training;

/// <summary>A batch of <see cref="Batch"/> sequences of <see cref="Sequence"/> positions, flattened row-major.</summary>
public sealed record TrainingBatch(int Batch, int Sequence, int[] Inputs, int[] Targets, float[] Mask)
{
    public int Tokens => Batch * Sequence;
}

/// <summary>What one forward saw: losses, accuracies, and per MoE layer the tokens each expert received.</summary>
public sealed record ForwardStats(LossStats Main, LossStats Mtp, IReadOnlyDictionary<int, int[]> ExpertLoad);

/// <summary>
/// DeepSeek-V3 for training, written once with activations on the tape: the engine's forward
/// (Models/DeepSeek.cs with Blocks/Mla.cs in its decompressed form, Moe.cs, Router.cs) op for op, plus V3's
/// MTP module. Parameters carry their Hugging Face names, so export and checkpoints are name → tensor.
/// With <see cref="TinyDeepSeekConfig.Architecture"/> "qwen2" the same class is the R1-Distill student in Qwen2's
/// architecture (Models/Llama.cs's qwen2 family: GQA with q/k/v biases, split-half RoPE, dense SwiGLU).
/// </summary>
public sealed class TinyDeepSeek
{
    readonly Dictionary<string, Tensor> _params = new(StringComparer.Ordinal);
    readonly float[] _invFreq;

    public TinyDeepSeek(TinyDeepSeekConfig config, TrainRandom random)
    {
        config.Validate();
        Config = config;
        var c = config;
        int rotary = c.IsQwen2 ? c.HeadDim : c.QkRopeHeadDim;
        _invFreq = new float[rotary / 2];
        for (int i = 0; i < _invFreq.Length; i++) _invFreq[i] = 1f / (float)Math.Pow(c.RopeTheta, (float)(2 * i) / rotary);
        float projStd = 0.02f / MathF.Sqrt(2 * (c.Layers + c.MtpLayers));

        Matrix("model.embed_tokens.weight", c.VocabSize, c.HiddenSize, 0.02f, random);
        for (int l = 0; l < c.Layers + c.MtpLayers; l++)
        {
            string p = $"model.layers.{l}.";
            if (l >= c.Layers)
            {
                Norm(p + "enorm.weight", c.HiddenSize);
                Norm(p + "hnorm.weight", c.HiddenSize);
                Matrix(p + "eh_proj.weight", c.HiddenSize, 2 * c.HiddenSize, 0.02f, random);
                Norm(p + "shared_head.norm.weight", c.HiddenSize);
            }
            Norm(p + "input_layernorm.weight", c.HiddenSize);
            if (c.IsQwen2)
            {
                int qDim = c.Heads * c.HeadDim, kvDim = c.KvHeads * c.HeadDim;
                foreach (var (proj, rows) in new[] { ("q_proj", qDim), ("k_proj", kvDim), ("v_proj", kvDim) })
                {
                    Matrix($"{p}self_attn.{proj}.weight", rows, c.HiddenSize, 0.02f, random);
                    Add(new Tensor([rows], requiresGrad: true, $"{p}self_attn.{proj}.bias"));
                }
                Matrix(p + "self_attn.o_proj.weight", c.HiddenSize, qDim, projStd, random);
                Norm(p + "post_attention_layernorm.weight", c.HiddenSize);
                Mlp(p + "mlp.", c.IntermediateSize, projStd, random);
                continue;
            }
            if (c.QLoraRank == 0) Matrix(p + "self_attn.q_proj.weight", c.Heads * c.QkHeadDim, c.HiddenSize, 0.02f, random);
            else
            {
                Matrix(p + "self_attn.q_a_proj.weight", c.QLoraRank, c.HiddenSize, 0.02f, random);
                Norm(p + "self_attn.q_a_layernorm.weight", c.QLoraRank);
                Matrix(p + "self_attn.q_b_proj.weight", c.Heads * c.QkHeadDim, c.QLoraRank, 0.02f, random);
            }
            Matrix(p + "self_attn.kv_a_proj_with_mqa.weight", c.KvLoraRank + c.QkRopeHeadDim, c.HiddenSize, 0.02f, random);
            Norm(p + "self_attn.kv_a_layernorm.weight", c.KvLoraRank);
            Matrix(p + "self_attn.kv_b_proj.weight", c.Heads * (c.QkNopeHeadDim + c.VHeadDim), c.KvLoraRank, 0.02f, random);
            Matrix(p + "self_attn.o_proj.weight", c.HiddenSize, c.Heads * c.VHeadDim, projStd, random);
            Norm(p + "post_attention_layernorm.weight", c.HiddenSize);
            if (!c.IsMoeLayer(l))
            {
                Mlp(p + "mlp.", c.IntermediateSize, projStd, random);
                continue;
            }
            Matrix(p + "mlp.gate.weight", c.RoutedExperts, c.HiddenSize, 0.02f, random);
            RouterBias[l] = new float[c.RoutedExperts];
            for (int e = 0; e < c.RoutedExperts; e++) Mlp($"{p}mlp.experts.{e}.", c.MoeIntermediateSize, projStd, random);
            if (c.SharedExperts > 0) Mlp(p + "mlp.shared_experts.", c.SharedExperts * c.MoeIntermediateSize, projStd, random);
        }
        Norm("model.norm.weight", c.HiddenSize);
        Matrix("lm_head.weight", c.VocabSize, c.HiddenSize, 0.02f, random);
    }

    public TinyDeepSeekConfig Config { get; }

    /// <summary>Parameters by HF name, in creation order (the optimizer's and checkpoint's order).</summary>
    public IReadOnlyDictionary<string, Tensor> Parameters => _params;

    /// <summary>e_score_correction_bias per MoE layer (incl. the MTP layer): updated by the balancing rule, not by gradients.</summary>
    public Dictionary<int, float[]> RouterBias { get; } = [];

    public long ParameterCount => _params.Values.Sum(p => (long)p.Length);

    /// <summary>No weight decay on norms (1-D tensors).</summary>
    public static bool Decays(Tensor p) => p.Shape.Length > 1;

    Tensor P(string name) => _params[name];

    void Add(Tensor t) => _params.Add(t.Name, t);

    void Matrix(string name, int rows, int cols, float std, TrainRandom random)
    {
        var t = new Tensor([rows, cols], requiresGrad: true, name);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(random.NextGaussian() * std);
        Add(t);
    }

    void Norm(string name, int size)
    {
        var t = new Tensor([size], requiresGrad: true, name);
        Array.Fill(t.Data, 1f);
        Add(t);
    }

    void Mlp(string prefix, int width, float downStd, TrainRandom random)
    {
        Matrix(prefix + "gate_proj.weight", width, Config.HiddenSize, 0.02f, random);
        Matrix(prefix + "up_proj.weight", width, Config.HiddenSize, 0.02f, random);
        Matrix(prefix + "down_proj.weight", Config.HiddenSize, width, downStd, random);
    }

    // ---------------------------------------------------------------- forward

    /// <summary>
    /// Loss = CE(next token) + λ·CE(MTP: token i+2 from h_i and emb(t_{i+1})), both masked means, and the
    /// statistics; records backward on <paramref name="tape"/> when it is recording.
    /// </summary>
    public Tensor Loss(Tape tape, TrainingBatch batch, out ForwardStats stats)
    {
        var c = Config;
        var load = new Dictionary<int, int[]>();
        var hidden = Trunk(tape, batch.Inputs, batch.Batch, batch.Sequence, load);
        var logits = Head(tape, hidden, "model.norm.weight");
        var loss = tape.CrossEntropy(logits, batch.Targets, batch.Mask, out var main);
        var mtp = default(LossStats);
        if (c.MtpLayers > 0)
        {
            // Position i sees h_i and emb(t_{i+1}) = emb(target_i), predicts t_{i+2} = target_{i+1} (same sequence only).
            int B = batch.Batch, T = batch.Sequence;
            var targets2 = new int[B * T];
            var mask2 = new float[B * T];
            for (int b = 0; b < B; b++)
                for (int i = 0; i + 1 < T; i++)
                {
                    targets2[b * T + i] = batch.Targets[b * T + i + 1];
                    mask2[b * T + i] = batch.Mask[b * T + i + 1];
                }
            var h2 = Mtp(tape, hidden, batch.Targets, B, T, load);
            var logits2 = Head(tape, h2, $"model.layers.{c.Layers}.shared_head.norm.weight");
            var loss2 = tape.CrossEntropy(logits2, targets2, mask2, out mtp);
            loss = tape.Add(loss, tape.Scale(loss2, c.MtpLossWeight));
        }
        stats = new ForwardStats(main, mtp, load);
        return loss;
    }

    /// <summary>
    /// log π(target | prefix) per position [batch·sequence] with the main head (no MTP): the policy's per-token
    /// log-probs for GRPO, recorded on <paramref name="tape"/> when it records. <paramref name="load"/> collects the
    /// tokens each expert received per MoE layer.
    /// </summary>
    public Tensor TokenLogprobs(Tape tape, TrainingBatch batch, Dictionary<int, int[]>? load = null)
    {
        var hidden = Trunk(tape, batch.Inputs, batch.Batch, batch.Sequence, load);
        return tape.TokenLogprobs(Head(tape, hidden, "model.norm.weight"), batch.Targets);
    }

    /// <summary>Next-token logits [batch·sequence, vocab] (no tape: evaluation and the export check).</summary>
    public float[] Logits(Tape tape, int[] ids, int batch, int sequence)
    {
        bool recording = tape.Recording;
        tape.Recording = false;
        try
        {
            var hidden = Trunk(tape, ids, batch, sequence, null);
            return Head(tape, hidden, "model.norm.weight").Data;
        }
        finally { tape.Recording = recording; }
    }

    /// <summary>MTP logits (token i+2) for ids given the next tokens (no tape).</summary>
    public float[] MtpLogits(Tape tape, int[] ids, int[] nextIds, int batch, int sequence)
    {
        bool recording = tape.Recording;
        tape.Recording = false;
        try
        {
            var hidden = Trunk(tape, ids, batch, sequence, null);
            var h2 = Mtp(tape, hidden, nextIds, batch, sequence, null);
            return Head(tape, h2, $"model.layers.{Config.Layers}.shared_head.norm.weight").Data;
        }
        finally { tape.Recording = recording; }
    }

    /// <summary>
    /// Greedy decoding with the trainer's own forward (recomputed over the whole sequence per token: tiny
    /// models only): appends up to <paramref name="maxNewTokens"/> argmax tokens, stopping after <paramref name="stopId"/>.
    /// </summary>
    public int[] Generate(Tape tape, ReadOnlySpan<int> prompt, int maxNewTokens, int stopId)
    {
        var ids = new List<int>(prompt.ToArray());
        int vocab = Config.VocabSize;
        for (int n = 0; n < maxNewTokens && ids.Count < Config.ContextLength; n++)
        {
            var logits = Logits(tape, ids.ToArray(), 1, ids.Count).AsSpan((ids.Count - 1) * vocab, vocab);
            int best = 0;
            for (int i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
            ids.Add(best);
            if (best == stopId) break;
        }
        return ids.Skip(prompt.Length).ToArray();
    }

    /// <summary>Embedding and the decoder layers: the residual stream after the last layer [n, hidden].</summary>
    Tensor Trunk(Tape tape, int[] ids, int batch, int sequence, Dictionary<int, int[]>? load)
    {
        var x = tape.Embedding(P("model.embed_tokens.weight"), ids);
        for (int l = 0; l < Config.Layers; l++) x = Block(tape, x, l, batch, sequence, load);
        return x;
    }

    Tensor Head(Tape tape, Tensor hidden, string norm) =>
        tape.MatMul(tape.RmsNorm(hidden, P(norm), Config.RmsNormEps), P("lm_head.weight"));

    /// <summary>V3's MTP module: h' = eh_proj·[enorm(emb(next)); hnorm(h)], then its own transformer block.</summary>
    Tensor Mtp(Tape tape, Tensor hidden, int[] nextIds, int batch, int sequence, Dictionary<int, int[]>? load)
    {
        var c = Config;
        string p = $"model.layers.{c.Layers}.";
        var e = tape.RmsNorm(tape.Embedding(P("model.embed_tokens.weight"), nextIds), P(p + "enorm.weight"), c.RmsNormEps);
        var h = tape.RmsNorm(hidden, P(p + "hnorm.weight"), c.RmsNormEps);
        var x = tape.MatMul(tape.Concat(e, h), P(p + "eh_proj.weight"));
        return Block(tape, x, c.Layers, batch, sequence, load);
    }

    /// <summary>x + attn(norm(x)), then + ffn(norm(·)): one DeepSeek decoder layer.</summary>
    Tensor Block(Tape tape, Tensor x, int l, int batch, int sequence, Dictionary<int, int[]>? load)
    {
        var c = Config;
        string p = $"model.layers.{l}.";
        var h = tape.RmsNorm(x, P(p + "input_layernorm.weight"), c.RmsNormEps);
        x = tape.Add(x, c.IsQwen2 ? GroupedAttention(tape, h, p + "self_attn.", batch, sequence) : Attention(tape, h, p + "self_attn.", batch, sequence));
        h = tape.RmsNorm(x, P(p + "post_attention_layernorm.weight"), c.RmsNormEps);
        var ffn = c.IsMoeLayer(l) ? Moe(tape, h, p + "mlp.", l, load) : Mlp(tape, h, p + "mlp.");
        return tape.Add(x, ffn);
    }

    /// <summary>MLA: q (plain or q-LoRA), [c_kv | k_pe] = kv_a(x), c = kv_a_layernorm(c_kv), [k_nope | v] = kv_b(c), RoPE on q_pe and k_pe.</summary>
    Tensor Attention(Tape tape, Tensor h, string p, int batch, int sequence)
    {
        var c = Config;
        var q = c.QLoraRank == 0
            ? tape.MatMul(h, P(p + "q_proj.weight"))
            : tape.MatMul(tape.RmsNorm(tape.MatMul(h, P(p + "q_a_proj.weight")), P(p + "q_a_layernorm.weight"), c.RmsNormEps), P(p + "q_b_proj.weight"));
        q = tape.Rope(q, sequence, c.Heads, c.QkHeadDim, c.QkNopeHeadDim, _invFreq);
        var kva = tape.MatMul(h, P(p + "kv_a_proj_with_mqa.weight")); // [n, kv_lora + rope]
        var latent = tape.RmsNorm(tape.Columns(kva, 0, c.KvLoraRank), P(p + "kv_a_layernorm.weight"), c.RmsNormEps);
        var kpe = tape.Rope(tape.Columns(kva, c.KvLoraRank, c.QkRopeHeadDim), sequence, 1, c.QkRopeHeadDim, 0, _invFreq);
        var kv = tape.MatMul(latent, P(p + "kv_b_proj.weight")); // [n, heads·(nope + v)]
        float scale = 1f / MathF.Sqrt(c.QkHeadDim);
        var o = tape.MlaAttention(q, kv, kpe, batch, sequence, c.Heads, c.QkNopeHeadDim, c.QkRopeHeadDim, c.VHeadDim, scale);
        return tape.MatMul(o, P(p + "o_proj.weight"));
    }

    /// <summary>
    /// Qwen2's attention: q/k/v projections with biases, split-half RoPE over each whole head, every group of
    /// Heads / KvHeads query heads on one key/value head (the heads' [k | v] gathered into the fused attention's
    /// per-head layout, with no shared rope part), o_proj without bias.
    /// </summary>
    Tensor GroupedAttention(Tape tape, Tensor h, string p, int batch, int sequence)
    {
        var c = Config;
        int d = c.HeadDim, kvDim = c.KvHeads * d, group = c.Heads / c.KvHeads;
        Tensor Projection(string name) => tape.AddBias(tape.MatMul(h, P($"{p}{name}.weight")), P($"{p}{name}.bias"));
        var q = tape.Rope(Projection("q_proj"), sequence, c.Heads, d, 0, _invFreq, neox: true);
        var k = tape.Rope(Projection("k_proj"), sequence, c.KvHeads, d, 0, _invFreq, neox: true);
        var v = Projection("v_proj");
        var columns = new int[c.Heads * 2 * d];
        for (int head = 0; head < c.Heads; head++)
            for (int j = 0; j < d; j++)
            {
                columns[head * 2 * d + j] = head / group * d + j;
                columns[head * 2 * d + d + j] = kvDim + head / group * d + j;
            }
        var kv = tape.GatherColumns(tape.Concat(k, v), columns);
        var none = new Tensor([h.Rows, 0]);
        var o = tape.MlaAttention(q, kv, none, batch, sequence, c.Heads, d, 0, d, 1f / MathF.Sqrt(d));
        return tape.MatMul(o, P(p + "o_proj.weight"));
    }

    Tensor Mlp(Tape tape, Tensor h, string p) =>
        tape.MatMul(tape.SwiGlu(tape.MatMul(h, P(p + "gate_proj.weight")), tape.MatMul(h, P(p + "up_proj.weight"))), P(p + "down_proj.weight"));

    /// <summary>DeepSeekMoE: shared experts + Σ_k w_k·expert_k over the routed top-k, tokens grouped by expert.</summary>
    Tensor Moe(Tape tape, Tensor h, string p, int l, Dictionary<int, int[]>? load)
    {
        var c = Config;
        var routing = tape.Route(tape.MatMul(h, P(p + "gate.weight")), RouterBias[l], c.ExpertsPerToken, c.NormTopKProb, c.RoutedScalingFactor);
        if (load is not null) load[l] = routing.Load();
        var (tokens, slots) = routing.ByExpert();
        var outputs = new Tensor?[c.RoutedExperts];
        for (int e = 0; e < c.RoutedExperts; e++)
            if (tokens[e].Length > 0) outputs[e] = Mlp(tape, tape.Gather(h, tokens[e]), $"{p}experts.{e}.");
        var y = tape.Combine(h.Rows, h.Cols, outputs, tokens, slots, routing.Weights);
        return c.SharedExperts > 0 ? tape.Add(Mlp(tape, h, p + "shared_experts."), y) : y;
    }

    /// <summary>
    /// The aux-loss-free balancing of DeepSeek-V3 (§2.1.2): after a step, per MoE layer,
    /// b_i += γ·sign(mean load − load_i) over the tokens the step routed.
    /// </summary>
    public void UpdateRouterBias(IReadOnlyDictionary<int, long[]> load)
    {
        float gamma = Config.BiasUpdateSpeed;
        if (gamma == 0) return;
        foreach (var (layer, counts) in load)
        {
            var bias = RouterBias[layer];
            double mean = counts.Average();
            for (int e = 0; e < counts.Length; e++) bias[e] += gamma * Math.Sign(mean - counts[e]);
        }
    }
}
