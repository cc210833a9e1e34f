using Jevons.Formats;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Tests.Formats;
using Jevons.Tokenization;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>Synthesized files load through the real loaders (LoadedModel.Load) and hold the same model in every layout.</summary>
public sealed class SynthRoundTripTests(ITestOutputHelper output)
{
    static readonly SynthWriteOptions TwoThreads = new() { Threads = 2 };

    static float[] Logits(LoadedModel m, int[] ids)
    {
        var logits = new float[ids.Length * m.Model.VocabSize];
        m.Model.Forward(m.Model.CreateState(ids.Length), ids, logits);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        return logits;
    }

    static int[] Generate(LoadedModel m, ulong seed, int n = 16)
    {
        var prompt = m.RequireTokenizer().Encode("the answer is", addSpecialTokens: true);
        var options = new GenerationOptions { MaxTokens = n, IgnoreEos = true, Sampling = new SamplerOptions { Seed = seed } };
        return new Generator(m.Model, m.Tokenizer).Generate(m.Model.CreateState(prompt.Length + n), prompt, options).Select(t => t.Id).ToArray();
    }

    /// <summary>Max-abs over all logits, its median over positions, top-1 agreement and mean relative difference.</summary>
    static (float MaxAbs, float MedianRowMaxAbs, double Top1, double RelMean) Compare(float[] x, float[] y, int vocab)
    {
        float max = 0;
        double sumDiff = 0, sumMag = 0;
        int agree = 0, rows = x.Length / vocab;
        for (int i = 0; i < x.Length; i++)
        {
            max = MathF.Max(max, MathF.Abs(x[i] - y[i]));
            sumDiff += Math.Abs(x[i] - y[i]);
            sumMag += Math.Abs(x[i]);
        }
        var rowMax = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            if (LlamaGoldenTests.Argmax(x.AsSpan(r * vocab, vocab)) == LlamaGoldenTests.Argmax(y.AsSpan(r * vocab, vocab))) agree++;
            for (int i = r * vocab; i < (r + 1) * vocab; i++) rowMax[r] = MathF.Max(rowMax[r], MathF.Abs(x[i] - y[i]));
        }
        Array.Sort(rowMax);
        return (max, rowMax[rows / 2], (double)agree / rows, sumDiff / sumMag);
    }

    [Fact]
    public void TinyGgufInF32AndQ8_0AndShardedHfLoadAndGenerateDeterministically()
    {
        using var dir = new TempDir();
        var s = Synthesis.Create("tiny", seed: 1);
        s.WriteGguf(dir.File("tiny-f32.gguf"), DType.F32, TwoThreads);
        s.WriteGguf(dir.File("tiny-q8_0.gguf"), DType.Q8_0, TwoThreads);
        s.WriteHuggingFace(dir.File("hf"), DType.F32, TwoThreads with { MaxShardBytes = 4 << 20 });
        int[] ids = [1, 100, 2000, 42, 7, 1500];
        var options = new ModelOptions { Threads = 2 };

        using var f32 = LoadedModel.Load(dir.File("tiny-f32.gguf"), options);
        var d = f32.Model.Description;
        Assert.Equal(("qwen2", "jevons-synth-tiny", 2048), (d.Architecture, d.Name, d.VocabSize));
        Assert.Equal(s.Plan.Parameters, d.TotalParameters);
        Assert.Equal(s.Plan.Parameters * 4, d.WeightBytes);
        Assert.Equal(4 * 2 * 2 * 32 * 4, d.KvBytesPerToken); // layers × K,V × KV heads × head dim × f32
        var a = Logits(f32, ids);
        double std = Math.Sqrt(a.Average(v => (double)v * v));
        Assert.InRange(std, 0.3, 10); // O(1) logits: neither collapsed nor exploding

        var first = Generate(f32, seed: 7);
        Assert.Equal(first, Generate(f32, seed: 7));
        Assert.NotEqual(first, Generate(f32, seed: 8));
        Assert.True(first.Distinct().Count() > 4, string.Join(",", first));

        using var q8 = LoadedModel.Load(dir.File("tiny-q8_0.gguf"), options);
        Assert.Equal(DType.Q8_0, q8.Model.Description.WeightBytesByType.MaxBy(kv => kv.Value).Key);
        Assert.Equal(Generate(q8, seed: 7), Generate(q8, seed: 7));
        var q = Compare(a, Logits(q8, ids), 2048);
        output.WriteLine($"tiny Q8_0 vs F32: max-abs {q.MaxAbs:E2} (median position {q.MedianRowMaxAbs:E2}), top-1 {q.Top1:P0}");
        Assert.True(q.Top1 >= 4 / 6.0, $"Q8_0 top-1 agreement {q.Top1:P0}");
        Assert.True(q.MaxAbs < 0.3f, $"Q8_0 max-abs {q.MaxAbs}");

        // The HF layout of the same seed is the same model: sharded, with an index, same logits, same tokens.
        Assert.True(File.Exists(dir.File("hf/model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(dir.File("hf"), "model-*-of-*.safetensors").Length >= 2);
        using var hf = LoadedModel.Load(dir.File("hf"), options);
        var h = Compare(a, Logits(hf, ids), 2048);
        output.WriteLine($"tiny HF F32 vs GGUF F32: max-abs {h.MaxAbs:E2}");
        Assert.True(h.MaxAbs < 1e-4f, $"HF vs GGUF max-abs {h.MaxAbs}");
        Assert.Equal(first, Generate(hf, seed: 7));
    }

    [Fact]
    public void HfTokenizerFilesRoundTripAndAgreeWithTheGgufVocabulary()
    {
        using var dir = new TempDir();
        var vocab = SyntheticVocabulary.Create(3000, "deepseek-v3");
        vocab.WriteHuggingFace(dir.Path);
        var hf = Tokenizer.Load(dir.Path);
        var gguf = Tokenizer.FromGguf(vocab.ToMetadata());
        Assert.Equal(3000, hf.VocabSize);
        Assert.Equal((vocab.BosId, vocab.EosId), (hf.BosId, hf.EosIds.Single()));
        foreach (var text in new[] { "hello world, the model thinks: 12345 steps!", "Ünïcödé 你好 \t\r\n  spaces", "<think>why</think> <｜User｜>x" })
        {
            var ids = hf.Encode(text, addSpecialTokens: false);
            Assert.Equal(gguf.Encode(text, addSpecialTokens: false), ids);
            Assert.Equal(text, hf.Decode(ids, skipSpecialTokens: false));
            Assert.Equal([vocab.BosId, .. ids], hf.Encode(text, addSpecialTokens: true));
        }
    }

    [Fact]
    public void V3MiniRunsTheSameFromGgufF32AndHfBf16AndHfFp8()
    {
        using var dir = new TempDir();
        var s = Synthesis.Create("deepseek-v3-mini", seed: 7);
        s.WriteGguf(dir.File("m.gguf"), DType.F32, TwoThreads);
        s.WriteHuggingFace(dir.File("bf16"), DType.BF16, TwoThreads);
        s.WriteHuggingFace(dir.File("fp8"), DType.F8_E4M3, TwoThreads);
        int[] ids = [0, 17, 400, 4089, 9, 1234, 77, 3000, 5, 2500, 123, 999, 64, 4000, 31, 2048];
        var options = new ModelOptions { Threads = 2 };
        int vocab = s.Plan.VocabSize;

        float[] a, b, c;
        using (var m = LoadedModel.Load(dir.File("m.gguf"), options))
        {
            var cfg = ((DeepSeek)m.Model).Config;
            Assert.Equal((4, 2, 96, 64), (cfg.Groups, cfg.TopKGroups, cfg.QLoraRank, cfg.KvLoraRank));
            Assert.Equal(4L * (64 + 16) * 4, m.Model.Description.KvBytesPerToken);
            Assert.Equal(s.Plan.Parameters, m.Model.Description.TotalParameters);
            a = Logits(m, ids);
        }
        using (var m = LoadedModel.Load(dir.File("bf16"), options))
        {
            Assert.Equal(s.Plan.HfTensors.Where(t => t.Kind == SynthKind.RouterBias).Sum(t => t.ElementCount) * 4,
                m.Model.Description.WeightBytesByType[DType.F32]);
            Assert.NotNull(m.Tokenizer);
            b = Logits(m, ids);
        }
        using (var m = LoadedModel.Load(dir.File("fp8"), options))
        {
            // Projections stay one byte per weight; embeddings, lm_head and routers stay BF16 as in DeepSeek-V3.
            Assert.Equal(s.Plan.HfTensors.Where(t => t.Kind == SynthKind.Matrix).Sum(t => t.ElementCount), m.Model.Description.WeightBytesByType[DType.F8_E4M3]);
            Assert.Equal(s.Plan.HfTensors.Where(t => t.Kind is SynthKind.Embedding or SynthKind.Output or SynthKind.Router or SynthKind.Norm).Sum(t => t.ElementCount) * 2,
                m.Model.Description.WeightBytesByType[DType.BF16]);
            c = Logits(m, ids);
        }
        Synthesis.Create("deepseek-v3-mini", seed: 8).WriteGguf(dir.File("other.gguf"), DType.F32, TwoThreads);
        float[] unrelated;
        using (var m = LoadedModel.Load(dir.File("other.gguf"), options)) unrelated = Logits(m, ids);
        var gu = Compare(a, unrelated, vocab);
        var gb = Compare(a, b, vocab);
        var gf = Compare(a, c, vocab);
        output.WriteLine($"GGUF F32 vs HF BF16: max-abs {gb.MaxAbs:E2} (median position {gb.MedianRowMaxAbs:E2}), mean rel {gb.RelMean:E2}, top-1 {gb.Top1:P0}; vs HF FP8: max-abs {gf.MaxAbs:E2} (median position {gf.MedianRowMaxAbs:E2}), mean rel {gf.RelMean:E2}, top-1 {gf.Top1:P0}; another seed: mean rel {gu.RelMean:E2}, top-1 {gu.Top1:P0}");
        Assert.True(gu.RelMean > 0.8, $"another seed's model differs only by {gu.RelMean}");
        // One model up to weight rounding: bf16 (8-bit mantissa) and fp8 (3-bit mantissa, block scales) errors only.
        // Most positions agree closely; where rounding flips a routed expert the logits move by a few units
        // (measured at 16 positions: bf16 median-position max-abs 0.08, top-1 94%, mean rel 0.038; fp8 top-1 69%, mean rel 0.20).
        Assert.True(gb.MedianRowMaxAbs < 0.2, $"bf16 median-position max-abs {gb.MedianRowMaxAbs}");
        Assert.True(gb.Top1 >= 0.85, $"bf16 top-1 {gb.Top1:P0}");
        Assert.True(gb.RelMean < 0.06, $"bf16 mean relative diff {gb.RelMean}");
        // FP8 moves router scores more: a looser bound, but far from another seed's model (asserted above).
        Assert.True(gf.Top1 >= 0.6, $"fp8 top-1 {gf.Top1:P0}");
        Assert.True(gf.RelMean < 0.3, $"fp8 mean relative diff {gf.RelMean}");
    }
}
