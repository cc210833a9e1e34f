using System.Text.Json.Nodes;
using Jevons.Formats;
using Jevons.Models.Blocks;

namespace Jevons.Models;

/// <summary>
/// The inverse of <see cref="DeepSeekConfig.Read"/>: a config written back as config.json (as DeepSeek ships
/// it) and as GGUF deepseek2.* metadata (as llama.cpp's converter writes it). `jevons synth` and the
/// trainer's export both write through here, so the two files always say the same thing.
/// </summary>
public static class DeepSeekConfigWriter
{
    const string Arch = "deepseek2";

    /// <summary>
    /// config.json: every key the engine's reader and transformers' DeepseekV2/V3Config read.
    /// <paramref name="name"/> becomes <c>_name_or_path</c> when given.
    /// </summary>
    public static JsonObject HfConfig(DeepSeekConfig c, bool v3, string? name = null)
    {
        var j = new JsonObject
        {
            ["architectures"] = new JsonArray(v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"),
            ["model_type"] = v3 ? "deepseek_v3" : "deepseek_v2",
            ["vocab_size"] = c.VocabSize,
            ["hidden_size"] = c.HiddenSize,
            ["num_hidden_layers"] = c.Layers,
            ["num_attention_heads"] = c.Heads,
            ["num_key_value_heads"] = c.Heads,
            ["q_lora_rank"] = c.QLoraRank == 0 ? null : c.QLoraRank,
            ["kv_lora_rank"] = c.KvLoraRank,
            ["qk_nope_head_dim"] = c.QkNopeHeadDim,
            ["qk_rope_head_dim"] = c.QkRopeHeadDim,
            ["v_head_dim"] = c.VHeadDim,
            ["intermediate_size"] = c.IntermediateSize,
            ["moe_intermediate_size"] = c.MoeIntermediateSize,
            ["n_routed_experts"] = c.RoutedExperts,
            ["n_shared_experts"] = c.SharedExperts,
            ["num_experts_per_tok"] = c.ExpertsPerToken,
            ["first_k_dense_replace"] = c.FirstKDenseReplace,
            ["moe_layer_freq"] = c.MoeLayerFreq,
            ["n_group"] = c.Groups,
            ["topk_group"] = c.TopKGroups,
            ["topk_method"] = c.TopkMethod switch
            {
                TopkMethod.Greedy => "greedy",
                TopkMethod.GroupLimitedGreedy => "group_limited_greedy",
                _ => "noaux_tc",
            },
            ["scoring_func"] = c.Scoring == ScoringFunction.Sigmoid ? "sigmoid" : "softmax",
            ["norm_topk_prob"] = c.NormTopKProb,
            ["routed_scaling_factor"] = (double)c.RoutedScalingFactor,
            ["rms_norm_eps"] = (double)c.RmsNormEps,
            ["rope_theta"] = c.RopeTheta,
            ["rope_scaling"] = RopeScaling(c.Yarn),
            ["max_position_embeddings"] = c.ContextLength,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = false,
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["initializer_range"] = 0.02,
            ["num_nextn_predict_layers"] = c.MtpLayers,
        };
        if (name is not null) j.Insert(2, "_name_or_path", name);
        return j;
    }

    /// <summary>The reader keeps 0.1·mscale_all_dim; real configs have mscale == mscale_all_dim.</summary>
    static JsonObject? RopeScaling(YarnSettings? y) => y is null ? null : new JsonObject
    {
        ["type"] = "yarn",
        ["factor"] = y.Factor,
        ["original_max_position_embeddings"] = y.OriginalContext,
        ["beta_fast"] = y.BetaFast,
        ["beta_slow"] = y.BetaSlow,
        ["mscale"] = y.AttentionLogMultiplier / 0.1,
        ["mscale_all_dim"] = y.AttentionLogMultiplier / 0.1,
    };

    /// <summary>
    /// GGUF metadata: general.architecture / name (and general.file_type when given), then deepseek2.*
    /// (block_count includes the MTP layers, as nextn_predict_layers says).
    /// </summary>
    public static List<KeyValuePair<string, GgufValue>> GgufMetadata(DeepSeekConfig c, string name, uint? fileType = null)
    {
        var m = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", GgufValue.String(Arch)),
            new("general.name", GgufValue.String(name)),
        };
        void U(string k, int v) => m.Add(new($"{Arch}.{k}", GgufValue.UInt32((uint)v)));
        void F(string k, double v) => m.Add(new($"{Arch}.{k}", GgufValue.Float32((float)v)));
        if (fileType is { } ft) m.Add(new("general.file_type", GgufValue.UInt32(ft)));
        U("context_length", c.ContextLength);
        U("embedding_length", c.HiddenSize);
        U("block_count", c.Layers + c.MtpLayers);
        U("feed_forward_length", c.IntermediateSize);
        U("attention.head_count", c.Heads);
        U("attention.head_count_kv", c.Heads);
        F("attention.layer_norm_rms_epsilon", c.RmsNormEps);
        F("rope.freq_base", c.RopeTheta);
        U("rope.dimension_count", c.QkRopeHeadDim);
        U("attention.key_length", c.QkHeadDim);
        U("attention.value_length", c.VHeadDim);
        U("attention.kv_lora_rank", c.KvLoraRank);
        if (c.QLoraRank > 0) U("attention.q_lora_rank", c.QLoraRank);
        U("vocab_size", c.VocabSize);
        U("leading_dense_block_count", c.FirstKDenseReplace);
        U("expert_count", c.RoutedExperts);
        U("expert_used_count", c.ExpertsPerToken);
        U("expert_shared_count", c.SharedExperts);
        U("expert_feed_forward_length", c.MoeIntermediateSize);
        F("expert_weights_scale", c.RoutedScalingFactor);
        m.Add(new($"{Arch}.expert_weights_norm", GgufValue.Bool(c.NormTopKProb)));
        U("expert_gating_func", c.Scoring == ScoringFunction.Sigmoid ? 2 : 1);
        if (c.Groups > 1)
        {
            U("expert_group_count", c.Groups);
            U("expert_group_used_count", c.TopKGroups);
        }
        if (c.Yarn is { } y)
        {
            m.Add(new($"{Arch}.rope.scaling.type", GgufValue.String("yarn")));
            F("rope.scaling.factor", y.Factor);
            U("rope.scaling.original_context_length", y.OriginalContext);
            F("rope.scaling.yarn_log_multiplier", y.AttentionLogMultiplier);
        }
        if (c.MtpLayers > 0) U("nextn_predict_layers", c.MtpLayers);
        return m;
    }
}
