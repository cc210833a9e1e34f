using Jevons.Models.Blocks;
using Jevons.Models.Synthesis;

namespace Jevons.Models;

/// <summary>The shapes and settings of a random-weight DeepSeek model for `jevons synth`.</summary>
public sealed record DeepSeekSynthPreset(
    string Name, string Summary, bool V3, int VocabSize, int HiddenSize, int Layers, int Heads,
    int QLoraRank, int KvLoraRank, int QkNopeHeadDim, int QkRopeHeadDim, int VHeadDim,
    int IntermediateSize, int MoeIntermediateSize, int RoutedExperts, int SharedExperts, int ExpertsPerToken,
    int FirstKDenseReplace, int Groups, int TopKGroups, bool NormTopKProb, float RoutedScalingFactor,
    double RopeTheta, double YarnFactor, int YarnOriginalContext, double YarnMScale, int ContextLength) : ISynthPreset
{
    public static IReadOnlyList<DeepSeekSynthPreset> All { get; } =
    [
        new("deepseek-v2-lite", "DeepSeek-V2-Lite shapes (15.7B parameters, 2.7B active): MLA without q-LoRA, 64 routed + 2 shared experts, top-6, softmax greedy, YaRN 40",
            V3: false, VocabSize: 102400, HiddenSize: 2048, Layers: 27, Heads: 16, QLoraRank: 0, KvLoraRank: 512,
            QkNopeHeadDim: 128, QkRopeHeadDim: 64, VHeadDim: 128, IntermediateSize: 10944, MoeIntermediateSize: 1408,
            RoutedExperts: 64, SharedExperts: 2, ExpertsPerToken: 6, FirstKDenseReplace: 1, Groups: 1, TopKGroups: 1,
            NormTopKProb: false, RoutedScalingFactor: 1.0f, RopeTheta: 10000, YarnFactor: 40, YarnOriginalContext: 4096,
            YarnMScale: 0.707, ContextLength: 163840),
        new("deepseek-v3-mini", "DeepSeek-V3 routing at reduced size: q-LoRA, sigmoid + e_score_correction_bias, noaux_tc in 2 of 4 groups, top-4 of 16, 1 shared expert, YaRN 40",
            V3: true, VocabSize: 4096, HiddenSize: 256, Layers: 4, Heads: 4, QLoraRank: 96, KvLoraRank: 64,
            QkNopeHeadDim: 32, QkRopeHeadDim: 16, VHeadDim: 32, IntermediateSize: 512, MoeIntermediateSize: 64,
            RoutedExperts: 16, SharedExperts: 1, ExpertsPerToken: 4, FirstKDenseReplace: 1, Groups: 4, TopKGroups: 2,
            NormTopKProb: true, RoutedScalingFactor: 2.5f, RopeTheta: 10000, YarnFactor: 40, YarnOriginalContext: 4096,
            YarnMScale: 1.0, ContextLength: 163840),
    ];

    /// <summary>GGUF deepseek2 metadata and config.json (<see cref="DeepSeekConfigWriter"/>), and the tensors in both names.</summary>
    public SynthPlan Plan()
    {
        var t = new SynthTensorList();
        int h = HiddenSize, qDim = Heads * (QkNopeHeadDim + QkRopeHeadDim);
        t.Add("token_embd.weight", "model.embed_tokens.weight", [VocabSize, h], SynthKind.Embedding);
        for (int l = 0; l < Layers; l++)
        {
            string b = $"blk.{l}.", m = $"model.layers.{l}.";
            t.Add(b + "attn_norm.weight", m + "input_layernorm.weight", [h], SynthKind.Norm);
            if (QLoraRank == 0)
                t.Add(b + "attn_q.weight", m + "self_attn.q_proj.weight", [qDim, h], SynthKind.Matrix);
            else
            {
                t.Add(b + "attn_q_a.weight", m + "self_attn.q_a_proj.weight", [QLoraRank, h], SynthKind.Matrix);
                t.Add(b + "attn_q_a_norm.weight", m + "self_attn.q_a_layernorm.weight", [QLoraRank], SynthKind.Norm);
                t.Add(b + "attn_q_b.weight", m + "self_attn.q_b_proj.weight", [qDim, QLoraRank], SynthKind.Matrix);
            }
            t.Add(b + "attn_kv_a_mqa.weight", m + "self_attn.kv_a_proj_with_mqa.weight", [KvLoraRank + QkRopeHeadDim, h], SynthKind.Matrix);
            t.Add(b + "attn_kv_a_norm.weight", m + "self_attn.kv_a_layernorm.weight", [KvLoraRank], SynthKind.Norm);
            t.Add(b + "attn_kv_b.weight", m + "self_attn.kv_b_proj.weight", [Heads * (QkNopeHeadDim + VHeadDim), KvLoraRank], SynthKind.Matrix);
            t.Add(b + "attn_output.weight", m + "self_attn.o_proj.weight", [h, Heads * VHeadDim], SynthKind.Matrix);
            t.Add(b + "ffn_norm.weight", m + "post_attention_layernorm.weight", [h], SynthKind.Norm);
            if (l < FirstKDenseReplace)
            {
                t.Add(b + "ffn_gate.weight", m + "mlp.gate_proj.weight", [IntermediateSize, h], SynthKind.Matrix);
                t.Add(b + "ffn_up.weight", m + "mlp.up_proj.weight", [IntermediateSize, h], SynthKind.Matrix);
                t.Add(b + "ffn_down.weight", m + "mlp.down_proj.weight", [h, IntermediateSize], SynthKind.Matrix);
                continue;
            }
            int w = MoeIntermediateSize, sw = SharedExperts * w;
            t.Add(b + "ffn_gate_inp.weight", m + "mlp.gate.weight", [RoutedExperts, h], SynthKind.Router);
            if (V3) t.Add(b + "exp_probs_b.bias", m + "mlp.gate.e_score_correction_bias", [RoutedExperts], SynthKind.RouterBias);
            t.AddExperts(b + "ffn_gate_exps.weight", e => $"{m}mlp.experts.{e}.gate_proj.weight", RoutedExperts, [w, h], SynthKind.Matrix);
            t.AddExperts(b + "ffn_up_exps.weight", e => $"{m}mlp.experts.{e}.up_proj.weight", RoutedExperts, [w, h], SynthKind.Matrix);
            t.AddExperts(b + "ffn_down_exps.weight", e => $"{m}mlp.experts.{e}.down_proj.weight", RoutedExperts, [h, w], SynthKind.Matrix);
            if (sw > 0)
            {
                t.Add(b + "ffn_gate_shexp.weight", m + "mlp.shared_experts.gate_proj.weight", [sw, h], SynthKind.Matrix);
                t.Add(b + "ffn_up_shexp.weight", m + "mlp.shared_experts.up_proj.weight", [sw, h], SynthKind.Matrix);
                t.Add(b + "ffn_down_shexp.weight", m + "mlp.shared_experts.down_proj.weight", [h, sw], SynthKind.Matrix);
            }
        }
        t.Add("output_norm.weight", "model.norm.weight", [h], SynthKind.Norm);
        t.Add("output.weight", "lm_head.weight", [VocabSize, h], SynthKind.Output);
        return new SynthPlan
        {
            Preset = Name,
            Architecture = "deepseek2",
            VocabSize = VocabSize,
            PreTokenizer = "deepseek-v3",
            GgufMetadata = DeepSeekConfigWriter.GgufMetadata(Config(), $"jevons-synth-{Name}"),
            HfConfig = DeepSeekConfigWriter.HfConfig(Config(), V3, $"jevons-synth-{Name}"),
            HfFp8 = true,
            GgufTensors = t.Gguf,
            HfTensors = t.Hf,
        };
    }

    /// <summary>The preset as the engine's typed config (what the written files read back as).</summary>
    public DeepSeekConfig Config() => new()
    {
        VocabSize = VocabSize, HiddenSize = HiddenSize, Layers = Layers, Heads = Heads,
        QLoraRank = QLoraRank, KvLoraRank = KvLoraRank, QkNopeHeadDim = QkNopeHeadDim, QkRopeHeadDim = QkRopeHeadDim, VHeadDim = VHeadDim,
        IntermediateSize = IntermediateSize, MoeIntermediateSize = MoeIntermediateSize,
        RoutedExperts = RoutedExperts, SharedExperts = SharedExperts, ExpertsPerToken = ExpertsPerToken,
        FirstKDenseReplace = FirstKDenseReplace, MoeLayerFreq = 1, Groups = Groups, TopKGroups = TopKGroups,
        TopkMethod = V3 ? TopkMethod.NoAuxTc : Groups > 1 ? TopkMethod.GroupLimitedGreedy : TopkMethod.Greedy,
        Scoring = V3 ? ScoringFunction.Sigmoid : ScoringFunction.Softmax,
        NormTopKProb = NormTopKProb, RoutedScalingFactor = RoutedScalingFactor, HasRouterBias = V3,
        RopeTheta = RopeTheta, Yarn = new YarnSettings(YarnFactor, YarnOriginalContext, 32, 1, 0.1 * YarnMScale),
        RmsNormEps = 1e-6f, ContextLength = ContextLength, MtpLayers = 0, Fp8BlockSize = 128,
    };
}
