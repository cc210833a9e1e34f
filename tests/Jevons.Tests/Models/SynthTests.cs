using Jevons.Formats;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Tests.Formats;
using Jevons.Tokenization;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>Synth plans and the seeded generator: real shapes, determinism, one model in both layouts.</summary>
public sealed class SynthTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("r1-distill-qwen-1.5b", 1_777_088_000L)] // the published count of DeepSeek-R1-Distill-Qwen-1.5B
    [InlineData("llama-3-8b", 8_030_261_248L)]           // Llama-3.1-8B / R1-Distill-Llama-8B
    public void DensePresetsHaveTheRealParameterCount(string preset, long parameters)
    {
        var plan = SynthPresets.Require(preset).Plan();
        Assert.Equal(parameters, plan.Parameters);
        Assert.Equal(parameters, plan.HfTensors.Sum(t => t.ElementCount)); // rope_freqs is GGUF only and not a parameter
        Assert.All(plan.GgufTensors.Where(t => Synthesis.GgufTypeOf(t.Kind, DType.Q4_K) == DType.Q4_K), t => Assert.Equal(0, t.Columns % 256)); // every K-quant fits
    }

    [Fact]
    public void V2LitePresetHasTheRealShapesAndItsConfigGivesTheLatentCacheSize()
    {
        var plan = SynthPresets.Require("deepseek-v2-lite").Plan();
        output.WriteLine($"deepseek-v2-lite: {plan.Parameters} parameters, {plan.HfTensors.Count} HF tensors, {plan.GgufTensors.Count} GGUF tensors");
        Assert.InRange(plan.Parameters, 15_650_000_000L, 15_750_000_000L); // DeepSeek-V2-Lite: 15.7B
        Assert.Equal(plan.Parameters, plan.HfTensors.Sum(t => t.ElementCount));
        Assert.Equal([64L, 1408, 2048], plan.GgufTensors.Single(t => t.Name == "blk.1.ffn_gate_exps.weight").Shape);
        Assert.Equal(SynthKind.Router, plan.GgufTensors.Single(t => t.Name == "blk.1.ffn_gate_inp.weight").Kind);

        // The 16B weights are not written: the config the writers emit (GGUF metadata, config.json) is read by the
        // DeepSeek model's own config reader, which is where inspect's KV bytes per token come from.
        using var dir = new TempDir();
        var gguf = new GgufWriter();
        foreach (var (k, v) in plan.GgufMetadata) gguf.Set(k, v);
        gguf.Write(dir.File("meta.gguf"));
        using (var source = ModelLoader.Open(dir.File("meta.gguf")))
            AssertV2Lite(DeepSeekConfig.Read(source));
        Directory.CreateDirectory(dir.File("hf"));
        File.WriteAllText(dir.File("hf/config.json"), plan.HfConfig!.ToJsonString());
        using (var source = DeepSeekTestFiles.OpenHf(dir.File("hf")))
            AssertV2Lite(DeepSeekConfig.Read(source));

        static void AssertV2Lite(DeepSeekConfig c)
        {
            Assert.Equal(27L * (512 + 64) * sizeof(float), c.KvBytesPerToken);
            Assert.Equal((27, 16, 0, 512), (c.Layers, c.Heads, c.QLoraRank, c.KvLoraRank));
            Assert.Equal((64, 2, 6, 1408, 10944), (c.RoutedExperts, c.SharedExperts, c.ExpertsPerToken, c.MoeIntermediateSize, c.IntermediateSize));
            Assert.Equal((128, 64, 128), (c.QkNopeHeadDim, c.QkRopeHeadDim, c.VHeadDim));
            Assert.Equal(40, c.Yarn!.Factor);
            Assert.Equal(1 + 0.0707 * Math.Log(40), c.Yarn.AttentionMScale, 5);
        }
    }

    [Fact]
    public void Qwen15bMetadataAndTensorsMatchTheRealFile()
    {
        var plan = SynthPresets.Require("r1-distill-qwen-1.5b").Plan();
        var meta = plan.GgufMetadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(GgufValue.String("qwen2"), meta["general.architecture"]);
        Assert.Equal(GgufValue.UInt32(1536), meta["qwen2.embedding_length"]);
        Assert.Equal(GgufValue.UInt32(28), meta["qwen2.block_count"]);
        Assert.Equal(GgufValue.UInt32(2), meta["qwen2.attention.head_count_kv"]);
        Assert.Equal(GgufValue.UInt32(8960), meta["qwen2.feed_forward_length"]);
        var byName = plan.GgufTensors.ToDictionary(t => t.Name);
        Assert.Equal([256L, 1536], byName["blk.27.attn_k.weight"].Shape);
        Assert.Equal([256L], byName["blk.0.attn_v.bias"].Shape);
        Assert.Equal([151936L, 1536], byName["output.weight"].Shape);
        Assert.False(byName.ContainsKey("rope_freqs.weight"));
        Assert.Contains(plan.HfTensors, t => t.Name == "model.layers.27.self_attn.k_proj.bias");
        Assert.Equal(1536, (int)plan.HfConfig!["hidden_size"]!);
    }

    [Fact]
    public void Llama8bCarriesLlama3RopeFactors()
    {
        var s = Synthesis.Create("llama-3-8b");
        var rf = s.Plan.GgufTensors.Single(t => t.Name == "rope_freqs.weight");
        Assert.Equal([64L], rf.Shape);
        var factors = new float[64];
        s.FillRows(rf, 0, factors);
        Assert.Equal(1f, factors[0]);    // high frequencies unscaled
        Assert.Equal(8f, factors[63]);   // low frequencies divided by the factor
        Assert.Contains(factors, f => f > 1 && f < 8);
        var preset = LlamaSynthPreset.All.Single(p => p.Name == "llama-3-8b");
        var viaFactors = RopeFrequencies.Create(128, 500000, RopeScaling.None, factors, neox: false);
        var viaConfig = RopeFrequencies.Create(128, 500000, preset.RopeScaling, [], neox: true);
        for (int i = 0; i < 64; i++)
            Assert.Equal(viaConfig.InverseFrequency(i), viaFactors.InverseFrequency(i), viaConfig.InverseFrequency(i) * 1e-6);
        Assert.Equal("llama3", (string)s.Plan.HfConfig!["rope_scaling"]!["rope_type"]!);
    }

    [Fact]
    public void GeneratorIsDeterministicPerRowAndHasTheIntendedScale()
    {
        var s = Synthesis.Create("tiny", seed: 7);
        var w = s.Plan.GgufTensors.Single(t => t.Name == "blk.1.ffn_down.weight"); // [256, 768]
        var all = new float[w.ElementCount];
        s.FillRows(w, 0, all);
        var rows5to7 = new float[3 * 768];
        Synthesis.Create("tiny", seed: 7).FillRows(w, 5, rows5to7);
        Assert.Equal(all.AsSpan(5 * 768, 3 * 768).ToArray(), rows5to7);
        var other = new float[768];
        Synthesis.Create("tiny", seed: 8).FillRows(w, 0, other);
        Assert.NotEqual(all.AsSpan(0, 768).ToArray(), other);

        double mean = all.Average(v => (double)v), std = Math.Sqrt(all.Average(v => (double)v * v) - mean * mean);
        Assert.InRange(mean, -0.002, 0.002);
        Assert.InRange(std, 0.98 / Math.Sqrt(768), 1.02 / Math.Sqrt(768));
        var norm = new float[256];
        s.FillRows(s.Plan.GgufTensors.Single(t => t.Name == "output_norm.weight"), 0, norm);
        Assert.InRange(norm.Average(), 0.98, 1.02);
    }

    [Fact]
    public void StackedGgufExpertsHoldTheSameRowsAsTheHfExperts()
    {
        var s = Synthesis.Create("deepseek-v3-mini", seed: 3);
        var stacked = s.Plan.GgufTensors.Single(t => t.Name == "blk.2.ffn_down_exps.weight"); // [16, 256, 64]
        var expert5 = s.Plan.HfTensors.Single(t => t.Name == "model.layers.2.mlp.experts.5.down_proj.weight");
        var a = new float[3 * 64];
        var b = new float[3 * 64];
        s.FillRows(stacked, 5 * 256 + 10, a);
        s.FillRows(expert5, 10, b);
        Assert.Equal(b, a);
        Assert.NotEqual(0f, a[0]);
    }

    [Fact]
    public void UnknownPresetAndUnstorableTypesAreOneLineErrors()
    {
        var e = Assert.Throws<JevonsException>(() => Synthesis.Create("gpt-5"));
        Assert.Equal("unknown preset 'gpt-5' (presets: tiny, r1-distill-qwen-1.5b, llama-3-8b, deepseek-v2-lite, deepseek-v3-mini)", e.Message);
        var tiny = Synthesis.Create("tiny");
        Assert.Null(tiny.CheckType(SynthFormat.Gguf, DType.Q4_K));
        Assert.Contains("F8_E4M3 cannot be written to GGUF", tiny.CheckType(SynthFormat.Gguf, DType.F8_E4M3));
        Assert.Contains("Q8_0 cannot be written to the Hugging Face layout", tiny.CheckType(SynthFormat.HuggingFace, DType.Q8_0));
        Assert.Contains("no native FP8 layout", tiny.CheckType(SynthFormat.HuggingFace, DType.F8_E4M3));
        Assert.Null(Synthesis.Create("deepseek-v3-mini").CheckType(SynthFormat.HuggingFace, DType.F8_E4M3));
        Assert.Throws<JevonsException>(() => tiny.WriteGguf(Path.Combine(Path.GetTempPath(), "never.gguf"), DType.I32));
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), "never.gguf")));
    }

    [Fact]
    public void Fp8BandScalesAreBlockMaximaOver448()
    {
        // 130 columns: a full 128-column block and a partial 2-column edge block.
        var rows = new float[3 * 130];
        for (int i = 0; i < rows.Length; i++) rows[i] = (i % 7 - 3) * 0.01f;
        rows[2 * 130 + 129] = -0.9f;
        var fp8 = new byte[rows.Length];
        var scales = new float[2];
        Synthesis.QuantizeFp8Band(rows, 130, fp8, scales);
        Assert.Equal(0.03f / 448f, scales[0]);
        Assert.Equal(0.9f / 448f, scales[1]);
        Assert.Equal(0xFE, fp8[2 * 130 + 129]); // -448 = -max
        for (int i = 0; i < rows.Length; i++)
            Assert.Equal(rows[i], Quantization.F8E4M3Table[fp8[i]] * scales[i % 130 < 128 ? 0 : 1], 0.07f * MathF.Abs(rows[i]) + 1e-9f);
    }
}

public class SynthFallbackTests
{
    [Theory]
    [InlineData(Jevons.Numerics.DType.Q4_K, 10944, Jevons.Numerics.DType.Q5_0)]
    [InlineData(Jevons.Numerics.DType.Q6_K, 1408, Jevons.Numerics.DType.Q8_0)]
    [InlineData(Jevons.Numerics.DType.Q5_K, 1408, Jevons.Numerics.DType.Q5_1)]
    [InlineData(Jevons.Numerics.DType.Q3_K, 1408, Jevons.Numerics.DType.Q4_0)]
    [InlineData(Jevons.Numerics.DType.Q4_K, 2048, Jevons.Numerics.DType.Q4_K)]
    [InlineData(Jevons.Numerics.DType.Q8_0, 1408, Jevons.Numerics.DType.Q8_0)]
    public void KQuantRowsThatAreNotWholeBlocksFallBackAsLlamaQuantizeDoes(Jevons.Numerics.DType asked, long columns, Jevons.Numerics.DType expected) =>
        Xunit.Assert.Equal(expected, Jevons.Models.Synthesis.Synthesis.FallbackFor(asked, columns));
}
