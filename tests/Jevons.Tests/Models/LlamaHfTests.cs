using System.Text.Json;
using Jevons.Models;
using Jevons.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>
/// The HF layout (Qwen2ForCausalLM / LlamaForCausalLM names, config.json keys, unpermuted llama q/k with NeoX rope,
/// llama3 rope_scaling from config) gives llama.cpp's logits: the golden GGUF is converted to an HF checkpoint.
/// </summary>
public sealed class LlamaHfTests(ITestOutputHelper output)
{
    /// <summary>The HF checkpoint equivalent to a golden GGUF: tensors renamed, llama q/k rows un-permuted, config.json keys.</summary>
    internal static (LlamaTestSource Source, string Architecture) ConvertToHf(string name)
    {
        using var gguf = LlamaTestGguf.Open(Golden.File("llamacpp", name + ".gguf")!);
        using var doc = JsonDocument.Parse(File.ReadAllText(Golden.File("llamacpp", name + ".json")!));
        var hp = doc.RootElement.GetProperty("hparams");
        bool llama = gguf.Architecture == "llama";
        int heads = hp.GetProperty("n_head").GetInt32(), kvHeads = hp.GetProperty("n_head_kv").GetInt32();
        int hidden = hp.GetProperty("n_embd").GetInt32(), headDim = hidden / heads;

        var hf = new LlamaTestSource(Path.Combine(Path.GetTempPath(), name + "-hf"));
        foreach (var tensorName in gguf.Weights.TensorNames)
        {
            var t = gguf.Weights.Get(tensorName);
            var values = t.ToFloatArray();
            string? target = HfName(tensorName);
            if (target is null) continue; // rope_freqs: HF computes the factors from rope_scaling
            if (llama && (tensorName.Contains(".attn_q.") || tensorName.Contains(".attn_k.")))
                values = Unpermute(values, tensorName.Contains(".attn_q.") ? heads : kvHeads, headDim, (int)(t.ElementCount / t.Shape[0]));
            hf.Add(target, t.Shape, values);
        }
        hf.Set("hidden_size", (long)hidden)
          .Set("num_hidden_layers", hp.GetProperty("n_layer").GetInt64())
          .Set("num_attention_heads", (long)heads)
          .Set("num_key_value_heads", (long)kvHeads)
          .Set("intermediate_size", hp.GetProperty("n_ff").GetInt64())
          .Set("vocab_size", hp.GetProperty("n_vocab").GetInt64())
          .Set("max_position_embeddings", hp.GetProperty("n_ctx_train").GetInt64())
          .Set("rms_norm_eps", hp.GetProperty("rms_eps").GetDouble())
          .Set("rope_theta", hp.GetProperty("rope_theta").GetDouble())
          .Set("tie_word_embeddings", false)
          .Set("use_sliding_window", false);
        if (hp.TryGetProperty("llama3_rope", out var r))
        {
            hf.Set("rope_scaling.rope_type", "llama3")
              .Set("rope_scaling.factor", r.GetProperty("factor").GetDouble())
              .Set("rope_scaling.low_freq_factor", r.GetProperty("low").GetDouble())
              .Set("rope_scaling.high_freq_factor", r.GetProperty("high").GetDouble())
              .Set("rope_scaling.original_max_position_embeddings", r.GetProperty("old_ctx").GetInt64());
        }
        return (hf, llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM");
    }

    static string? HfName(string gguf)
    {
        if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
        if (gguf == "output_norm.weight") return "model.norm.weight";
        if (gguf == "output.weight") return "lm_head.weight";
        if (!gguf.StartsWith("blk.")) return null;
        var parts = gguf.Split('.'); // blk N role suffix
        string role = parts[2] switch
        {
            "attn_norm" => "input_layernorm",
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "ffn_norm" => "post_attention_layernorm",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            _ => throw new InvalidDataException(gguf),
        };
        return $"model.layers.{parts[1]}.{role}.{parts[3]}";
    }

    /// <summary>
    /// Undoes convert_hf_to_gguf's permute: within each head, GGUF row 2i + half is HF row half·(d/2) + i.
    /// </summary>
    static float[] Unpermute(float[] gguf, int heads, int headDim, int cols)
    {
        var hf = new float[gguf.Length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int s = 0; s < 2; s++)
                    Array.Copy(gguf, (long)(h * headDim + 2 * i + s) * cols, hf, (long)(h * headDim + s * half + i) * cols, cols);
        return hf;
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("llama-tiny-f32")]
    public void HfLayoutGivesTheSameLogits(string name)
    {
        var g = LlamaGoldenTests.Load(name);
        var (hf, arch) = ConvertToHf(name);
        using var model = (Llama)Llama.Create(hf.ToModelSource(ModelFormat.HuggingFace, arch), new ModelOptions { Threads = 2 });
        Assert.True(model.Config.RopeNeox);
        Assert.False(model.Config.TiedEmbeddings);
        var state = model.CreateState(64);
        int n = g.PromptIds.Length, v = g.Vocab;
        var logits = new float[n * v];
        model.Forward(state, g.PromptIds, logits);

        using var ggufModel = LlamaGoldenTests.Open(name);
        var ggufLogits = new float[n * v];
        ggufModel.Forward(ggufModel.CreateState(64), g.PromptIds, ggufLogits);

        float vsGolden = 0, vsGguf = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            vsGolden = MathF.Max(vsGolden, MathF.Abs(logits[i] - g.Logits[i]));
            vsGguf = MathF.Max(vsGguf, MathF.Abs(logits[i] - ggufLogits[i]));
        }
        output.WriteLine($"{name} via HF layout: max |diff| {vsGolden:E2} vs llama.cpp, {vsGguf:E2} vs the GGUF path");
        Assert.True(vsGolden < 1e-3f, $"vs llama.cpp {vsGolden}");
        Assert.True(vsGguf < 1e-4f, $"vs GGUF path {vsGguf}");

        var step = new float[v];
        model.Forward(state, [g.Greedy[0]], step);
        LlamaTests.AssertClose(g.GenLogits.AsSpan(0, v), step, 1e-3f);
    }

    [GoldenFact]
    public void HfConfigKeysAreRead()
    {
        var (hf, arch) = ConvertToHf("llama-tiny-f32");
        using var model = (Llama)Llama.Create(hf.ToModelSource(ModelFormat.HuggingFace, arch), new ModelOptions { Threads = 1 });
        var c = model.Config;
        Assert.Equal(DenseFamily.Llama, c.Family);
        Assert.Equal((96, 3, 3, 1, 32, 256, 8192), (c.HiddenSize, c.Layers, c.Heads, c.KvHeads, c.HeadDim, c.IntermediateSize, c.ContextLength));
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new Jevons.Models.Blocks.RopeScaling(Jevons.Models.Blocks.RopeScalingKind.Llama3, 8, 1, 4, 8192), c.RopeScaling);
        Assert.False(c.QkvBias);
        Assert.Equal(1e-5f, c.RmsEps);
    }
}
