using Jevons.Formats;
using Jevons.Models.Blocks;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Models;

/// <summary>The two dense architectures this file serves; they differ only by config flags.</summary>
public enum DenseFamily { Llama, Qwen2 }

/// <summary>
/// Typed hyper-parameters of a Llama / Qwen2 model (DeepSeek-R1-Distill-Qwen-1.5B … 32B,
/// R1-Distill-Llama-8B / 70B), read from config.json or GGUF metadata through <see cref="Keys"/>.
/// </summary>
public sealed record LlamaConfig
{
    public required DenseFamily Family { get; init; }
    public required int HiddenSize { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int IntermediateSize { get; init; }
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required float RmsEps { get; init; }
    public required double RopeTheta { get; init; }
    public RopeScaling RopeScaling { get; init; } = RopeScaling.None;
    /// <summary>Rotate-half pairing (qwen2 everywhere, every HF checkpoint) vs adjacent pairs (GGUF llama, whose q/k rows are permuted).</summary>
    public required bool RopeNeox { get; init; }
    /// <summary>q/k/v projections carry biases (qwen2; HF llama attention_bias).</summary>
    public required bool QkvBias { get; init; }
    /// <summary>The output projection carries a bias (HF llama attention_bias; GGUF attn_output.bias).</summary>
    public bool OutputBias { get; init; }
    /// <summary>gate/up/down carry biases (HF llama mlp_bias; GGUF ffn_*.bias).</summary>
    public bool MlpBias { get; init; }
    /// <summary>The output projection is the token embedding (no lm_head / output.weight).</summary>
    public required bool TiedEmbeddings { get; init; }

    /// <summary>One config key in both spellings: config.json key and GGUF key after "&lt;arch&gt;." ("" / null = absent there).</summary>
    public readonly record struct Key(string Hf, string? Gguf);

    /// <summary>The one table mapping config.json keys and GGUF metadata keys.</summary>
    public static class Keys
    {
        public static readonly Key Hidden = new("hidden_size", "embedding_length");
        public static readonly Key Layers = new("num_hidden_layers", "block_count");
        public static readonly Key Heads = new("num_attention_heads", "attention.head_count");
        public static readonly Key KvHeads = new("num_key_value_heads", "attention.head_count_kv");
        public static readonly Key HeadDim = new("head_dim", "attention.key_length");
        public static readonly Key RopeDims = new("", "rope.dimension_count");
        public static readonly Key Intermediate = new("intermediate_size", "feed_forward_length");
        public static readonly Key Vocab = new("vocab_size", "vocab_size");
        public static readonly Key Context = new("max_position_embeddings", "context_length");
        public static readonly Key RmsEps = new("rms_norm_eps", "attention.layer_norm_rms_epsilon");
        public static readonly Key RopeTheta = new("rope_theta", "rope.freq_base");
        public static readonly Key RopeType = new("rope_scaling.rope_type", "rope.scaling.type");
        public static readonly Key RopeTypeOld = new("rope_scaling.type", null);
        public static readonly Key RopeFactor = new("rope_scaling.factor", "rope.scaling.factor");
        public static readonly Key RopeScaleLinear = new("", "rope.scale_linear");
        public static readonly Key RopeLowFreq = new("rope_scaling.low_freq_factor", null);
        public static readonly Key RopeHighFreq = new("rope_scaling.high_freq_factor", null);
        public static readonly Key RopeOriginalContext = new("rope_scaling.original_max_position_embeddings", "rope.scaling.original_context_length");
        public static readonly Key TieEmbeddings = new("tie_word_embeddings", null);
        public static readonly Key AttentionBias = new("attention_bias", null);
        public static readonly Key MlpBias = new("mlp_bias", null);
        public static readonly Key SlidingWindow = new("use_sliding_window", null);
        public static readonly Key Name = new("_name_or_path", "general.name");
    }

    /// <summary>Reads the config of a qwen2 / llama GGUF or a Qwen2ForCausalLM / LlamaForCausalLM checkpoint.</summary>
    public static LlamaConfig FromSource(ModelSource src)
    {
        var family = Llama.FamilyOf(src.Architecture)
            ?? JevonsException.Throw<DenseFamily>($"architecture '{src.Architecture}' is not a Llama or Qwen2 model", src.Path);
        bool gguf = src.Format == ModelFormat.Gguf;
        long? Int(Key k) => src.Int(k.Hf, k.Gguf);
        double? Float(Key k) => src.Float(k.Hf, k.Gguf);
        string? Str(Key k) => src.String(k.Hf, k.Gguf);
        bool? Bool(Key k) => src.Bool(k.Hf, k.Gguf);
        int Positive(Key k, long? value, long max = ConfigChecks.MaxDimension) =>
            ConfigChecks.Int(src, FieldName(src, k), value ?? src.RequireInt(k.Hf, k.Gguf), 1, max);

        int hidden = Positive(Keys.Hidden, null);
        int layers = ConfigChecks.Layers(src, FieldName(src, Keys.Layers), src.RequireInt(Keys.Layers.Hf, Keys.Layers.Gguf));
        int heads = Positive(Keys.Heads, null);
        int kvHeads = Positive(Keys.KvHeads, Int(Keys.KvHeads) ?? heads);
        if (heads % kvHeads != 0)
            JevonsException.Throw($"{heads} attention heads is not a multiple of {kvHeads} KV heads ('{FieldName(src, Keys.KvHeads)}')", src.Config.File);
        long? headDimValue = Int(Keys.HeadDim);
        if (headDimValue is null && hidden % heads != 0)
            JevonsException.Throw($"hidden size {hidden} is not a multiple of {heads} heads and '{FieldName(src, Keys.HeadDim)}' is absent", src.Config.File);
        int headDim = Positive(Keys.HeadDim, headDimValue ?? hidden / heads);
        ConfigChecks.Product(src, "attention heads x head dimension", heads, headDim);
        if (headDim % 2 != 0)
            JevonsException.Throw($"head dimension {headDim} is odd; RoPE needs pairs", src.Config.File);
        if (Int(Keys.RopeDims) is long ropeDims && ropeDims != headDim)
            JevonsException.Throw($"'{FieldName(src, Keys.RopeDims)}' = {ropeDims} differs from the head dimension {headDim}; partial rotary embeddings are not supported", src.Config.File);

        long? ff = Int(Keys.Intermediate);
        if (ff is null && gguf && src.Config.GetIntArray(FieldName(src, Keys.Intermediate)) is { Length: > 0 } perLayer)
        {
            if (perLayer.Any(v => v != perLayer[0]))
                JevonsException.Throw($"'{FieldName(src, Keys.Intermediate)}' differs between layers; per-layer FFN widths are not supported", src.Config.File);
            ff = perLayer[0];
        }
        int intermediate = Positive(Keys.Intermediate, ff);

        long? vocab = Int(Keys.Vocab);
        if (vocab is null && gguf)
            vocab = src.Weights.TryGet(TensorNames.Embed.Gguf + ".weight")?.Shape[0];
        int vocabSize = Positive(Keys.Vocab, vocab, Tokenization.Tokenizer.MaxVocabulary);

        int context = Positive(Keys.Context, null, ConfigChecks.MaxContext);
        double eps = ConfigChecks.Positive(src, FieldName(src, Keys.RmsEps), Float(Keys.RmsEps) ?? src.RequireFloat(Keys.RmsEps.Hf, Keys.RmsEps.Gguf), 1);
        double theta = ConfigChecks.Positive(src, FieldName(src, Keys.RopeTheta), Float(Keys.RopeTheta) ?? 10000.0);

        if (Bool(Keys.SlidingWindow) == true)
            JevonsException.Throw($"'{Keys.SlidingWindow.Hf}' is true; sliding-window attention is not supported", src.Config.File);

        var scaling = ReadScaling(src, gguf, Str, Float, Int);

        bool qkvBias, outBias, mlpBias, tied;
        if (gguf)
        {
            bool has(string t) => src.Weights.Contains(t);
            qkvBias = family == DenseFamily.Qwen2 || has("blk.0.attn_q.bias");
            outBias = family == DenseFamily.Llama && has("blk.0.attn_output.bias");
            mlpBias = family == DenseFamily.Llama && has("blk.0.ffn_gate.bias");
            tied = !has(TensorNames.Output.Gguf + ".weight");
        }
        else
        {
            bool attnBias = Bool(Keys.AttentionBias) ?? false;
            qkvBias = family == DenseFamily.Qwen2 || attnBias;
            outBias = family == DenseFamily.Llama && attnBias;
            mlpBias = family == DenseFamily.Llama && (Bool(Keys.MlpBias) ?? false);
            tied = Bool(Keys.TieEmbeddings) ?? !src.Weights.Contains(TensorNames.Output.Hf + ".weight");
        }

        return new LlamaConfig
        {
            Family = family,
            HiddenSize = hidden,
            Layers = layers,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            IntermediateSize = intermediate,
            VocabSize = vocabSize,
            ContextLength = context,
            RmsEps = (float)eps,
            RopeTheta = theta,
            RopeScaling = scaling,
            RopeNeox = !(gguf && family == DenseFamily.Llama),
            QkvBias = qkvBias,
            OutputBias = outBias,
            MlpBias = mlpBias,
            TiedEmbeddings = tied,
        };
    }

    static RopeScaling ReadScaling(ModelSource src, bool gguf, Func<Key, string?> str, Func<Key, double?> flt, Func<Key, long?> integer)
    {
        string? type = str(Keys.RopeType) ?? str(Keys.RopeTypeOld);
        string typeField = FieldName(src, str(Keys.RopeType) is null && !gguf ? Keys.RopeTypeOld : Keys.RopeType);
        double Factor()
        {
            double f = flt(Keys.RopeFactor) ?? JevonsException.Throw<double>($"'{FieldName(src, Keys.RopeFactor)}' is missing for rope scaling '{type}'", src.Config.File);
            return ConfigChecks.Positive(src, FieldName(src, Keys.RopeFactor), f);
        }
        switch (type)
        {
            case null or "none" or "default":
                // Older GGUFs spell linear scaling as rope.scale_linear.
                if (gguf && flt(Keys.RopeScaleLinear) is double lin && lin != 1)
                    return new RopeScaling(RopeScalingKind.Linear, ConfigChecks.Positive(src, FieldName(src, Keys.RopeScaleLinear), lin));
                return RopeScaling.None;
            case "linear":
                return new RopeScaling(RopeScalingKind.Linear, Factor());
            case "llama3" when !gguf:
                return new RopeScaling(RopeScalingKind.Llama3, Factor(),
                    ConfigChecks.Positive(src, FieldName(src, Keys.RopeLowFreq), flt(Keys.RopeLowFreq) ?? 1.0),
                    ConfigChecks.Positive(src, FieldName(src, Keys.RopeHighFreq), flt(Keys.RopeHighFreq) ?? 4.0),
                    ConfigChecks.Int(src, FieldName(src, Keys.RopeOriginalContext),
                        integer(Keys.RopeOriginalContext) ?? JevonsException.Throw<long>($"'{FieldName(src, Keys.RopeOriginalContext)}' is missing for llama3 rope scaling", src.Config.File),
                        1, ConfigChecks.MaxContext));
            default:
                return JevonsException.Throw<RopeScaling>($"'{typeField}' = '{type}' is not supported for {src.Architecture} (supported: none, linear, llama3)", src.Config.File);
        }
    }

    internal static string FieldName(ModelSource src, Key k) =>
        src.Format == ModelFormat.Gguf
            ? (k.Gguf is null ? "" : k.Gguf.StartsWith("general.", StringComparison.Ordinal) ? k.Gguf : src.Architecture + "." + k.Gguf)
            : k.Hf;
}

/// <summary>Tensor names in both layouts: GGUF (token_embd, blk.N.attn_q) and HF (model.embed_tokens, model.layers.N.self_attn.q_proj).</summary>
public static class TensorNames
{
    public readonly record struct Role(string Gguf, string? Hf);

    public static readonly Role Embed = new("token_embd", "model.embed_tokens");
    public static readonly Role OutputNorm = new("output_norm", "model.norm");
    public static readonly Role Output = new("output", "lm_head");
    public static readonly Role RopeFreqs = new("rope_freqs", null);

    public static readonly Role AttnNorm = new("attn_norm", "input_layernorm");
    public static readonly Role Q = new("attn_q", "self_attn.q_proj");
    public static readonly Role K = new("attn_k", "self_attn.k_proj");
    public static readonly Role V = new("attn_v", "self_attn.v_proj");
    public static readonly Role O = new("attn_output", "self_attn.o_proj");
    public static readonly Role FfnNorm = new("ffn_norm", "post_attention_layernorm");
    public static readonly Role Gate = new("ffn_gate", "mlp.gate_proj");
    public static readonly Role Up = new("ffn_up", "mlp.up_proj");
    public static readonly Role Down = new("ffn_down", "mlp.down_proj");

    public static string Global(ModelFormat f, Role r, string suffix = "weight") =>
        (f == ModelFormat.Gguf ? r.Gguf : r.Hf) + "." + suffix;

    public static string Layer(ModelFormat f, int layer, Role r, string suffix = "weight") =>
        f == ModelFormat.Gguf ? $"blk.{layer}.{r.Gguf}.{suffix}" : $"model.layers.{layer}.{r.Hf}.{suffix}";
}

/// <summary>
/// The Llama and Qwen2 architectures (GQA, RoPE with llama3 / linear scaling, SwiGLU, RMSNorm, tied or
/// untied embeddings) from GGUF (qwen2, llama) or HF safetensors (Qwen2ForCausalLM, LlamaForCausalLM).
/// Weights stay views over the mapped files; all per-sequence memory lives in the state.
/// </summary>
public sealed class Llama : DecoderModel
{
    readonly ModelSource source;
    readonly WorkerPool pool;
    readonly TensorView embed;          // [vocab, hidden], any dtype

    /// <summary>The family an architecture name belongs to, or null when it is not one of ours.</summary>
    public static DenseFamily? FamilyOf(string architecture) => architecture switch
    {
        "qwen2" or "Qwen2ForCausalLM" => DenseFamily.Qwen2,
        "llama" or "LlamaForCausalLM" => DenseFamily.Llama,
        _ => null,
    };

    /// <summary>True when <see cref="Create"/> serves this architecture name (GGUF or HF spelling).</summary>
    public static bool Supports(string architecture) => FamilyOf(architecture) is not null;

    /// <summary>Loads a Llama / Qwen2 model. The model owns <paramref name="source"/> and disposes it.</summary>
    public static Model Create(ModelSource source, ModelOptions options) => new Llama(source, options);

    public LlamaConfig Config { get; }

    public override ModelDescription Description { get; }

    Llama(ModelSource source, ModelOptions options) : base(options)
    {
        this.source = source;
        var cfg = Config = LlamaConfig.FromSource(source);
        var fmt = source.Format;
        var used = new List<TensorView>();

        TensorView Tensor(string name, params long[] shape)
        {
            var t = source.Weights.TryGet(name)
                ?? JevonsException.Throw<TensorView>($"missing (required by {source.Architecture} with this config)", source.Weights.Path, name);
            if (!t.Shape.AsSpan().SequenceEqual(shape))
                JevonsException.Throw($"shape {t.ShapeText} disagrees with the config: expected [{string.Join(", ", shape)}]", t.File, name);
            used.Add(t);
            return t;
        }
        float[] Vector(string name, long length)
        {
            var t = Tensor(name, length);
            if (t.Type is not (DType.F32 or DType.F16 or DType.BF16))
                JevonsException.Throw($"a norm / bias vector must be F32, F16 or BF16, found {t.Type.Name()}", t.File, name);
            return t.ToFloatArray();
        }
        Linear Matrix(int layer, TensorNames.Role role, long rows, long cols, bool bias)
        {
            var w = Tensor(TensorNames.Layer(fmt, layer, role), rows, cols);
            TensorView? b = bias ? Tensor(TensorNames.Layer(fmt, layer, role, "bias"), rows) : null;
            return Linear.FromTensor(w, null, b);
        }

        int h = cfg.HiddenSize, qDim = cfg.Heads * cfg.HeadDim, kvDim = cfg.KvHeads * cfg.HeadDim, ff = cfg.IntermediateSize;
        embed = Tensor(TensorNames.Global(fmt, TensorNames.Embed), cfg.VocabSize, h);
        if (h % embed.Type.BlockSize() != 0)
            JevonsException.Throw($"hidden size {h} is not a multiple of the {embed.Type.Name()} block size", embed.File, embed.Name);

        var layers = new DecoderLayer[cfg.Layers];
        for (int l = 0; l < cfg.Layers; l++)
        {
            var attnNorm = Vector(TensorNames.Layer(fmt, l, TensorNames.AttnNorm), h);
            var attention = new GqaAttention(
                Matrix(l, TensorNames.Q, qDim, h, cfg.QkvBias),
                Matrix(l, TensorNames.K, kvDim, h, cfg.QkvBias),
                Matrix(l, TensorNames.V, kvDim, h, cfg.QkvBias),
                Matrix(l, TensorNames.O, h, qDim, cfg.OutputBias),
                cfg.Heads, cfg.KvHeads, cfg.HeadDim);
            var ffnNorm = Vector(TensorNames.Layer(fmt, l, TensorNames.FfnNorm), h);
            var ffn = new FeedForward(
                Matrix(l, TensorNames.Gate, ff, h, cfg.MlpBias),
                Matrix(l, TensorNames.Up, ff, h, cfg.MlpBias),
                Matrix(l, TensorNames.Down, h, ff, cfg.MlpBias));
            layers[l] = new DecoderLayer(attnNorm, attention, ffnNorm, ffn);
        }
        var outputNorm = Vector(TensorNames.Global(fmt, TensorNames.OutputNorm), h);
        var output = cfg.TiedEmbeddings
            ? Linear.FromTensor(embed)
            : Linear.FromTensor(Tensor(TensorNames.Global(fmt, TensorNames.Output), cfg.VocabSize, h));

        float[] factors = [];
        if (fmt == ModelFormat.Gguf && source.Weights.Contains(TensorNames.Global(fmt, TensorNames.RopeFreqs)))
            factors = Vector(TensorNames.Global(fmt, TensorNames.RopeFreqs), cfg.HeadDim / 2);
        var rope = RopeFrequencies.Create(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScaling, factors, cfg.RopeNeox);

        pool = new WorkerPool(options.Threads);
        Decoder = new Decoder(embed, layers, outputNorm, output, rope, cfg.RmsEps, cfg.ContextLength, pool, source.Path);
        Description = Describe(cfg, used, factors.Length > 0);
    }

    protected override ModelSource Source => source;

    protected override string FingerprintText() => Invariant(Config);

    protected override DecoderKvCache NewCache(int blockSize, int blocks, KvType type, int maxStepTokens) =>
        new GqaPagedCache(this, blockSize, blocks, type, Config.Layers, Config.KvHeads, Config.HeadDim, maxStepTokens);

    public override long KvBytesPerToken(KvType type) => GqaPagedCache.BytesPerToken(Config.Layers, Config.KvHeads, Config.HeadDim, type);

    ModelDescription Describe(LlamaConfig cfg, List<TensorView> used, bool ropeFreqs)
    {
        long total = 0;
        var bytes = new Dictionary<DType, long>();
        string ropeFreqsName = TensorNames.Global(source.Format, TensorNames.RopeFreqs);
        foreach (var t in used)
        {
            if (t.Name != ropeFreqsName) total += t.ElementCount; // rope factors are a constant, not a parameter
            bytes[t.Type] = bytes.GetValueOrDefault(t.Type) + t.ByteLength;
        }
        // A token reads one embedding row, not the table; a tied table is read whole as the output projection.
        long active = cfg.TiedEmbeddings ? total : total - embed.ElementCount + cfg.HiddenSize;
        string scaling = ropeFreqs ? "llama3 factors from rope_freqs.weight" : cfg.RopeScaling.ToString();
        return new ModelDescription
        {
            Architecture = source.Architecture,
            Name = source.String(LlamaConfig.Keys.Name.Hf, LlamaConfig.Keys.Name.Gguf) ?? Path.GetFileName(source.Path),
            VocabSize = cfg.VocabSize,
            ContextLength = cfg.ContextLength,
            Layers = cfg.Layers,
            HiddenSize = cfg.HiddenSize,
            TotalParameters = total,
            ActiveParameters = active,
            WeightBytesByType = bytes,
            KvBytesPerToken = GqaPagedCache.BytesPerToken(cfg.Layers, cfg.KvHeads, cfg.HeadDim, KvType.F32),
            Details =
            [
                ("family", cfg.Family.ToString()),
                ("heads", cfg.Heads.ToString()),
                ("kv heads", cfg.KvHeads.ToString()),
                ("head dim", cfg.HeadDim.ToString()),
                ("intermediate size", cfg.IntermediateSize.ToString()),
                ("rope theta", cfg.RopeTheta.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
                ("rope layout", cfg.RopeNeox ? "neox (rotate half)" : "norm (adjacent pairs)"),
                ("rope scaling", scaling),
                ("qkv bias", cfg.QkvBias ? "yes" : "no"),
                ("tied embeddings", cfg.TiedEmbeddings ? "yes" : "no"),
                ("rms eps", cfg.RmsEps.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
                ("kv cache", "f32"),
            ],
        };
    }

    public override void Dispose()
    {
        pool.Dispose();
        source.Dispose();
    }
}

/// <summary>The shapes of a random-weight Llama / Qwen2 model for `jevons synth` (real dimensions, made-up weights).</summary>
public sealed record LlamaSynthPreset(
    string Name,
    string Summary,
    string Architecture,
    int HiddenSize,
    int Layers,
    int Heads,
    int KvHeads,
    int IntermediateSize,
    int VocabSize,
    int ContextLength,
    double RopeTheta,
    float RmsEps,
    bool QkvBias,
    bool TiedEmbeddings,
    RopeScaling RopeScaling) : ISynthPreset
{
    public int HeadDim => HiddenSize / Heads;

    /// <summary>tokenizer.ggml.pre of the synthetic vocabulary: R1-Distill-Qwen's or Llama-3's pre-tokenizer.</summary>
    public string PreTokenizer => Architecture == "llama" ? "llama-bpe" : "deepseek-r1-qwen";

    /// <summary>Presets: a tiny demo model and two real shapes.</summary>
    public static IReadOnlyList<LlamaSynthPreset> All { get; } =
    [
        new("tiny", "tiny qwen2-architecture model (hidden 256, 4 layers, 8 heads / 2 KV heads, vocab 2048) for the demo and tests",
            "qwen2", 256, 4, 8, 2, 768, 2048, 4096, 10000, 1e-6f, QkvBias: true, TiedEmbeddings: false, RopeScaling.None),
        new("r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen-1.5B shapes (qwen2, 1.78B parameters)",
            "qwen2", 1536, 28, 12, 2, 8960, 151936, 131072, 10000, 1e-6f, QkvBias: true, TiedEmbeddings: false, RopeScaling.None),
        new("llama-3-8b", "Llama-3.1-8B / DeepSeek-R1-Distill-Llama-8B shapes (llama, 8.03B parameters, llama3 rope scaling)",
            "llama", 4096, 32, 32, 8, 14336, 128256, 131072, 500000, 1e-5f, QkvBias: false, TiedEmbeddings: false,
            new RopeScaling(RopeScalingKind.Llama3, 8, 1, 4, 8192)),
    ];

    /// <summary>GGUF metadata as llama.cpp's converter writes it, config.json as transformers does, and the tensors in both names.</summary>
    public SynthPlan Plan()
    {
        string a = Architecture;
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.String(a)),
            new("general.name", GgufValue.String($"jevons-synth-{Name}")),
            new($"{a}.context_length", GgufValue.UInt32((uint)ContextLength)),
            new($"{a}.embedding_length", GgufValue.UInt32((uint)HiddenSize)),
            new($"{a}.block_count", GgufValue.UInt32((uint)Layers)),
            new($"{a}.feed_forward_length", GgufValue.UInt32((uint)IntermediateSize)),
            new($"{a}.attention.head_count", GgufValue.UInt32((uint)Heads)),
            new($"{a}.attention.head_count_kv", GgufValue.UInt32((uint)KvHeads)),
            new($"{a}.attention.layer_norm_rms_epsilon", GgufValue.Float32(RmsEps)),
            new($"{a}.rope.freq_base", GgufValue.Float32((float)RopeTheta)),
        };
        if (a == "llama")
        {
            meta.Add(new($"{a}.vocab_size", GgufValue.UInt32((uint)VocabSize)));
            meta.Add(new($"{a}.rope.dimension_count", GgufValue.UInt32((uint)HeadDim)));
        }
        if (RopeScaling.Kind == RopeScalingKind.Linear)
        {
            meta.Add(new($"{a}.rope.scaling.type", GgufValue.String("linear")));
            meta.Add(new($"{a}.rope.scaling.factor", GgufValue.Float32((float)RopeScaling.Factor)));
        }

        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["architectures"] = new System.Text.Json.Nodes.JsonArray(a == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"),
            ["model_type"] = a,
            ["_name_or_path"] = $"jevons-synth-{Name}",
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["max_position_embeddings"] = ContextLength,
            ["rms_norm_eps"] = (double)RmsEps,
            ["rope_theta"] = RopeTheta,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = TiedEmbeddings,
        };
        if (a == "llama") config["attention_bias"] = QkvBias;
        var ropeScaling = RopeScaling.Kind switch
        {
            RopeScalingKind.Linear => new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "linear", ["factor"] = RopeScaling.Factor },
            RopeScalingKind.Llama3 => new System.Text.Json.Nodes.JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = RopeScaling.Factor,
                ["low_freq_factor"] = RopeScaling.LowFreqFactor,
                ["high_freq_factor"] = RopeScaling.HighFreqFactor,
                ["original_max_position_embeddings"] = RopeScaling.OriginalContext,
            },
            _ => null,
        };
        if (ropeScaling is not null) config["rope_scaling"] = ropeScaling;

        int h = HiddenSize, q = Heads * HeadDim, kv = KvHeads * HeadDim, ff = IntermediateSize;
        var t = new SynthTensorList();
        string G(TensorNames.Role r) => TensorNames.Global(ModelFormat.Gguf, r);
        string H(TensorNames.Role r) => TensorNames.Global(ModelFormat.HuggingFace, r);
        t.Add(G(TensorNames.Embed), H(TensorNames.Embed), [VocabSize, h], SynthKind.Embedding);
        if (RopeScaling.Kind == RopeScalingKind.Llama3)
            t.Add(G(TensorNames.RopeFreqs), null, [HeadDim / 2], SynthKind.Fixed, RopeFactors());
        for (int l = 0; l < Layers; l++)
        {
            void Add(TensorNames.Role r, long[] shape, SynthKind kind, string suffix = "weight") =>
                t.Add(TensorNames.Layer(ModelFormat.Gguf, l, r, suffix), TensorNames.Layer(ModelFormat.HuggingFace, l, r, suffix), shape, kind);
            Add(TensorNames.AttnNorm, [h], SynthKind.Norm);
            Add(TensorNames.Q, [q, h], SynthKind.Matrix);
            Add(TensorNames.K, [kv, h], SynthKind.Matrix);
            Add(TensorNames.V, [kv, h], SynthKind.Matrix);
            if (QkvBias)
            {
                Add(TensorNames.Q, [q], SynthKind.Bias, "bias");
                Add(TensorNames.K, [kv], SynthKind.Bias, "bias");
                Add(TensorNames.V, [kv], SynthKind.Bias, "bias");
            }
            Add(TensorNames.O, [h, q], SynthKind.Matrix);
            Add(TensorNames.FfnNorm, [h], SynthKind.Norm);
            Add(TensorNames.Gate, [ff, h], SynthKind.Matrix);
            Add(TensorNames.Up, [ff, h], SynthKind.Matrix);
            Add(TensorNames.Down, [h, ff], SynthKind.Matrix);
        }
        t.Add(G(TensorNames.OutputNorm), H(TensorNames.OutputNorm), [h], SynthKind.Norm);
        if (!TiedEmbeddings)
            t.Add(G(TensorNames.Output), H(TensorNames.Output), [VocabSize, h], SynthKind.Output);

        return new SynthPlan
        {
            Preset = Name,
            Architecture = a,
            VocabSize = VocabSize,
            PreTokenizer = PreTokenizer,
            GgufMetadata = meta,
            HfConfig = config,
            GgufTensors = t.Gguf,
            HfTensors = t.Hf,
        };
    }

    /// <summary>llama3 rope factors as convert_hf_to_gguf writes rope_freqs.weight: freq / scaled freq per pair.</summary>
    float[] RopeFactors()
    {
        var plain = RopeFrequencies.Create(HeadDim, RopeTheta, RopeScaling.None, [], neox: false);
        var scaled = RopeFrequencies.Create(HeadDim, RopeTheta, RopeScaling, [], neox: false);
        var factors = new float[HeadDim / 2];
        for (int i = 0; i < factors.Length; i++)
            factors[i] = (float)(plain.InverseFrequency(i) / scaled.InverseFrequency(i));
        return factors;
    }
}
