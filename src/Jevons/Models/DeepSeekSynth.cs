using System.Text.Json.Nodes;
using Jevons.Formats;
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

    /// <summary>GGUF deepseek2 metadata as llama.cpp's converter writes it, config.json as DeepSeek ships it, and the tensors in both names.</summary>
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
            GgufMetadata = GgufMetadata(),
            HfConfig = HfConfig(),
            HfFp8 = true,
            GgufTensors = t.Gguf,
            HfTensors = t.Hf,
        };
    }

    List<KeyValuePair<string, GgufValue>> GgufMetadata()
    {
        const string a = "deepseek2";
        static KeyValuePair<string, GgufValue> U(string k, int v) => new(k, GgufValue.UInt32((uint)v));
        static KeyValuePair<string, GgufValue> F(string k, double v) => new(k, GgufValue.Float32((float)v));
        var m = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.String(a)),
            new("general.name", GgufValue.String($"jevons-synth-{Name}")),
            U($"{a}.context_length", ContextLength),
            U($"{a}.embedding_length", HiddenSize),
            U($"{a}.block_count", Layers),
            U($"{a}.feed_forward_length", IntermediateSize),
            U($"{a}.attention.head_count", Heads),
            U($"{a}.attention.head_count_kv", Heads),
            F($"{a}.attention.layer_norm_rms_epsilon", 1e-6),
            F($"{a}.rope.freq_base", RopeTheta),
            U($"{a}.rope.dimension_count", QkRopeHeadDim),
            U($"{a}.attention.key_length", QkNopeHeadDim + QkRopeHeadDim),
            U($"{a}.attention.value_length", VHeadDim),
            U($"{a}.attention.kv_lora_rank", KvLoraRank),
            U($"{a}.vocab_size", VocabSize),
            U($"{a}.leading_dense_block_count", FirstKDenseReplace),
            U($"{a}.expert_count", RoutedExperts),
            U($"{a}.expert_used_count", ExpertsPerToken),
            U($"{a}.expert_shared_count", SharedExperts),
            U($"{a}.expert_feed_forward_length", MoeIntermediateSize),
            F($"{a}.expert_weights_scale", RoutedScalingFactor),
            new($"{a}.expert_weights_norm", GgufValue.Bool(NormTopKProb)),
            U($"{a}.expert_gating_func", V3 ? 2 : 1),
            new($"{a}.rope.scaling.type", GgufValue.String("yarn")),
            F($"{a}.rope.scaling.factor", YarnFactor),
            U($"{a}.rope.scaling.original_context_length", YarnOriginalContext),
            F($"{a}.rope.scaling.yarn_log_multiplier", 0.1 * YarnMScale),
        };
        if (QLoraRank > 0) m.Add(U($"{a}.attention.q_lora_rank", QLoraRank));
        if (Groups > 1)
        {
            m.Add(U($"{a}.expert_group_count", Groups));
            m.Add(U($"{a}.expert_group_used_count", TopKGroups));
        }
        return m;
    }

    JsonObject HfConfig() => new()
    {
        ["architectures"] = new JsonArray(V3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"),
        ["model_type"] = V3 ? "deepseek_v3" : "deepseek_v2",
        ["_name_or_path"] = $"jevons-synth-{Name}",
        ["vocab_size"] = VocabSize,
        ["hidden_size"] = HiddenSize,
        ["num_hidden_layers"] = Layers,
        ["num_attention_heads"] = Heads,
        ["num_key_value_heads"] = Heads,
        ["q_lora_rank"] = QLoraRank == 0 ? null : QLoraRank,
        ["kv_lora_rank"] = KvLoraRank,
        ["qk_nope_head_dim"] = QkNopeHeadDim,
        ["qk_rope_head_dim"] = QkRopeHeadDim,
        ["v_head_dim"] = VHeadDim,
        ["intermediate_size"] = IntermediateSize,
        ["moe_intermediate_size"] = MoeIntermediateSize,
        ["n_routed_experts"] = RoutedExperts,
        ["n_shared_experts"] = SharedExperts,
        ["num_experts_per_tok"] = ExpertsPerToken,
        ["first_k_dense_replace"] = FirstKDenseReplace,
        ["moe_layer_freq"] = 1,
        ["n_group"] = Groups,
        ["topk_group"] = TopKGroups,
        ["topk_method"] = V3 ? "noaux_tc" : Groups > 1 ? "group_limited_greedy" : "greedy",
        ["scoring_func"] = V3 ? "sigmoid" : "softmax",
        ["norm_topk_prob"] = NormTopKProb,
        ["routed_scaling_factor"] = (double)RoutedScalingFactor,
        ["rms_norm_eps"] = 1e-6,
        ["rope_theta"] = RopeTheta,
        ["max_position_embeddings"] = ContextLength,
        ["rope_scaling"] = new JsonObject
        {
            ["type"] = "yarn",
            ["factor"] = YarnFactor,
            ["original_max_position_embeddings"] = YarnOriginalContext,
            ["beta_fast"] = 32,
            ["beta_slow"] = 1,
            ["mscale"] = YarnMScale,
            ["mscale_all_dim"] = YarnMScale,
        },
        ["hidden_act"] = "silu",
        ["tie_word_embeddings"] = false,
        ["attention_bias"] = false,
        ["num_nextn_predict_layers"] = 0,
    };
}
