using Jevons.Models;
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
        Assert.Equal("qwen2", meta["general.architecture"]);
        Assert.Equal(1536u, meta["qwen2.embedding_length"]);
        Assert.Equal(28u, meta["qwen2.block_count"]);
        Assert.Equal(12u, meta["qwen2.attention.head_count"]);
        Assert.Equal(2u, meta["qwen2.attention.head_count_kv"]);
        Assert.Equal(8960u, meta["qwen2.feed_forward_length"]);
        Assert.Equal(131072u, meta["qwen2.context_length"]);
        Assert.Equal(10000f, meta["qwen2.rope.freq_base"]);
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
    public void TinyPresetLoadsAndRuns()
    {
        var s = LlamaSynthesis.Create("tiny", seed: 1);
        var src = new LlamaTestSource("tiny-synth");
        foreach (var t in s.Tensors)
        {
            var values = new float[t.ElementCount];
            s.FillRows(t, 0, values);
            src.Add(t.Name, t.Shape, values);
        }
        foreach (var kv in s.Metadata)
            src.Set(kv.Key, kv.Value);
        using var model = Llama.Create(src.ToModelSource(ModelFormat.Gguf, "qwen2"), new ModelOptions { Threads = 2 });
        Assert.Equal(s.Parameters, model.Description.TotalParameters);
        Assert.Equal(2048, model.VocabSize);
        Assert.Equal(4 * 2 * 2 * 32 * 4, model.Description.KvBytesPerToken);

        var state = model.CreateState(16);
        int[] ids = [1, 100, 2000, 42];
        var logits = new float[ids.Length * model.VocabSize];
        model.Forward(state, ids, logits);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        double std = Math.Sqrt(logits.Average(v => (double)v * v));
        Assert.InRange(std, 0.3, 10); // O(1) logits: neither collapsed nor exploding
        var last = new float[model.VocabSize];
        model.Forward(model.CreateState(16), ids, last);
        Assert.Equal(logits.AsSpan(3 * 2048).ToArray(), last);
    }
}
