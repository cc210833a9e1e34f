using System.Globalization;
using System.Text;
using Jevons.Numerics;

namespace Jevons.Models;

/// <summary>The shapes and settings of a random-weight DeepSeek model for `jevons synth`.</summary>
public sealed record DeepSeekSynthPreset(
    string Name, string Summary, bool V3, int VocabSize, int HiddenSize, int Layers, int Heads,
    int QLoraRank, int KvLoraRank, int QkNopeHeadDim, int QkRopeHeadDim, int VHeadDim,
    int IntermediateSize, int MoeIntermediateSize, int RoutedExperts, int SharedExperts, int ExpertsPerToken,
    int FirstKDenseReplace, int Groups, int TopKGroups, bool NormTopKProb, float RoutedScalingFactor,
    double RopeTheta, double YarnFactor, int YarnOriginalContext, double YarnMScale, int ContextLength, int BosId, int EosId)
{
    public static IReadOnlyList<DeepSeekSynthPreset> All { get; } =
    [
        new("deepseek-v2-lite", "DeepSeek-V2-Lite shapes (15.7B parameters, 2.7B active): MLA without q-LoRA, 64 routed + 2 shared experts, top-6, softmax greedy, YaRN 40",
            V3: false, VocabSize: 102400, HiddenSize: 2048, Layers: 27, Heads: 16, QLoraRank: 0, KvLoraRank: 512,
            QkNopeHeadDim: 128, QkRopeHeadDim: 64, VHeadDim: 128, IntermediateSize: 10944, MoeIntermediateSize: 1408,
            RoutedExperts: 64, SharedExperts: 2, ExpertsPerToken: 6, FirstKDenseReplace: 1, Groups: 1, TopKGroups: 1,
            NormTopKProb: false, RoutedScalingFactor: 1.0f, RopeTheta: 10000, YarnFactor: 40, YarnOriginalContext: 4096,
            YarnMScale: 0.707, ContextLength: 163840, BosId: 100000, EosId: 100001),
        new("deepseek-v3-mini", "DeepSeek-V3 routing at reduced size: q-LoRA, sigmoid + e_score_correction_bias, noaux_tc in 2 of 4 groups, top-4 of 16, 1 shared expert, YaRN 40",
            V3: true, VocabSize: 4096, HiddenSize: 256, Layers: 4, Heads: 4, QLoraRank: 96, KvLoraRank: 64,
            QkNopeHeadDim: 32, QkRopeHeadDim: 16, VHeadDim: 32, IntermediateSize: 512, MoeIntermediateSize: 64,
            RoutedExperts: 16, SharedExperts: 1, ExpertsPerToken: 4, FirstKDenseReplace: 1, Groups: 4, TopKGroups: 2,
            NormTopKProb: true, RoutedScalingFactor: 2.5f, RopeTheta: 10000, YarnFactor: 40, YarnOriginalContext: 4096,
            YarnMScale: 1.0, ContextLength: 163840, BosId: 0, EosId: 1),
    ];

    public static DeepSeekSynthPreset? Find(string name) => All.FirstOrDefault(p => p.Name == name);
}

/// <summary>What a synthesized DeepSeek tensor holds, which decides how its values are drawn.</summary>
public enum DeepSeekSynthKind
{
    /// <summary>Embedding table: N(0, 1).</summary>
    Embedding,
    /// <summary>A projection W[out, in]: N(0, 1/in). FP8-quantised in the HF FP8 layout.</summary>
    Matrix,
    /// <summary>lm_head and the MoE router: N(0, (2/sqrt(in))²); stay BF16 in the FP8 layout (as DeepSeek-V3 keeps them).</summary>
    Output,
    /// <summary>An RMSNorm weight: 1 + N(0, 0.1²).</summary>
    Norm,
    /// <summary>The router's e_score_correction_bias: N(0, 0.1²), F32.</summary>
    Bias,
}

/// <summary>
/// One tensor of a synthesized DeepSeek model; <see cref="Shape"/> outermost first. Values are keyed by
/// <see cref="Keys"/> (HF tensor names): one key, or one per expert for a GGUF stacked tensor [experts, out, in]
/// whose flattened row r is row r % out of expert r / out, so the HF and GGUF layouts hold the same model.
/// </summary>
public sealed record DeepSeekSynthTensor(string Name, long[] Shape, DeepSeekSynthKind Kind, string[] Keys)
{
    public long Columns => Shape[^1];
    public long Rows => Shape.Length == 1 ? 1 : ElementCount / Columns;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    /// <summary>Matrices take the requested storage type; norms and the bias stay F32 (BF16 norms in HF).</summary>
    public bool IsWeightMatrix => Kind is DeepSeekSynthKind.Embedding or DeepSeekSynthKind.Matrix or DeepSeekSynthKind.Output;
    /// <summary>Stored as F8_E4M3 + weight_scale_inv in the HF FP8 layout.</summary>
    public bool Fp8 => Kind == DeepSeekSynthKind.Matrix;
}

/// <summary>
/// The plan of a random-weight DeepSeek model in both layouts: GGUF deepseek2 metadata (without the tokenizer,
/// which the vocabulary adds) and tensors, HF config.json and tensors, and a deterministic row generator
/// (seed, HF name, row), so writers stream rows and never hold a whole model. The HF FP8 layout is written
/// with <see cref="QuantizeFp8Band"/> (128-row bands, weight_scale_inv = max|w|/448 per 128×128 block).
/// </summary>
public sealed class DeepSeekSynthesis
{
    public DeepSeekSynthesis(DeepSeekSynthPreset preset, ulong seed)
    {
        Preset = preset;
        Seed = seed;
        var p = preset;
        Metadata = BuildGgufMetadata(p);
        HfConfigJson = BuildHfConfig(p);
        (GgufTensors, HfTensors) = BuildTensors(p);
    }

    public DeepSeekSynthPreset Preset { get; }
    public ulong Seed { get; }

    /// <summary>GGUF metadata (general.* and deepseek2.*), typed as GGUF stores them (uint, float, bool, string).</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Metadata { get; }

    /// <summary>config.json for the HF layout (BF16); <see cref="HfConfigJsonFp8"/> adds quantization_config.</summary>
    public string HfConfigJson { get; }

    public string HfConfigJsonFp8 => HfConfigJson.TrimEnd().TrimEnd('}').TrimEnd()
        + ",\n  \"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", \"quant_method\": \"fp8\", \"weight_block_size\": [128, 128]}\n}\n";

    /// <summary>GGUF tensors in llama.cpp names (experts stacked).</summary>
    public IReadOnlyList<DeepSeekSynthTensor> GgufTensors { get; }

    /// <summary>HF tensors, sorted by name as safetensors files store them (FP8 scales not listed: one per <see cref="DeepSeekSynthTensor.Fp8"/> tensor, named name + "_scale_inv").</summary>
    public IReadOnlyList<DeepSeekSynthTensor> HfTensors { get; }

    public long Parameters => HfTensors.Sum(t => t.ElementCount);

    /// <summary>A synthesized model of a named preset, or a JevonsException listing the presets.</summary>
    public static DeepSeekSynthesis Create(string preset, ulong seed = 0) =>
        new(DeepSeekSynthPreset.Find(preset) ?? JevonsException.Throw<DeepSeekSynthPreset>(
            $"unknown preset '{preset}' (DeepSeek presets: {string.Join(", ", DeepSeekSynthPreset.All.Select(x => x.Name))})"), seed);

    static List<KeyValuePair<string, object>> BuildGgufMetadata(DeepSeekSynthPreset p)
    {
        const string a = "deepseek2";
        var m = new List<KeyValuePair<string, object>>
        {
            new("general.architecture", a),
            new("general.name", $"jevons-synth-{p.Name}"),
            new($"{a}.context_length", (uint)p.ContextLength),
            new($"{a}.embedding_length", (uint)p.HiddenSize),
            new($"{a}.block_count", (uint)p.Layers),
            new($"{a}.feed_forward_length", (uint)p.IntermediateSize),
            new($"{a}.attention.head_count", (uint)p.Heads),
            new($"{a}.attention.head_count_kv", (uint)p.Heads),
            new($"{a}.attention.layer_norm_rms_epsilon", 1e-6f),
            new($"{a}.rope.freq_base", (float)p.RopeTheta),
            new($"{a}.rope.dimension_count", (uint)p.QkRopeHeadDim),
            new($"{a}.attention.key_length", (uint)(p.QkNopeHeadDim + p.QkRopeHeadDim)),
            new($"{a}.attention.value_length", (uint)p.VHeadDim),
            new($"{a}.attention.kv_lora_rank", (uint)p.KvLoraRank),
            new($"{a}.vocab_size", (uint)p.VocabSize),
            new($"{a}.leading_dense_block_count", (uint)p.FirstKDenseReplace),
            new($"{a}.expert_count", (uint)p.RoutedExperts),
            new($"{a}.expert_used_count", (uint)p.ExpertsPerToken),
            new($"{a}.expert_shared_count", (uint)p.SharedExperts),
            new($"{a}.expert_feed_forward_length", (uint)p.MoeIntermediateSize),
            new($"{a}.expert_weights_scale", p.RoutedScalingFactor),
            new($"{a}.expert_weights_norm", p.NormTopKProb),
            new($"{a}.expert_gating_func", p.V3 ? 2u : 1u),
            new($"{a}.rope.scaling.type", "yarn"),
            new($"{a}.rope.scaling.factor", (float)p.YarnFactor),
            new($"{a}.rope.scaling.original_context_length", (uint)p.YarnOriginalContext),
            new($"{a}.rope.scaling.yarn_log_multiplier", (float)(0.1 * p.YarnMScale)),
        };
        if (p.QLoraRank > 0) m.Add(new($"{a}.attention.q_lora_rank", (uint)p.QLoraRank));
        if (p.Groups > 1)
        {
            m.Add(new($"{a}.expert_group_count", (uint)p.Groups));
            m.Add(new($"{a}.expert_group_used_count", (uint)p.TopKGroups));
        }
        return m;
    }

    static string BuildHfConfig(DeepSeekSynthPreset p)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var s = new StringBuilder();
        s.Append("{\n");
        s.Append($"  \"architectures\": [\"{(p.V3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM")}\"],\n");
        s.Append($"  \"model_type\": \"{(p.V3 ? "deepseek_v3" : "deepseek_v2")}\",\n");
        s.Append($"  \"bos_token_id\": {p.BosId},\n  \"eos_token_id\": {p.EosId},\n");
        s.Append($"  \"vocab_size\": {p.VocabSize},\n  \"hidden_size\": {p.HiddenSize},\n  \"num_hidden_layers\": {p.Layers},\n");
        s.Append($"  \"num_attention_heads\": {p.Heads},\n  \"num_key_value_heads\": {p.Heads},\n");
        s.Append($"  \"q_lora_rank\": {(p.QLoraRank == 0 ? "null" : p.QLoraRank.ToString(CultureInfo.InvariantCulture))},\n");
        s.Append($"  \"kv_lora_rank\": {p.KvLoraRank},\n  \"qk_nope_head_dim\": {p.QkNopeHeadDim},\n  \"qk_rope_head_dim\": {p.QkRopeHeadDim},\n  \"v_head_dim\": {p.VHeadDim},\n");
        s.Append($"  \"intermediate_size\": {p.IntermediateSize},\n  \"moe_intermediate_size\": {p.MoeIntermediateSize},\n");
        s.Append($"  \"n_routed_experts\": {p.RoutedExperts},\n  \"n_shared_experts\": {p.SharedExperts},\n  \"num_experts_per_tok\": {p.ExpertsPerToken},\n");
        s.Append($"  \"first_k_dense_replace\": {p.FirstKDenseReplace},\n  \"moe_layer_freq\": 1,\n  \"n_group\": {p.Groups},\n  \"topk_group\": {p.TopKGroups},\n");
        s.Append($"  \"topk_method\": \"{(p.V3 ? "noaux_tc" : p.Groups > 1 ? "group_limited_greedy" : "greedy")}\",\n");
        s.Append($"  \"scoring_func\": \"{(p.V3 ? "sigmoid" : "softmax")}\",\n");
        s.Append($"  \"norm_topk_prob\": {(p.NormTopKProb ? "true" : "false")},\n  \"routed_scaling_factor\": {F(p.RoutedScalingFactor)},\n");
        s.Append($"  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": {F(p.RopeTheta)},\n  \"max_position_embeddings\": {p.ContextLength},\n");
        s.Append($"  \"rope_scaling\": {{\"type\": \"yarn\", \"factor\": {F(p.YarnFactor)}, \"original_max_position_embeddings\": {p.YarnOriginalContext}, \"beta_fast\": 32, \"beta_slow\": 1, \"mscale\": {F(p.YarnMScale)}, \"mscale_all_dim\": {F(p.YarnMScale)}}},\n");
        s.Append("  \"hidden_act\": \"silu\",\n  \"tie_word_embeddings\": false,\n  \"attention_bias\": false,\n  \"num_nextn_predict_layers\": 0,\n  \"torch_dtype\": \"bfloat16\"\n}\n");
        return s.ToString();
    }

    static (List<DeepSeekSynthTensor> Gguf, List<DeepSeekSynthTensor> Hf) BuildTensors(DeepSeekSynthPreset p)
    {
        var gguf = new List<DeepSeekSynthTensor>();
        var hf = new List<DeepSeekSynthTensor>();
        int h = p.HiddenSize, qDim = p.Heads * (p.QkNopeHeadDim + p.QkRopeHeadDim);
        void Both(string ggufName, string hfName, long[] shape, DeepSeekSynthKind kind)
        {
            gguf.Add(new(ggufName, shape, kind, [hfName]));
            hf.Add(new(hfName, shape, kind, [hfName]));
        }
        Both("token_embd.weight", "model.embed_tokens.weight", [p.VocabSize, h], DeepSeekSynthKind.Embedding);
        for (int l = 0; l < p.Layers; l++)
        {
            string b = $"blk.{l}.", m = $"model.layers.{l}.";
            Both(b + "attn_norm.weight", m + "input_layernorm.weight", [h], DeepSeekSynthKind.Norm);
            if (p.QLoraRank == 0)
                Both(b + "attn_q.weight", m + "self_attn.q_proj.weight", [qDim, h], DeepSeekSynthKind.Matrix);
            else
            {
                Both(b + "attn_q_a.weight", m + "self_attn.q_a_proj.weight", [p.QLoraRank, h], DeepSeekSynthKind.Matrix);
                Both(b + "attn_q_a_norm.weight", m + "self_attn.q_a_layernorm.weight", [p.QLoraRank], DeepSeekSynthKind.Norm);
                Both(b + "attn_q_b.weight", m + "self_attn.q_b_proj.weight", [qDim, p.QLoraRank], DeepSeekSynthKind.Matrix);
            }
            Both(b + "attn_kv_a_mqa.weight", m + "self_attn.kv_a_proj_with_mqa.weight", [p.KvLoraRank + p.QkRopeHeadDim, h], DeepSeekSynthKind.Matrix);
            Both(b + "attn_kv_a_norm.weight", m + "self_attn.kv_a_layernorm.weight", [p.KvLoraRank], DeepSeekSynthKind.Norm);
            Both(b + "attn_kv_b.weight", m + "self_attn.kv_b_proj.weight", [p.Heads * (p.QkNopeHeadDim + p.VHeadDim), p.KvLoraRank], DeepSeekSynthKind.Matrix);
            Both(b + "attn_output.weight", m + "self_attn.o_proj.weight", [h, p.Heads * p.VHeadDim], DeepSeekSynthKind.Matrix);
            Both(b + "ffn_norm.weight", m + "post_attention_layernorm.weight", [h], DeepSeekSynthKind.Norm);
            if (l < p.FirstKDenseReplace)
            {
                Both(b + "ffn_gate.weight", m + "mlp.gate_proj.weight", [p.IntermediateSize, h], DeepSeekSynthKind.Matrix);
                Both(b + "ffn_up.weight", m + "mlp.up_proj.weight", [p.IntermediateSize, h], DeepSeekSynthKind.Matrix);
                Both(b + "ffn_down.weight", m + "mlp.down_proj.weight", [h, p.IntermediateSize], DeepSeekSynthKind.Matrix);
                continue;
            }
            int e = p.RoutedExperts, w = p.MoeIntermediateSize, sw = p.SharedExperts * w;
            Both(b + "ffn_gate_inp.weight", m + "mlp.gate.weight", [e, h], DeepSeekSynthKind.Output);
            if (p.V3) Both(b + "exp_probs_b.bias", m + "mlp.gate.e_score_correction_bias", [e], DeepSeekSynthKind.Bias);
            foreach (var (g, hfPart, shape) in new[] { ("gate", "gate_proj", new long[] { w, h }), ("up", "up_proj", [w, h]), ("down", "down_proj", [h, w]) })
            {
                var keys = Enumerable.Range(0, e).Select(j => $"{m}mlp.experts.{j}.{hfPart}.weight").ToArray();
                gguf.Add(new($"{b}ffn_{g}_exps.weight", [e, shape[0], shape[1]], DeepSeekSynthKind.Matrix, keys));
                foreach (var key in keys) hf.Add(new(key, shape, DeepSeekSynthKind.Matrix, [key]));
            }
            if (sw > 0)
            {
                Both(b + "ffn_gate_shexp.weight", m + "mlp.shared_experts.gate_proj.weight", [sw, h], DeepSeekSynthKind.Matrix);
                Both(b + "ffn_up_shexp.weight", m + "mlp.shared_experts.up_proj.weight", [sw, h], DeepSeekSynthKind.Matrix);
                Both(b + "ffn_down_shexp.weight", m + "mlp.shared_experts.down_proj.weight", [h, sw], DeepSeekSynthKind.Matrix);
            }
        }
        Both("output_norm.weight", "model.norm.weight", [h], DeepSeekSynthKind.Norm);
        Both("output.weight", "lm_head.weight", [p.VocabSize, h], DeepSeekSynthKind.Output);
        hf.Sort((x, y) => string.CompareOrdinal(x.Name, y.Name));
        return (gguf, hf);
    }

    /// <summary>Fills <paramref name="dst"/> (whole rows) with rows firstRow, firstRow+1, ... of <paramref name="tensor"/>.</summary>
    public void FillRows(DeepSeekSynthTensor tensor, long firstRow, Span<float> dst)
    {
        int cols = checked((int)tensor.Columns);
        if (dst.Length % cols != 0)
            throw new ArgumentException($"{dst.Length} values is not a whole number of {cols}-value rows", nameof(dst));
        long rowsPerKey = tensor.Rows / tensor.Keys.Length;
        (double mean, double std) = tensor.Kind switch
        {
            DeepSeekSynthKind.Embedding => (0.0, 1.0),
            DeepSeekSynthKind.Matrix => (0.0, 1.0 / Math.Sqrt(cols)),
            DeepSeekSynthKind.Output => (0.0, 2.0 / Math.Sqrt(cols)),
            DeepSeekSynthKind.Norm => (1.0, 0.1),
            _ => (0.0, 0.1),
        };
        for (int r = 0; r < dst.Length / cols; r++)
        {
            long row = firstRow + r;
            string key = tensor.Keys[row / rowsPerKey];
            var rng = new SplitMix64(Seed ^ Fnv1a(key) ^ ((ulong)(row % rowsPerKey) * 0x9E3779B97F4A7C15UL));
            var dstRow = dst.Slice(r * cols, cols);
            for (int i = 0; i < cols; i++) dstRow[i] = (float)(mean + std * rng.NextNormal());
        }
    }

    /// <summary>
    /// Quantises a band of up to <paramref name="block"/> rows [rows, cols] to FP8 E4M3 the way DeepSeek-V3's
    /// checkpoints are made: per block scale_inv = max|w| / 448, fp8 = round-to-nearest-even(w / scale_inv).
    /// <paramref name="scales"/> receives ceil(cols/block) scale_inv values (one scale row).
    /// </summary>
    public static void QuantizeFp8Band(ReadOnlySpan<float> rows, int cols, Span<byte> fp8, Span<float> scales, int block = 128)
    {
        int nRows = rows.Length / cols, nBlocks = (cols + block - 1) / block;
        for (int b = 0; b < nBlocks; b++)
        {
            int c0 = b * block, c1 = Math.Min(cols, c0 + block);
            float amax = 0;
            for (int r = 0; r < nRows; r++)
                for (int c = c0; c < c1; c++) amax = MathF.Max(amax, MathF.Abs(rows[r * cols + c]));
            float scale = amax == 0 ? 1f : amax / 448f;
            scales[b] = scale;
            for (int r = 0; r < nRows; r++)
                for (int c = c0; c < c1; c++) fp8[r * cols + c] = EncodeFp8(rows[r * cols + c] / scale);
        }
    }

    static readonly float[] Fp8Positive = Enumerable.Range(0, 0x7F).Select(i => Quantization.F8E4M3Table[i]).ToArray(); // 0 .. 448

    /// <summary>float → E4M3 (e4m3fn) byte, round to nearest even, saturating at ±448.</summary>
    public static byte EncodeFp8(float x)
    {
        if (float.IsNaN(x)) return 0x7F;
        byte sign = x < 0 || (x == 0 && float.IsNegative(x)) ? (byte)0x80 : (byte)0;
        float a = MathF.Abs(x);
        if (a >= 448f) return (byte)(sign | 0x7E);
        int lo = 0, hi = Fp8Positive.Length - 1; // largest code with value <= a
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Fp8Positive[mid] <= a) lo = mid; else hi = mid - 1;
        }
        int code = lo;
        if (code < Fp8Positive.Length - 1)
        {
            float below = Fp8Positive[code], above = Fp8Positive[code + 1];
            float dBelow = a - below, dAbove = above - a;
            if (dAbove < dBelow || (dAbove == dBelow && (code & 1) == 1)) code++;
        }
        return (byte)(sign | code);
    }

    static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return h;
    }

    /// <summary>SplitMix64 with Box-Muller normals: small, fast, and the same on every platform.</summary>
    struct SplitMix64(ulong state)
    {
        ulong _state = state;
        double _spare = double.NaN;

        ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        double NextUniform() => ((Next() >> 11) + 0.5) * (1.0 / (1UL << 53));

        public double NextNormal()
        {
            if (!double.IsNaN(_spare)) { var s = _spare; _spare = double.NaN; return s; }
            double r = Math.Sqrt(-2 * Math.Log(NextUniform())), a = 2 * Math.PI * NextUniform();
            _spare = r * Math.Sin(a);
            return r * Math.Cos(a);
        }
    }
}
