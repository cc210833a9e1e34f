using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;
using Jevons.Models.Blocks;
using Xunit;

namespace Jevons.Tests.Models;

/// <summary>Synth presets: real parameter counts, a deterministic streamable generator, and a loadable tiny model.</summary>
public sealed class LlamaSynthTests
{
    [Theory]
    [InlineData("r1-distill-qwen-1.5b", 1_777_088_000L)] // the published count of DeepSeek-R1-Distill-Qwen-1.5B
    [InlineData("llama-3-8b", 8_030_261_248L)]           // Llama-3.1-8B / R1-Distill-Llama-8B
    public void RealPresetsHaveTheRealParameterCount(string preset, long parameters)
    {
        var s = LlamaSynthesis.Create(preset);
        Assert.Equal(parameters, s.Parameters);
        Assert.All(s.Tensors.Where(t => t.IsWeightMatrix), t => Assert.Equal(0, t.Columns % 256)); // every K-quant fits
    }

    [Fact]
    public void Qwen15bMetadataAndTensorsMatchTheRealFile()
    {
        var s = LlamaSynthesis.Create("r1-distill-qwen-1.5b");
        var meta = s.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(GgufValue.String("qwen2"), meta["general.architecture"]);
        Assert.Equal(GgufValue.UInt32(1536), meta["qwen2.embedding_length"]);
        Assert.Equal(GgufValue.UInt32(28), meta["qwen2.block_count"]);
        Assert.Equal(GgufValue.UInt32(12), meta["qwen2.attention.head_count"]);
        Assert.Equal(GgufValue.UInt32(2), meta["qwen2.attention.head_count_kv"]);
        Assert.Equal(GgufValue.UInt32(8960), meta["qwen2.feed_forward_length"]);
        Assert.Equal(GgufValue.UInt32(131072), meta["qwen2.context_length"]);
        Assert.Equal(GgufValue.Float32(10000f), meta["qwen2.rope.freq_base"]);
        var byName = s.Tensors.ToDictionary(t => t.Name);
        Assert.Equal([256L, 1536], byName["blk.27.attn_k.weight"].Shape);
        Assert.Equal([256L], byName["blk.0.attn_v.bias"].Shape);
        Assert.Equal([151936L, 1536], byName["output.weight"].Shape);
        Assert.False(byName.ContainsKey("rope_freqs.weight"));
    }

    [Fact]
    public void Llama8bCarriesLlama3RopeFactors()
    {
        var s = LlamaSynthesis.Create("llama-3-8b");
        var rf = s.Tensors.Single(t => t.Name == "rope_freqs.weight");
        Assert.Equal([64L], rf.Shape);
        var factors = new float[64];
        s.FillRows(rf, 0, factors);
        Assert.Equal(1f, factors[0]);    // high frequencies unscaled
        Assert.Equal(8f, factors[63]);   // low frequencies divided by the factor
        Assert.Contains(factors, f => f > 1 && f < 8); // the smoothed band
        var viaFactors = RopeFrequencies.Create(128, 500000, RopeScaling.None, factors, neox: false);
        var viaConfig = RopeFrequencies.Create(128, 500000, s.Preset.RopeScaling, [], neox: true);
        for (int i = 0; i < 64; i++)
            Assert.Equal(viaConfig.InverseFrequency(i), viaFactors.InverseFrequency(i), viaConfig.InverseFrequency(i) * 1e-6);
    }

    [Fact]
    public void GeneratorIsDeterministicPerRowAndHasTheIntendedScale()
    {
        var s = LlamaSynthesis.Create("tiny", seed: 7);
        var w = s.Tensors.Single(t => t.Name == "blk.1.ffn_down.weight"); // [256, 768]
        var all = new float[w.ElementCount];
        s.FillRows(w, 0, all);
        var rows5to7 = new float[3 * 768];
        LlamaSynthesis.Create("tiny", seed: 7).FillRows(w, 5, rows5to7);
        Assert.Equal(all.AsSpan(5 * 768, 3 * 768).ToArray(), rows5to7);
        var other = new float[768];
        LlamaSynthesis.Create("tiny", seed: 8).FillRows(w, 0, other);
        Assert.NotEqual(all.AsSpan(0, 768).ToArray(), other);

        double mean = all.Average(v => (double)v), std = Math.Sqrt(all.Average(v => (double)v * v) - mean * mean);
        Assert.InRange(mean, -0.002, 0.002);
        Assert.InRange(std, 0.98 / Math.Sqrt(768), 1.02 / Math.Sqrt(768));
        var norm = new float[256];
        s.FillRows(s.Tensors.Single(t => t.Name == "output_norm.weight"), 0, norm);
        Assert.InRange(norm.Average(), 0.98, 1.02);
    }

    [Fact]
    public void TinyPresetWrittenAsGgufLoadsAndRuns()
    {
        var dir = Directory.CreateTempSubdirectory("jevons-llama-synth-");
        try
        {
            var s = LlamaSynthesis.Create("tiny", seed: 1);
            string f32 = Path.Combine(dir.FullName, "tiny-f32.gguf"), f16 = Path.Combine(dir.FullName, "tiny-f16.gguf");
            s.WriteGguf(f32, DType.F32, threads: 2);
            s.WriteGguf(f16, DType.F16, threads: 2);

            int[] ids = [1, 100, 2000, 42];
            float[] Run(string path, out Model model)
            {
                model = LlamaGoldenTests.Open(path);
                var logits = new float[ids.Length * model.VocabSize];
                model.Forward(model.CreateState(16), ids, logits);
                return logits;
            }
            var a = Run(f32, out var m32);
            using (m32)
            {
                Assert.Equal(s.Parameters, m32.Description.TotalParameters);
                Assert.Equal(s.Parameters * 4, m32.Description.WeightBytes);
                Assert.Equal(2048, m32.VocabSize);
                Assert.Equal(4 * 2 * 2 * 32 * 4, m32.Description.KvBytesPerToken);
                Assert.Equal("jevons-synth-tiny", m32.Description.Name);
            }
            Assert.All(a, v => Assert.True(float.IsFinite(v)));
            double std = Math.Sqrt(a.Average(v => (double)v * v));
            Assert.InRange(std, 0.3, 10); // O(1) logits: neither collapsed nor exploding

            // The same numbers stored as F16 give nearly the same logits, through the same writer and loader.
            var b = Run(f16, out var m16);
            using (m16)
                Assert.True(m16.Description.WeightBytesByType[DType.F16] > 0);
            float worst = 0;
            for (int i = 0; i < a.Length; i++) worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
            Assert.True(worst < 0.05f, $"F16 vs F32 max |diff| {worst}");

            // Q8_0 through Quantization.QuantizeRow: llama-quantize-style blocks, still the same model.
            string q8 = Path.Combine(dir.FullName, "tiny-q8_0.gguf");
            s.WriteGguf(q8, DType.Q8_0, threads: 2);
            var c = Run(q8, out var m8);
            using (m8)
                Assert.Equal(DType.Q8_0, m8.Description.WeightBytesByType.MaxBy(kv => kv.Value).Key);
            int agree = 0;
            for (int p = 0; p < ids.Length; p++)
                if (LlamaGoldenTests.Argmax(a.AsSpan(p * 2048, 2048)) == LlamaGoldenTests.Argmax(c.AsSpan(p * 2048, 2048))) agree++;
            Assert.True(agree >= 3, $"Q8_0 top-1 agrees with F32 at {agree}/4 positions");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void UnknownPresetAndUnstorableTypeAreErrors()
    {
        var ex = Assert.Throws<JevonsException>(() => LlamaSynthesis.Create("gpt-5"));
        Assert.Contains("'gpt-5'", ex.Message);
        Assert.Contains("r1-distill-qwen-1.5b", ex.Message);
        var s = LlamaSynthesis.Create("tiny");
        Assert.Throws<JevonsException>(() => s.WriteGguf(Path.Combine(Path.GetTempPath(), "never.gguf"), DType.F8_E4M3));
        Assert.Throws<JevonsException>(() => s.WriteGguf(Path.Combine(Path.GetTempPath(), "never.gguf"), DType.I32));
    }
}
