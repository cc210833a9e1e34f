using System.Globalization;
using Jevons.Formats;
using Jevons.Models.Blocks;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Models;

/// <summary>
/// DeepSeek-V2 / V2-Lite / V3 / R1 hyper-parameters, read through one table of HF config.json keys and GGUF
/// deepseek2.* keys. Variants are flags (<see cref="QLoraRank"/> == 0, <see cref="HasRouterBias"/>), never
/// guessed from dimensions.
/// </summary>
public sealed record DeepSeekConfig
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    /// <summary>Decoder layers used for next-token prediction (MTP layers excluded).</summary>
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    /// <summary>0: plain q_proj; otherwise q_a_proj → q_a_layernorm → q_b_proj.</summary>
    public required int QLoraRank { get; init; }
    public required int KvLoraRank { get; init; }
    public required int QkNopeHeadDim { get; init; }
    public required int QkRopeHeadDim { get; init; }
    public required int VHeadDim { get; init; }
    /// <summary>Width of the dense FFN of the leading layers.</summary>
    public required int IntermediateSize { get; init; }
    public required int MoeIntermediateSize { get; init; }
    /// <summary>0 for a model without MoE layers.</summary>
    public required int RoutedExperts { get; init; }
    public required int SharedExperts { get; init; }
    public required int ExpertsPerToken { get; init; }
    public required int FirstKDenseReplace { get; init; }
    public required int MoeLayerFreq { get; init; }
    public required int Groups { get; init; }
    public required int TopKGroups { get; init; }
    public required TopkMethod TopkMethod { get; init; }
    public required ScoringFunction Scoring { get; init; }
    public required bool NormTopKProb { get; init; }
    public required float RoutedScalingFactor { get; init; }
    /// <summary>Selection bias (V3 e_score_correction_bias / GGUF exp_probs_b) present in the files.</summary>
    public required bool HasRouterBias { get; init; }
    public required double RopeTheta { get; init; }
    public required YarnSettings? Yarn { get; init; }
    public required float RmsNormEps { get; init; }
    public required int ContextLength { get; init; }
    /// <summary>num_nextn_predict_layers: multi-token-prediction layers stored after the decoder layers.</summary>
    public required int MtpLayers { get; init; }
    /// <summary>FP8 weight_block_size (128).</summary>
    public required int Fp8BlockSize { get; init; }

    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>HF: layer ≥ first_k_dense_replace and layer % moe_layer_freq == 0; GGUF: layer ≥ leading_dense_block_count.</summary>
    public bool IsMoeLayer(int layer) => RoutedExperts > 0 && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    /// <summary>The latent cache: layers × (kv_lora_rank + qk_rope_head_dim) float32 values per token.</summary>
    public long KvBytesPerToken => (long)Layers * (KvLoraRank + QkRopeHeadDim) * sizeof(float);

    /// <summary>A plain multi-head cache of full K and V: layers × heads × (qk_head_dim + v_head_dim) float32.</summary>
    public long EquivalentMhaKvBytesPerToken => (long)Layers * Heads * (QkHeadDim + VHeadDim) * sizeof(float);

    /// <summary>Reads every setting from config.json or GGUF metadata (both key spellings side by side).</summary>
    public static DeepSeekConfig Read(ModelSource source)
    {
        var file = source.Config.File;
        bool gguf = source.Format == ModelFormat.Gguf;
        // Every value is range-checked (ConfigChecks) before anything is allocated or looped over.
        string KeyOf(string hf, string? g) => ConfigChecks.KeyName(source, hf, g);
        int Req(string hf, string? g, long min = 1, long max = ConfigChecks.MaxDimension) =>
            ConfigChecks.Int(source, KeyOf(hf, g), source.RequireInt(hf, g), min, max);
        int Opt(string hf, string? g, int fallback, long min = 0, long max = ConfigChecks.MaxDimension) =>
            ConfigChecks.Int(source, KeyOf(hf, g), source.Int(hf, g) ?? fallback, min, max);
        double Positive(string hf, string? g, double fallback) =>
            ConfigChecks.Positive(source, KeyOf(hf, g), source.Float(hf, g) ?? fallback);

        int hidden = Req("hidden_size", "embedding_length");
        int heads = Req("num_attention_heads", "attention.head_count");
        int kvLora = Req("kv_lora_rank", "attention.kv_lora_rank");
        int rope = Req("qk_rope_head_dim", "rope.dimension_count");
        if (rope % 2 != 0)
            JevonsException.Throw($"'{KeyOf("qk_rope_head_dim", "rope.dimension_count")}' = {rope} is odd; RoPE needs pairs", file);
        int qkNope, vHead;
        if (gguf)
        {
            // Newer llama.cpp files (split attn_k_b/attn_v_b) put the MQA view in key_length/value_length
            // (kv_lora + rope / kv_lora) and the per-head dims in key_length_mla/value_length_mla.
            string keyKey = source.Int("", "attention.key_length_mla") is null ? "attention.key_length" : "attention.key_length_mla";
            int keyLength = Req("", keyKey, rope + 1L, ConfigChecks.MaxDimension);
            qkNope = keyLength - rope;
            vHead = source.Int("", "attention.value_length_mla") is null ? Req("", "attention.value_length") : Req("", "attention.value_length_mla");
        }
        else
        {
            qkNope = Req("qk_nope_head_dim", null);
            vHead = Req("v_head_dim", null);
        }
        ConfigChecks.Product(source, "attention heads x qk head dimension", heads, qkNope + rope);
        ConfigChecks.Product(source, "attention heads x v head dimension", heads, vHead);

        string layersKey = KeyOf("num_hidden_layers", "block_count");
        int blockCount = ConfigChecks.Layers(source, layersKey, source.RequireInt("num_hidden_layers", "block_count"));
        int mtp = Opt("num_nextn_predict_layers", "nextn_predict_layers", 0, 0, gguf ? blockCount - 1 : ConfigChecks.MaxLayers);
        int layers = gguf ? blockCount - mtp : blockCount; // GGUF block_count includes the MTP blocks

        // q-LoRA: null/absent q_lora_rank, or a plain attn_q / q_proj tensor, means none.
        int qLora = Opt("q_lora_rank", "attention.q_lora_rank", 0);
        string qProj = gguf ? "blk.0.attn_q.weight" : "model.layers.0.self_attn.q_proj.weight";
        if (source.Weights.Contains(qProj)) qLora = 0;

        int routed = Opt("n_routed_experts", "expert_count", 0, 0, ConfigChecks.MaxExperts);
        bool isV3 = source.Architecture.Contains("V3", StringComparison.Ordinal);
        string biasName = gguf ? "exp_probs_b.bias" : "mlp.gate.e_score_correction_bias";
        int firstDense = Opt("first_k_dense_replace", "leading_dense_block_count", 0, 0, layers);
        bool hasBias = routed > 0 && Enumerable.Range(0, layers).Any(l => source.Weights.Contains(
            gguf ? $"blk.{l}.{biasName}" : $"model.layers.{l}.{biasName}"));

        ScoringFunction scoring;
        TopkMethod method;
        int groups = Opt("n_group", "expert_group_count", 1, 1, ConfigChecks.MaxExperts);
        int topKGroups = Opt("topk_group", "expert_group_used_count", groups, 1, groups);
        if (gguf)
        {
            long gating = source.Int("", "expert_gating_func") ?? 1;
            scoring = gating switch
            {
                1 => ScoringFunction.Softmax,
                2 => ScoringFunction.Sigmoid,
                _ => JevonsException.Throw<ScoringFunction>($"unsupported expert_gating_func {gating} (1 = softmax, 2 = sigmoid)", file, source.Architecture + ".expert_gating_func"),
            };
            method = hasBias || scoring == ScoringFunction.Sigmoid ? TopkMethod.NoAuxTc
                : groups > 1 ? TopkMethod.GroupLimitedGreedy : TopkMethod.Greedy;
        }
        else
        {
            string sf = source.String("scoring_func", null) ?? (isV3 ? "sigmoid" : "softmax");
            scoring = sf switch
            {
                "softmax" => ScoringFunction.Softmax,
                "sigmoid" => ScoringFunction.Sigmoid,
                _ => JevonsException.Throw<ScoringFunction>($"unsupported scoring_func '{sf}' (softmax or sigmoid)", file, "scoring_func"),
            };
            string tm = source.String("topk_method", null) ?? (isV3 ? "noaux_tc" : "greedy");
            method = tm switch
            {
                "greedy" => TopkMethod.Greedy,
                "group_limited_greedy" => TopkMethod.GroupLimitedGreedy,
                "noaux_tc" => TopkMethod.NoAuxTc,
                _ => JevonsException.Throw<TopkMethod>($"unsupported topk_method '{tm}' (greedy, group_limited_greedy or noaux_tc)", file, "topk_method"),
            };
            if (routed > 0 && method == TopkMethod.NoAuxTc && !hasBias)
                JevonsException.Throw($"topk_method noaux_tc needs tensor 'model.layers.N.{biasName}', found none", source.Weights.Path, biasName);
        }

        return new DeepSeekConfig
        {
            VocabSize = 0, // from the embedding tensor (checked against vocab_size by the loader)
            HiddenSize = hidden,
            Layers = layers,
            Heads = heads,
            QLoraRank = qLora,
            KvLoraRank = kvLora,
            QkNopeHeadDim = qkNope,
            QkRopeHeadDim = rope,
            VHeadDim = vHead,
            IntermediateSize = Req("intermediate_size", "feed_forward_length"),
            MoeIntermediateSize = routed > 0 ? Req("moe_intermediate_size", "expert_feed_forward_length") : 0,
            RoutedExperts = routed,
            SharedExperts = routed > 0 ? Opt("n_shared_experts", "expert_shared_count", 0, 0, ConfigChecks.MaxExperts) : 0,
            ExpertsPerToken = routed > 0 ? Req("num_experts_per_tok", "expert_used_count", 1, routed) : 0,
            FirstKDenseReplace = firstDense,
            MoeLayerFreq = Math.Max(1, Opt("moe_layer_freq", null, 1, 0, ConfigChecks.MaxLayers)),
            Groups = groups,
            TopKGroups = topKGroups,
            TopkMethod = method,
            Scoring = scoring,
            NormTopKProb = source.Bool("norm_topk_prob", "expert_weights_norm") ?? false,
            RoutedScalingFactor = (float)ConfigChecks.Positive(source, KeyOf("routed_scaling_factor", "expert_weights_scale"),
                source.Float("routed_scaling_factor", "expert_weights_scale") ?? 1.0, float.MaxValue),
            HasRouterBias = hasBias,
            RopeTheta = Positive("rope_theta", "rope.freq_base", 10000.0),
            Yarn = ReadYarn(source),
            RmsNormEps = (float)ConfigChecks.Positive(source, KeyOf("rms_norm_eps", "attention.layer_norm_rms_epsilon"),
                source.Float("rms_norm_eps", "attention.layer_norm_rms_epsilon") ?? 1e-6, 1),
            ContextLength = Opt("max_position_embeddings", "context_length", 4096, 1, ConfigChecks.MaxContext),
            MtpLayers = mtp,
            Fp8BlockSize = ReadFp8BlockSize(source),
        };
    }

    static YarnSettings? ReadYarn(ModelSource source)
    {
        var file = source.Config.File;
        if (source.Format == ModelFormat.Gguf)
        {
            var type = source.String("", "rope.scaling.type");
            if (type is null || type == "none") return null;
            if (type != "yarn")
                JevonsException.Throw($"unsupported rope scaling '{type}' for deepseek2 (yarn or none)", file, source.Architecture + ".rope.scaling.type");
            string K(string g) => ConfigChecks.KeyName(source, "", g);
            return new YarnSettings(
                ConfigChecks.Positive(source, K("rope.scaling.factor"), source.RequireFloat("", "rope.scaling.factor")),
                ConfigChecks.Int(source, K("rope.scaling.original_context_length"), source.RequireInt("", "rope.scaling.original_context_length"), 1, ConfigChecks.MaxContext),
                ConfigChecks.Finite(source, K("rope.scaling.yarn_beta_fast"), source.Float("", "rope.scaling.yarn_beta_fast") ?? 32),
                ConfigChecks.Finite(source, K("rope.scaling.yarn_beta_slow"), source.Float("", "rope.scaling.yarn_beta_slow") ?? 1),
                ConfigChecks.Finite(source, K("rope.scaling.yarn_log_multiplier"), source.Float("", "rope.scaling.yarn_log_multiplier") ?? 0));
        }
        var t = source.String("rope_scaling.type", null) ?? source.String("rope_scaling.rope_type", null);
        if (t is null || t == "default") return null;
        if (t != "yarn")
            JevonsException.Throw($"unsupported rope_scaling type '{t}' (yarn or null)", file, "rope_scaling.type");
        // The reference (inference/model.py) takes mscale_all_dim with a default of 1.0 and applies no
        // separate cos/sin factor; every real config has mscale == mscale_all_dim, where HF agrees.
        return new YarnSettings(
            ConfigChecks.Positive(source, "rope_scaling.factor", source.RequireFloat("rope_scaling.factor", null)),
            ConfigChecks.Int(source, "rope_scaling.original_max_position_embeddings", source.RequireInt("rope_scaling.original_max_position_embeddings", null), 1, ConfigChecks.MaxContext),
            ConfigChecks.Finite(source, "rope_scaling.beta_fast", source.Float("rope_scaling.beta_fast", null) ?? 32),
            ConfigChecks.Finite(source, "rope_scaling.beta_slow", source.Float("rope_scaling.beta_slow", null) ?? 1),
            0.1 * ConfigChecks.Finite(source, "rope_scaling.mscale_all_dim", source.Float("rope_scaling.mscale_all_dim", null) ?? 1.0));
    }

    static int ReadFp8BlockSize(ModelSource source)
    {
        if (source.Format == ModelFormat.Gguf) return 128;
        var block = source.Config.GetIntArray("quantization_config.weight_block_size");
        if (block is null) return 128;
        if (block.Length != 2 || block[0] != block[1] || block[0] <= 0 || block[0] > ConfigChecks.MaxDimension)
            JevonsException.Throw($"unsupported weight_block_size [{string.Join(", ", block)}] (square blocks only)", source.Config.File, "quantization_config.weight_block_size");
        return (int)block[0];
    }
}

/// <summary>A multi-token-prediction layer found in the files: kept for speculative decoding, unused for next-token inference.</summary>
public sealed record MtpLayer(int Index, IReadOnlyList<TensorView> Tensors)
{
    public long Parameters => Tensors.Where(t => !t.Name.EndsWith("_scale_inv", StringComparison.Ordinal)).Sum(t => t.ElementCount);
    public long Bytes => Tensors.Sum(t => t.ByteLength);
}

/// <summary>
/// DeepSeek-V2/V3/R1: Multi-head Latent Attention with a latent KV cache, DeepSeekMoE (shared + routed
/// experts, softmax / sigmoid + bias routers with group-limited selection), native FP8 weights. Serves HF
/// DeepseekV2ForCausalLM / DeepseekV3ForCausalLM checkpoints and GGUF deepseek2 files.
/// </summary>
public sealed class DeepSeek : DecoderModel
{
    /// <summary>Tensor roles and their names in both formats ({L} layer, {E} expert). GGUF experts are stacked.</summary>
    enum W
    {
        Embed, FinalNorm, Head, AttnNorm, FfnNorm, Q, QA, QANorm, QB, KvA, KvANorm, KvB, KB, VB, O,
        Gate, Up, Down, Router, RouterBias, ExpertGate, ExpertUp, ExpertDown, SharedGate, SharedUp, SharedDown,
    }

    static readonly Dictionary<W, (string? Hf, string Gguf)> Names = new()
    {
        [W.Embed] = ("model.embed_tokens.weight", "token_embd.weight"),
        [W.FinalNorm] = ("model.norm.weight", "output_norm.weight"),
        [W.Head] = ("lm_head.weight", "output.weight"),
        [W.AttnNorm] = ("model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight"),
        [W.FfnNorm] = ("model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight"),
        [W.Q] = ("model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight"),
        [W.QA] = ("model.layers.{L}.self_attn.q_a_proj.weight", "blk.{L}.attn_q_a.weight"),
        [W.QANorm] = ("model.layers.{L}.self_attn.q_a_layernorm.weight", "blk.{L}.attn_q_a_norm.weight"),
        [W.QB] = ("model.layers.{L}.self_attn.q_b_proj.weight", "blk.{L}.attn_q_b.weight"),
        [W.KvA] = ("model.layers.{L}.self_attn.kv_a_proj_with_mqa.weight", "blk.{L}.attn_kv_a_mqa.weight"),
        [W.KvANorm] = ("model.layers.{L}.self_attn.kv_a_layernorm.weight", "blk.{L}.attn_kv_a_norm.weight"),
        [W.KvB] = ("model.layers.{L}.self_attn.kv_b_proj.weight", "blk.{L}.attn_kv_b.weight"),
        [W.KB] = (null, "blk.{L}.attn_k_b.weight"),
        [W.VB] = (null, "blk.{L}.attn_v_b.weight"),
        [W.O] = ("model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight"),
        [W.Gate] = ("model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight"),
        [W.Up] = ("model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight"),
        [W.Down] = ("model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight"),
        [W.Router] = ("model.layers.{L}.mlp.gate.weight", "blk.{L}.ffn_gate_inp.weight"),
        [W.RouterBias] = ("model.layers.{L}.mlp.gate.e_score_correction_bias", "blk.{L}.exp_probs_b.bias"),
        [W.ExpertGate] = ("model.layers.{L}.mlp.experts.{E}.gate_proj.weight", "blk.{L}.ffn_gate_exps.weight"),
        [W.ExpertUp] = ("model.layers.{L}.mlp.experts.{E}.up_proj.weight", "blk.{L}.ffn_up_exps.weight"),
        [W.ExpertDown] = ("model.layers.{L}.mlp.experts.{E}.down_proj.weight", "blk.{L}.ffn_down_exps.weight"),
        [W.SharedGate] = ("model.layers.{L}.mlp.shared_experts.gate_proj.weight", "blk.{L}.ffn_gate_shexp.weight"),
        [W.SharedUp] = ("model.layers.{L}.mlp.shared_experts.up_proj.weight", "blk.{L}.ffn_up_shexp.weight"),
        [W.SharedDown] = ("model.layers.{L}.mlp.shared_experts.down_proj.weight", "blk.{L}.ffn_down_shexp.weight"),
    };

    sealed class Layer
    {
        public required float[] AttnNorm, FfnNorm;
        public required Mla Attention;
        public FeedForward? Dense;
        public Moe? Moe;
    }

    readonly ModelSource _source;
    readonly bool _ownsSource;
    readonly WorkerPool _pool;
    readonly TensorView _embed;
    readonly Layer[] _layers;
    readonly Dictionary<string, TensorView> _used = new();

    DeepSeek(ModelSource source, ModelOptions options, MlaAttentionMode mode, bool ownsSource) : base(options)
    {
        _source = source;
        _ownsSource = ownsSource;
        _pool = new WorkerPool(options.Threads);
        AttentionMode = mode;
        var cfg = DeepSeekConfig.Read(source);

        _embed = Get(Name(W.Embed));
        if (_embed.Rank != 2 || _embed.Shape[1] != cfg.HiddenSize)
            Fail(_embed, $"shape {_embed.ShapeText} disagrees with the config (hidden_size {cfg.HiddenSize}: expected [vocab, {cfg.HiddenSize}])");
        int vocab = checked((int)_embed.Shape[0]);
        long? declared = source.Int("vocab_size", "vocab_size");
        if (declared is long dv && dv != vocab)
            Fail(_embed, $"shape {_embed.ShapeText} disagrees with the config (vocab_size {dv})");
        Config = cfg = cfg with { VocabSize = vocab };

        var finalNorm = Vector(Name(W.FinalNorm), cfg.HiddenSize);
        var head = Contains(Name(W.Head)) || source.Bool("tie_word_embeddings", null) != true
            ? LoadLinear(Name(W.Head), vocab, cfg.HiddenSize) // DeepSeek never ties; a missing head is an error
            : Linear.FromTensor(_embed);

        var invFreq = Yarn.InverseFrequencies(cfg.QkRopeHeadDim, cfg.RopeTheta, cfg.Yarn);
        float softmaxScale = Yarn.SoftmaxScale(cfg.QkHeadDim, cfg.Yarn);
        var shape = new MlaShape(cfg.HiddenSize, cfg.Heads, cfg.QLoraRank, cfg.KvLoraRank, cfg.QkNopeHeadDim, cfg.QkRopeHeadDim, cfg.VHeadDim);

        _layers = new Layer[cfg.Layers];
        for (int l = 0; l < cfg.Layers; l++)
        {
            _layers[l] = new Layer
            {
                AttnNorm = Vector(Name(W.AttnNorm, l), cfg.HiddenSize),
                FfnNorm = Vector(Name(W.FfnNorm, l), cfg.HiddenSize),
                Attention = LoadAttention(cfg, shape, l, invFreq, softmaxScale),
            };
            if (cfg.IsMoeLayer(l)) _layers[l].Moe = LoadMoe(cfg, l);
            else _layers[l].Dense = LoadFeedForward(W.Gate, W.Up, W.Down, l, cfg.IntermediateSize);
        }

        var layers = new DecoderLayer[cfg.Layers];
        for (int l = 0; l < cfg.Layers; l++)
            layers[l] = new DecoderLayer(_layers[l].AttnNorm, _layers[l].Attention, _layers[l].FfnNorm, (IFeedForwardBlock?)_layers[l].Moe ?? _layers[l].Dense!);
        // MLA's decoupled rope: YaRN frequencies, interleaved pairs (HF and llama.cpp alike).
        var rope = RopeFrequencies.FromInverseFrequencies(invFreq, neox: false);
        Decoder = new Decoder(_embed, layers, finalNorm, head, rope, cfg.RmsNormEps, cfg.ContextLength, _pool, source.Path);

        MtpLayers = FindMtpLayers(cfg);
        Description = Describe(cfg);
    }

    protected override ModelSource Source => _source;

    protected override string FingerprintText() => Invariant(Config) + "\nmla " + AttentionMode;

    protected override DecoderKvCache NewCache(int blockSize, int blocks, KvType type, int maxStepTokens) =>
        new LatentPagedCache(this, blockSize, blocks, type, Config.Layers, Config.KvLoraRank, Config.QkRopeHeadDim, maxStepTokens);

    public override long KvBytesPerToken(KvType type) => LatentPagedCache.BytesPerToken(Config.Layers, Config.KvLoraRank, Config.QkRopeHeadDim, type);

    /// <summary>Loads a DeepSeek model (absorbed MLA) from an opened source; the model does not own the source.</summary>
    public static Model Create(ModelSource source, ModelOptions options) => new DeepSeek(source, options, MlaAttentionMode.Absorbed, ownsSource: false);

    /// <summary>Loads a DeepSeek model with the given MLA evaluation (the decompressed one is the reference).</summary>
    public static DeepSeek Create(ModelSource source, ModelOptions options, MlaAttentionMode mode) => new(source, options, mode, ownsSource: false);

    /// <summary>True for the architectures this class serves (HF architectures[0] or GGUF general.architecture).</summary>
    public static bool Serves(string architecture) =>
        architecture is "deepseek2" or "DeepseekV2ForCausalLM" or "DeepseekV3ForCausalLM";

    public DeepSeekConfig Config { get; }
    public MlaAttentionMode AttentionMode { get; }
    public override ModelDescription Description { get; }

    /// <summary>MTP layers in the files (model.layers.{n ≥ num_hidden_layers}.*), not used for next-token inference.</summary>
    public IReadOnlyList<MtpLayer> MtpLayers { get; }

    /// <summary>Called with the residual stream [rows, hidden] after each decoder layer (debugging against hidden goldens).</summary>
    public Decoder.LayerObserver? OnLayer { get => Decoder.LayerHook; set => Decoder.LayerHook = value; }

    /// <summary>Called with every row's routing decision in every MoE layer.</summary>
    public RoutingObserver? OnRouting { get => Decoder.RoutingHook; set => Decoder.RoutingHook = value; }

    // ---------------------------------------------------------------- loading

    string Name(W role, int layer = 0, int expert = 0)
    {
        var (hf, gguf) = Names[role];
        var pattern = _source.Format == ModelFormat.Gguf ? gguf : hf ?? throw new InvalidOperationException($"{role} has no HF name");
        return pattern.Replace("{L}", layer.ToString(CultureInfo.InvariantCulture)).Replace("{E}", expert.ToString(CultureInfo.InvariantCulture));
    }

    bool Contains(string name) => _source.Weights.Contains(name);

    TensorView Get(string name)
    {
        var t = _source.Weights.TryGet(name) ?? JevonsException.Throw<TensorView>("missing tensor", _source.Weights.Path, name);
        _used.TryAdd(name, t);
        return t;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    static void Fail(TensorView t, string message) => JevonsException.Throw(message, t.File, t.Name);

    float[] Vector(string name, int length)
    {
        var t = Get(name);
        if (t.ElementCount != length)
            Fail(t, $"shape {t.ShapeText} disagrees with the config (expected [{length}])");
        return t.ToFloatArray();
    }

    /// <summary>A [out, in] weight, with its FP8 weight_scale_inv companion when stored as F8_E4M3.</summary>
    Linear LoadLinear(string name, int outFeatures, int inFeatures)
    {
        var w = Get(name);
        if (w.Rank != 2 || w.Shape[0] != outFeatures || w.Shape[1] != inFeatures)
            Fail(w, $"shape {w.ShapeText} disagrees with the config (expected [{outFeatures}, {inFeatures}])");
        TensorView? scale = null;
        if (w.Type == DType.F8_E4M3)
        {
            var scaleName = name + "_scale_inv";
            scale = _source.Weights.TryGet(scaleName);
            if (scale is null) Fail(w, $"FP8 weight has no '{scaleName}' (weight_scale_inv) tensor");
            _used.TryAdd(scaleName, scale);
        }
        return Linear.FromTensor(w, scale, null, Config.Fp8BlockSize);
    }

    /// <summary>Expert slices of a GGUF stacked tensor [experts, out, in].</summary>
    Linear[] LoadStacked(string name, int experts, int outFeatures, int inFeatures)
    {
        var w = Get(name);
        if (w.Rank != 3 || w.Shape[0] != experts || w.Shape[1] != outFeatures || w.Shape[2] != inFeatures)
            Fail(w, $"shape {w.ShapeText} disagrees with the config (expected [{experts}, {outFeatures}, {inFeatures}])");
        var result = new Linear[experts];
        for (int e = 0; e < experts; e++) result[e] = Linear.FromStacked(w, e);
        return result;
    }

    Mla LoadAttention(DeepSeekConfig c, MlaShape shape, int l, float[] invFreq, float softmaxScale)
    {
        int qDim = c.Heads * c.QkHeadDim;
        Linear? q = null, qA = null, qB = null;
        float[]? qANorm = null;
        if (c.QLoraRank == 0) q = LoadLinear(Name(W.Q, l), qDim, c.HiddenSize);
        else
        {
            qA = LoadLinear(Name(W.QA, l), c.QLoraRank, c.HiddenSize);
            qANorm = Vector(Name(W.QANorm, l), c.QLoraRank);
            qB = LoadLinear(Name(W.QB, l), qDim, c.QLoraRank);
        }
        var kvA = LoadLinear(Name(W.KvA, l), c.KvLoraRank + c.QkRopeHeadDim, c.HiddenSize);
        var kvANorm = Vector(Name(W.KvANorm, l), c.KvLoraRank);
        Linear? kvB = null;
        Linear[]? kB = null, vB = null;
        bool split = _source.Format == ModelFormat.Gguf && Contains(Name(W.KB, l)) && Contains(Name(W.VB, l));
        if (split)
        {
            kB = LoadStacked(Name(W.KB, l), c.Heads, c.KvLoraRank, c.QkNopeHeadDim);
            vB = LoadStacked(Name(W.VB, l), c.Heads, c.VHeadDim, c.KvLoraRank);
        }
        else kvB = LoadLinear(Name(W.KvB, l), c.Heads * (c.QkNopeHeadDim + c.VHeadDim), c.KvLoraRank);
        var o = LoadLinear(Name(W.O, l), c.HiddenSize, c.Heads * c.VHeadDim);
        return new Mla(shape, c.RmsNormEps, invFreq, softmaxScale, q, qA, qANorm, qB, kvA, kvANorm, kvB, kB, vB, o) { Mode = AttentionMode };
    }

    FeedForward LoadFeedForward(W gate, W up, W down, int l, int width) => new(
        LoadLinear(Name(gate, l), width, Config.HiddenSize),
        LoadLinear(Name(up, l), width, Config.HiddenSize),
        LoadLinear(Name(down, l), Config.HiddenSize, width));

    Moe LoadMoe(DeepSeekConfig c, int l)
    {
        var gateName = Name(W.Router, l);
        var gate = LoadLinear(gateName, c.RoutedExperts, c.HiddenSize);
        float[]? bias = null;
        if (c.HasRouterBias || c.TopkMethod == TopkMethod.NoAuxTc && _source.Format == ModelFormat.HuggingFace)
            bias = Vector(Name(W.RouterBias, l), c.RoutedExperts);
        var router = new Router(gate, bias, c.ExpertsPerToken, c.Groups, c.TopKGroups, c.Scoring, c.TopkMethod, c.NormTopKProb, c.RoutedScalingFactor);

        var experts = new FeedForward[c.RoutedExperts];
        int width = c.MoeIntermediateSize;
        if (_source.Format == ModelFormat.Gguf)
        {
            var g = LoadStacked(Name(W.ExpertGate, l), c.RoutedExperts, width, c.HiddenSize);
            var u = LoadStacked(Name(W.ExpertUp, l), c.RoutedExperts, width, c.HiddenSize);
            var d = LoadStacked(Name(W.ExpertDown, l), c.RoutedExperts, c.HiddenSize, width);
            for (int e = 0; e < experts.Length; e++) experts[e] = new FeedForward(g[e], u[e], d[e]);
        }
        else
        {
            for (int e = 0; e < experts.Length; e++)
                experts[e] = new FeedForward(
                    LoadLinear(Name(W.ExpertGate, l, e), width, c.HiddenSize),
                    LoadLinear(Name(W.ExpertUp, l, e), width, c.HiddenSize),
                    LoadLinear(Name(W.ExpertDown, l, e), c.HiddenSize, width));
        }
        FeedForward? shared = c.SharedExperts > 0
            ? LoadFeedForward(W.SharedGate, W.SharedUp, W.SharedDown, l, c.SharedExperts * width)
            : null;
        return new Moe(router, experts, shared);
    }

    List<MtpLayer> FindMtpLayers(DeepSeekConfig c)
    {
        var byLayer = new SortedDictionary<int, List<TensorView>>();
        string prefix = _source.Format == ModelFormat.Gguf ? "blk." : "model.layers.";
        foreach (var name in _source.Weights.TensorNames)
        {
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int dot = name.IndexOf('.', prefix.Length);
            if (dot < 0 || !int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int layer)) continue;
            if (layer < c.Layers) continue;
            if (!byLayer.TryGetValue(layer, out var list)) byLayer[layer] = list = [];
            list.Add(_source.Weights.Get(name));
        }
        return byLayer.Select(kv => new MtpLayer(kv.Key, kv.Value)).ToList();
    }

    ModelDescription Describe(DeepSeekConfig c)
    {
        var bytes = new Dictionary<DType, long>();
        long total = 0;
        foreach (var t in _used.Values)
        {
            bytes[t.Type] = bytes.GetValueOrDefault(t.Type) + t.ByteLength;
            if (!t.Name.EndsWith("_scale_inv", StringComparison.Ordinal)) total += t.ElementCount;
        }
        long inactive = 0;
        foreach (var layer in _layers)
            if (layer.Moe is { } moe)
                inactive += (moe.Router.Experts - moe.Router.TopK) * moe.Experts[0].Parameters;

        string routing = c.RoutedExperts == 0 ? "none"
            : $"{c.Scoring.ToString().ToLowerInvariant()} {MethodName(c.TopkMethod)}, top-{c.ExpertsPerToken} of {c.RoutedExperts}"
              + (c.Groups > 1 ? $" in {c.TopKGroups} of {c.Groups} groups" : "")
              + (c.NormTopKProb ? ", normalised" : "") + $", × {c.RoutedScalingFactor.ToString(CultureInfo.InvariantCulture)}"
              + (c.HasRouterBias ? ", selection bias" : "");
        var details = new List<(string, string)>
        {
            ("attention", $"MLA ({AttentionMode.ToString().ToLowerInvariant()}), {c.Heads} heads"),
            ("q_lora_rank", c.QLoraRank == 0 ? "none (q_proj)" : c.QLoraRank.ToString(CultureInfo.InvariantCulture)),
            ("kv_lora_rank", c.KvLoraRank.ToString(CultureInfo.InvariantCulture)),
            ("qk_nope / qk_rope / v head dims", $"{c.QkNopeHeadDim} / {c.QkRopeHeadDim} / {c.VHeadDim}"),
            ("rope", c.Yarn is { } y
                ? $"theta {c.RopeTheta.ToString(CultureInfo.InvariantCulture)}, YaRN factor {y.Factor.ToString(CultureInfo.InvariantCulture)} from {y.OriginalContext}, mscale {y.AttentionMScale.ToString("0.####", CultureInfo.InvariantCulture)}"
                : $"theta {c.RopeTheta.ToString(CultureInfo.InvariantCulture)}"),
            ("dense layers", $"{_layers.Count(x => x.Dense is not null)} (intermediate {c.IntermediateSize})"),
            ("moe layers", c.RoutedExperts == 0 ? "0" : $"{_layers.Count(x => x.Moe is not null)} ({c.RoutedExperts} routed + {c.SharedExperts} shared experts, intermediate {c.MoeIntermediateSize})"),
            ("routing", routing),
            ("kv cache", $"latent c_kv + k_pe, f32: {c.KvBytesPerToken} B/token vs {c.EquivalentMhaKvBytesPerToken} B/token for full MHA ({(double)c.EquivalentMhaKvBytesPerToken / c.KvBytesPerToken:0.#}x smaller)"),
            ("decoded kv_b", _layers.Sum(x => x.Attention.DecodedWeightBytes) is var decoded and > 0
                ? $"{decoded} bytes of float32 copies made at load (quantised kv_b ≤ {Mla.DecodedKvBLimit >> 20} MiB per layer is decoded once, not every step)"
                : "none (kv_b read in its stored type)"),
            ("mtp layers", MtpLayers is { Count: > 0 } m
                ? $"{m.Count} ({string.Join(", ", m.Select(x => x.Index))}; {m.Sum(x => x.Parameters)} parameters, {m.Sum(x => x.Bytes)} bytes; unused for next-token inference)"
                : "0"),
        };
        return new ModelDescription
        {
            Architecture = _source.Architecture,
            Name = _source.Format == ModelFormat.Gguf ? _source.Config.GetString("general.name") ?? "" : Path.GetFileName(Path.TrimEndingDirectorySeparator(_source.Path)),
            VocabSize = c.VocabSize,
            ContextLength = c.ContextLength,
            Layers = c.Layers,
            HiddenSize = c.HiddenSize,
            TotalParameters = total,
            ActiveParameters = total - inactive,
            WeightBytesByType = bytes,
            KvBytesPerToken = c.KvBytesPerToken,
            EquivalentMhaKvBytesPerToken = c.EquivalentMhaKvBytesPerToken,
            Details = details,
        };
    }

    static string MethodName(TopkMethod m) => m switch
    {
        TopkMethod.Greedy => "greedy",
        TopkMethod.GroupLimitedGreedy => "group_limited_greedy",
        _ => "noaux_tc",
    };

    public override void Dispose()
    {
        _pool.Dispose();
        if (_ownsSource) _source.Dispose();
    }
}
