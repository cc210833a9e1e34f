using System.Text.Json.Nodes;
using Jevons.Models;
using Jevons.Models.Blocks;

namespace Jevons.Training;

/// <summary>
/// The trainer's DeepSeek-V3 hyper-parameters: the engine's architecture (MLA, DeepSeekMoE with sigmoid
/// scores + e_score_correction_bias, noaux_tc in one group, normalised top-k, MTP) at a small size.
/// </summary>
public sealed record TinyDeepSeekConfig
{
    /// <summary>
    /// "deepseek_v3" (MLA, DeepSeekMoE, MTP), or "qwen2": the R1-Distill-Qwen student's architecture — grouped-query
    /// attention (<see cref="KvHeads"/>) with q/k/v biases and split-half RoPE over each whole head of
    /// <see cref="HeadDim"/>, dense SwiGLU of <see cref="IntermediateSize"/>, no routed experts, no MTP; the MLA
    /// and MoE fields are unused. Exported as Qwen2ForCausalLM (GGUF qwen2).
    /// </summary>
    public string Architecture { get; init; } = "deepseek_v3";
    /// <summary>qwen2: key/value heads, each shared by Heads / KvHeads query heads.</summary>
    public int KvHeads { get; init; }
    public required int VocabSize { get; init; }
    public int HiddenSize { get; init; } = 256;
    /// <summary>Decoder layers (the MTP module comes after them, as layer index <see cref="Layers"/>).</summary>
    public int Layers { get; init; } = 4;
    public int Heads { get; init; } = 4;
    /// <summary>0: plain q_proj.</summary>
    public int QLoraRank { get; init; } = 96;
    public int KvLoraRank { get; init; } = 64;
    public int QkNopeHeadDim { get; init; } = 32;
    public int QkRopeHeadDim { get; init; } = 16;
    public int VHeadDim { get; init; } = 32;
    public int IntermediateSize { get; init; } = 768;
    public int MoeIntermediateSize { get; init; } = 192;
    public int RoutedExperts { get; init; } = 8;
    public int SharedExperts { get; init; } = 1;
    public int ExpertsPerToken { get; init; } = 2;
    public int FirstKDenseReplace { get; init; } = 1;
    public bool NormTopKProb { get; init; } = true;
    public float RoutedScalingFactor { get; init; } = 1.0f;
    public double RopeTheta { get; init; } = 10000;
    public float RmsNormEps { get; init; } = 1e-6f;
    public int ContextLength { get; init; } = 512;
    /// <summary>num_nextn_predict_layers: 0 or 1 (V3's D = 1).</summary>
    public int MtpLayers { get; init; } = 1;
    /// <summary>λ of the MTP loss.</summary>
    public float MtpLossWeight { get; init; } = 0.3f;
    /// <summary>
    /// γ of the aux-loss-free balancing: b_i += γ·sign(mean load − load_i) after each step; 0 turns it off.
    /// V3 used 1e-3 over a very long run; in 150 tiny-r1 steps 1e-2 brings max/mean expert load from ~3 to
    /// ~1.3 at the same loss, where 1e-3 barely moves it (docs/training.md).
    /// </summary>
    public float BiasUpdateSpeed { get; init; } = 1e-2f;
    public int BosTokenId { get; init; }
    public int EosTokenId { get; init; } = 1;

    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    public bool IsQwen2 => Architecture == "qwen2";

    /// <summary>qwen2: hidden / heads (HF Qwen2's head_dim).</summary>
    public int HeadDim => HiddenSize / Heads;

    /// <summary>One-line errors for a configuration the trainer cannot build.</summary>
    public void Validate()
    {
        if (Architecture is not ("deepseek_v3" or "qwen2"))
            JevonsException.Throw($"architecture '{Architecture}': the trainer builds deepseek_v3 or qwen2");
        if (!IsQwen2) return;
        if (RoutedExperts != 0 || MtpLayers != 0) JevonsException.Throw("a qwen2 model has no routed experts and no MTP layer");
        if (KvHeads <= 0 || Heads % KvHeads != 0) JevonsException.Throw($"qwen2: {Heads} heads cannot share {KvHeads} key/value heads");
        if (HiddenSize % Heads != 0 || HeadDim % 2 != 0) JevonsException.Throw($"qwen2: hidden {HiddenSize} over {Heads} heads is no even head size");
    }

    /// <summary>HF: layer ≥ first_k_dense_replace (moe_layer_freq 1). The MTP layer follows the same rule.</summary>
    public bool IsMoeLayer(int layer) => RoutedExperts > 0 && layer >= FirstKDenseReplace;

    /// <summary>The preset names <see cref="Preset"/> knows.</summary>
    public static readonly string[] Presets = ["tiny-r1", "tiny-r1-dense", "tiny-r1-qwen2", "micro", "micro-qwen2"];

    /// <summary>
    /// tiny-r1: hidden 256, 4 layers (1 dense + 3 MoE of 1 shared + 8 routed top-2), 4 MLA heads,
    /// q_lora 96, kv_lora 64, MTP 1 (MoE), context 1024 (a three-number product's worked solution runs to ~600 tokens) — about 7.3 M parameters with a 1–2k vocabulary.
    /// tiny-r1-dense: the distillation student (the R1-Distill analogue): hidden 128, 4 dense layers (SwiGLU 288), MLA, no MTP —
    /// 0.81 M parameters with the 294-id tokenizer, under a third of the 2.53 M that tiny-r1 uses per token.
    /// tiny-r1-qwen2: the same student in Qwen2's architecture (as R1-Distill-Qwen): hidden 128, 4 layers, 4 heads sharing
    /// 2 key/value heads of 32, SwiGLU 288 — 0.72 M parameters with the 303-id tokenizer.
    /// micro, micro-qwen2: 2-layer models for tests (hidden 32).
    /// </summary>
    public static TinyDeepSeekConfig Preset(string name, int vocab) => name switch
    {
        "tiny-r1" => new TinyDeepSeekConfig { VocabSize = vocab, ContextLength = 1024 },
        "tiny-r1-dense" => new TinyDeepSeekConfig
        {
            VocabSize = vocab, ContextLength = 1024, HiddenSize = 128, Layers = 4, Heads = 4, IntermediateSize = 288,
            RoutedExperts = 0, SharedExperts = 0, MtpLayers = 0,
        },
        "tiny-r1-qwen2" => new TinyDeepSeekConfig
        {
            Architecture = "qwen2", VocabSize = vocab, ContextLength = 1024, HiddenSize = 128, Layers = 4, Heads = 4, KvHeads = 2,
            IntermediateSize = 288, RoutedExperts = 0, SharedExperts = 0, MtpLayers = 0,
        },
        "micro-qwen2" => Preset("tiny-r1-qwen2", vocab) with { HiddenSize = 32, Layers = 2, IntermediateSize = 64, ContextLength = 512 },
        "micro" => new TinyDeepSeekConfig
        {
            VocabSize = vocab, HiddenSize = 32, Layers = 2, Heads = 2, QLoraRank = 0, KvLoraRank = 16,
            QkNopeHeadDim = 8, QkRopeHeadDim = 8, VHeadDim = 8, IntermediateSize = 64, MoeIntermediateSize = 16,
            RoutedExperts = 4, SharedExperts = 1, ExpertsPerToken = 2,
        },
        _ => JevonsException.Throw<TinyDeepSeekConfig>($"unknown preset '{name}' (presets: {string.Join(", ", Presets)})"),
    };

    /// <summary>The engine's typed config of this model: what its exported files read back as.</summary>
    public DeepSeekConfig ToDeepSeekConfig() => new()
    {
        VocabSize = VocabSize, HiddenSize = HiddenSize, Layers = Layers, Heads = Heads,
        QLoraRank = QLoraRank, KvLoraRank = KvLoraRank, QkNopeHeadDim = QkNopeHeadDim, QkRopeHeadDim = QkRopeHeadDim, VHeadDim = VHeadDim,
        IntermediateSize = IntermediateSize, MoeIntermediateSize = MoeIntermediateSize,
        RoutedExperts = RoutedExperts, SharedExperts = SharedExperts, ExpertsPerToken = ExpertsPerToken,
        FirstKDenseReplace = FirstKDenseReplace, MoeLayerFreq = 1, Groups = 1, TopKGroups = 1,
        TopkMethod = TopkMethod.NoAuxTc, Scoring = ScoringFunction.Sigmoid,
        NormTopKProb = NormTopKProb, RoutedScalingFactor = RoutedScalingFactor, HasRouterBias = RoutedExperts > 0,
        RopeTheta = RopeTheta, Yarn = null, RmsNormEps = RmsNormEps, ContextLength = ContextLength,
        MtpLayers = MtpLayers, Fp8BlockSize = 128,
    };

    /// <summary>config.json as DeepSeek-V3 ships it (<see cref="DeepSeekConfigWriter"/>), plus the token ids and the trainer's own settings.</summary>
    public JsonObject ToHfConfig()
    {
        if (IsQwen2) return ToQwen2Config();
        var c = DeepSeekConfigWriter.HfConfig(ToDeepSeekConfig(), v3: true);
        c["bos_token_id"] = BosTokenId;
        c["eos_token_id"] = EosTokenId;
        c["torch_dtype"] = "float32";
        c["use_cache"] = true;
        c["jevons_training"] = new JsonObject
        {
            ["mtp_loss_weight"] = (double)MtpLossWeight,
            ["bias_update_speed"] = (double)BiasUpdateSpeed,
        };
        return c;
    }

    /// <summary>The engine's Qwen2 shape of this model: its config.json and GGUF keys are those <c>jevons synth</c> writes.</summary>
    public LlamaSynthPreset ToQwen2Shape() => new("tiny-qwen2", "trainer student", "qwen2", HiddenSize, Layers, Heads, KvHeads, IntermediateSize,
        VocabSize, ContextLength, RopeTheta, RmsNormEps, QkvBias: true, TiedEmbeddings: false, RopeScaling.None);

    /// <summary>config.json as transformers writes Qwen2ForCausalLM's (the keys R1-Distill-Qwen ships), plus the token ids.</summary>
    JsonObject ToQwen2Config()
    {
        var c = ToQwen2Shape().Plan().HfConfig;
        c.Remove("_name_or_path");
        c["use_sliding_window"] = false;
        c["bos_token_id"] = BosTokenId;
        c["eos_token_id"] = EosTokenId;
        c["torch_dtype"] = "float32";
        c["use_cache"] = true;
        return c;
    }

    /// <summary>Reads back what <see cref="ToHfConfig"/> wrote (checkpoints carry it).</summary>
    public static TinyDeepSeekConfig FromHfConfig(JsonObject c)
    {
        int I(string k) => c[k]!.GetValue<int>();
        if (c["model_type"]?.GetValue<string>() == "qwen2")
            return new TinyDeepSeekConfig
            {
                Architecture = "qwen2", VocabSize = I("vocab_size"), HiddenSize = I("hidden_size"), Layers = I("num_hidden_layers"),
                Heads = I("num_attention_heads"), KvHeads = I("num_key_value_heads"), IntermediateSize = I("intermediate_size"),
                RoutedExperts = 0, SharedExperts = 0, MtpLayers = 0, RopeTheta = c["rope_theta"]!.GetValue<double>(),
                RmsNormEps = (float)c["rms_norm_eps"]!.GetValue<double>(), ContextLength = I("max_position_embeddings"),
                BosTokenId = I("bos_token_id"), EosTokenId = I("eos_token_id"),
            };
        var t = c["jevons_training"] as JsonObject;
        return new TinyDeepSeekConfig
        {
            VocabSize = I("vocab_size"), HiddenSize = I("hidden_size"), Layers = I("num_hidden_layers"), Heads = I("num_attention_heads"),
            QLoraRank = c["q_lora_rank"] is null ? 0 : I("q_lora_rank"), KvLoraRank = I("kv_lora_rank"),
            QkNopeHeadDim = I("qk_nope_head_dim"), QkRopeHeadDim = I("qk_rope_head_dim"), VHeadDim = I("v_head_dim"),
            IntermediateSize = I("intermediate_size"), MoeIntermediateSize = I("moe_intermediate_size"),
            RoutedExperts = I("n_routed_experts"), SharedExperts = I("n_shared_experts"), ExpertsPerToken = I("num_experts_per_tok"),
            FirstKDenseReplace = I("first_k_dense_replace"), NormTopKProb = c["norm_topk_prob"]!.GetValue<bool>(),
            RoutedScalingFactor = (float)c["routed_scaling_factor"]!.GetValue<double>(), RopeTheta = c["rope_theta"]!.GetValue<double>(),
            RmsNormEps = (float)c["rms_norm_eps"]!.GetValue<double>(), ContextLength = I("max_position_embeddings"),
            MtpLayers = I("num_nextn_predict_layers"), BosTokenId = I("bos_token_id"), EosTokenId = I("eos_token_id"),
            MtpLossWeight = (float)(t?["mtp_loss_weight"]?.GetValue<double>() ?? 0.3),
            BiasUpdateSpeed = (float)(t?["bias_update_speed"]?.GetValue<double>() ?? 1e-2),
        };
    }
}
