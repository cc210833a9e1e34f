using System.Text.Json;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;
using Jevons.Tests.Formats;
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
    /// <summary>
    /// Writes the HF checkpoint equivalent to a golden GGUF into <paramref name="dir"/>: config.json (real HF keys,
    /// llama3 rope_scaling instead of rope_freqs) and model.safetensors (HF names, llama q/k rows un-permuted),
    /// with matrices stored as <paramref name="storage"/> (norms and biases stay F32).
    /// </summary>
    internal static void ConvertToHf(string name, string dir, DType storage = DType.F32)
    {
        using var gguf = LlamaGoldenTests.OpenSource(Golden.File("llamacpp", name + ".gguf")!);
        using var doc = JsonDocument.Parse(File.ReadAllText(Golden.File("llamacpp", name + ".json")!));
        var hp = doc.RootElement.GetProperty("hparams");
        bool llama = gguf.Architecture == "llama";
        int heads = hp.GetProperty("n_head").GetInt32(), kvHeads = hp.GetProperty("n_head_kv").GetInt32();
        int hidden = hp.GetProperty("n_embd").GetInt32(), headDim = hidden / heads;

        var writer = new SafetensorsWriter();
        foreach (var tensorName in gguf.Weights.TensorNames)
        {
            var t = gguf.Weights.Get(tensorName);
            string? target = HfName(tensorName);
            if (target is null) continue; // rope_freqs: HF computes the factors from rope_scaling
            var values = t.ToFloatArray();
            if (llama && (tensorName.Contains(".attn_q.") || tensorName.Contains(".attn_k.")))
                values = Unpermute(values, tensorName.Contains(".attn_q.") ? heads : kvHeads, headDim, (int)(t.ElementCount / t.Shape[0]));
            var type = t.Rank == 2 ? storage : DType.F32;
            var bytes = new byte[type.ByteCount(values.Length)];
            Quantization.QuantizeRow(type, values, bytes);
            writer.AddTensor(target, type, t.Shape, bytes);
        }
        writer.Write(Path.Combine(dir, "model.safetensors"));

        var config = new Dictionary<string, object>
        {
            ["architectures"] = new[] { llama ? "LlamaForCausalLM" : "Qwen2ForCausalLM" },
            ["model_type"] = llama ? "llama" : "qwen2",
            ["hidden_size"] = hidden,
            ["num_hidden_layers"] = hp.GetProperty("n_layer").GetInt32(),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads,
            ["intermediate_size"] = hp.GetProperty("n_ff").GetInt32(),
            ["vocab_size"] = hp.GetProperty("n_vocab").GetInt32(),
            ["max_position_embeddings"] = hp.GetProperty("n_ctx_train").GetInt32(),
            ["rms_norm_eps"] = hp.GetProperty("rms_eps").GetDouble(),
            ["rope_theta"] = hp.GetProperty("rope_theta").GetDouble(),
            ["tie_word_embeddings"] = false,
            ["torch_dtype"] = storage == DType.BF16 ? "bfloat16" : "float32",
        };
        if (llama)
        {
            config["attention_bias"] = false;
            config["mlp_bias"] = false;
        }
        else
        {
            config["use_sliding_window"] = false;
        }
        if (hp.TryGetProperty("llama3_rope", out var r))
        {
            config["rope_scaling"] = new Dictionary<string, object>
            {
                ["rope_type"] = "llama3",
                ["factor"] = r.GetProperty("factor").GetDouble(),
                ["low_freq_factor"] = r.GetProperty("low").GetDouble(),
                ["high_freq_factor"] = r.GetProperty("high").GetDouble(),
                ["original_max_position_embeddings"] = r.GetProperty("old_ctx").GetInt32(),
            };
        }
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }));
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

    static (float[] Logits, Llama Model) RunHf(string name, string dir, LlamaGoldenTests.Manifest g, int capacity = 64)
    {
        var model = (Llama)Llama.Create(ModelLoader.Open(dir), new ModelOptions { Threads = 2 });
        var logits = new float[g.PromptIds.Length * g.Vocab];
        model.Forward(model.CreateState(capacity), g.PromptIds, logits);
        return (logits, model);
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("llama-tiny-f32")]
    public void HfCheckpointGivesTheSameLogits(string name)
    {
        using var dir = new TempDir();
        ConvertToHf(name, dir.Path);
        var g = LlamaGoldenTests.Load(name);
        var (logits, model) = RunHf(name, dir.Path, g);
        using (model)
        {
            Assert.True(model.Config.RopeNeox);
            Assert.False(model.Config.TiedEmbeddings);
            Assert.Equal(name.StartsWith("llama") ? "LlamaForCausalLM" : "Qwen2ForCausalLM", model.Description.Architecture);

            int n = g.PromptIds.Length, v = g.Vocab;
            using var ggufModel = LlamaGoldenTests.Open(name);
            var ggufLogits = new float[n * v];
            ggufModel.Forward(ggufModel.CreateState(64), g.PromptIds, ggufLogits);

            float vsGolden = 0, vsGguf = 0;
            for (int i = 0; i < logits.Length; i++)
            {
                vsGolden = MathF.Max(vsGolden, MathF.Abs(logits[i] - g.Logits[i]));
                vsGguf = MathF.Max(vsGguf, MathF.Abs(logits[i] - ggufLogits[i]));
            }
            output.WriteLine($"{name} as an HF checkpoint: max |diff| {vsGolden:E2} vs llama.cpp, {vsGguf:E2} vs the GGUF path");
            Assert.True(vsGolden < 1e-3f, $"vs llama.cpp {vsGolden}");
            Assert.True(vsGguf < 1e-4f, $"vs GGUF path {vsGguf}");
            for (int p = 0; p < n; p++)
                Assert.Equal(g.Argmax[p], LlamaGoldenTests.Argmax(logits.AsSpan(p * v, v)));

            // The decode path through the same HF weights.
            var state = model.CreateState(64);
            var last = new float[v];
            model.Forward(state, g.PromptIds, last);
            model.Forward(state, [g.Greedy[0]], last);
            LlamaTests.AssertClose(g.GenLogits.AsSpan(0, v), last, 1e-3f);
        }
    }

    [GoldenFact]
    public void Bf16CheckpointStaysCloseToLlamaCpp()
    {
        const string name = "llama-tiny-f32";
        using var dir = new TempDir();
        ConvertToHf(name, dir.Path, DType.BF16);
        var g = LlamaGoldenTests.Load(name);
        var (logits, model) = RunHf(name, dir.Path, g);
        using (model)
        {
            Assert.True(model.Description.WeightBytesByType[DType.BF16] > 0);
            int v = g.Vocab, agree = 0;
            double sum = 0;
            for (int p = 0; p < g.PromptIds.Length; p++)
                if (LlamaGoldenTests.Argmax(logits.AsSpan(p * v, v)) == g.Argmax[p]) agree++;
            for (int i = 0; i < logits.Length; i++) sum += Math.Abs(logits[i] - g.Logits[i]);
            double mean = sum / logits.Length;
            output.WriteLine($"{name} rounded to BF16: mean |diff| {mean:F4}, top-1 {agree}/{g.PromptIds.Length}");
            Assert.True(mean < 0.05, $"mean |diff| {mean}"); // 8-bit mantissas: a few hundredths at most on O(1) logits
            Assert.True(agree >= g.PromptIds.Length * 0.8, $"top-1 agreement {agree}/{g.PromptIds.Length}");
        }
    }

    [GoldenFact]
    public void HfConfigKeysAreRead()
    {
        using var dir = new TempDir();
        ConvertToHf("llama-tiny-f32", dir.Path);
        using var model = (Llama)Llama.Create(ModelLoader.Open(dir.Path), new ModelOptions { Threads = 1 });
        var c = model.Config;
        Assert.Equal(DenseFamily.Llama, c.Family);
        Assert.Equal((96, 3, 3, 1, 32, 256, 8192), (c.HiddenSize, c.Layers, c.Heads, c.KvHeads, c.HeadDim, c.IntermediateSize, c.ContextLength));
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new Jevons.Models.Blocks.RopeScaling(Jevons.Models.Blocks.RopeScalingKind.Llama3, 8, 1, 4, 8192), c.RopeScaling);
        Assert.False(c.QkvBias);
        Assert.Equal(1e-5f, c.RmsEps);
        Assert.Contains(model.Description.Details, kv => kv.Key == "rope scaling" && kv.Value.StartsWith("llama3 (factor 8"));
    }

    [GoldenFact]
    public void HfCheckpointMissingAWeightNamesIt()
    {
        using var dir = new TempDir();
        ConvertToHf("qwen2-tiny-f32", dir.Path);
        var src = LlamaTestSource.Wrap(ModelLoader.Open(dir.Path)).Hide("model.layers.1.self_attn.v_proj.bias");
        var ex = Assert.Throws<JevonsException>(() => Llama.Create(src.ToModelSource(ModelFormat.HuggingFace, "Qwen2ForCausalLM"), new ModelOptions { Threads = 1 }));
        Assert.Contains("'model.layers.1.self_attn.v_proj.bias'", ex.Message);
        Assert.Contains(dir.Path, ex.Message);
    }
}
