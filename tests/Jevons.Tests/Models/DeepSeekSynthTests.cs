using System.Text;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

public sealed class DeepSeekSynthTests(ITestOutputHelper output)
{
    static DeepSeekConfig ConfigOf(DeepSeekSynthesis s, ModelFormat format)
    {
        var dir = Directory.CreateTempSubdirectory("jevons-synth-").FullName;
        try
        {
            if (format == ModelFormat.HuggingFace)
            {
                File.WriteAllText(Path.Combine(dir, "config.json"), s.HfConfigJson);
                using var src = DeepSeekTestFiles.OpenHf(dir);
                return DeepSeekConfig.Read(src);
            }
            var w = new GgufWriter();
            foreach (var (k, v) in s.Metadata) w.Set(k, ToGguf(v));
            var path = Path.Combine(dir, "m.gguf");
            w.Write(path);
            using var file = GgufFile.Open(path);
            using var source = new ModelSource(path, ModelFormat.Gguf, "deepseek2", file, file.Metadata);
            return DeepSeekConfig.Read(source);
        }
        finally { Directory.Delete(dir, true); }
    }

    static GgufValue ToGguf(object v) => v switch
    {
        string s => GgufValue.String(s),
        uint u => GgufValue.UInt32(u),
        float f => GgufValue.Float32(f),
        bool b => GgufValue.Bool(b),
        _ => throw new NotSupportedException(v.GetType().Name),
    };

    [Fact]
    public void V2LitePresetHasTheRealShapesAndLatentCache()
    {
        var s = DeepSeekSynthesis.Create("deepseek-v2-lite");
        output.WriteLine($"deepseek-v2-lite: {s.Parameters} parameters, {s.HfTensors.Count} HF tensors, {s.GgufTensors.Count} GGUF tensors");
        Assert.InRange(s.Parameters, 15_650_000_000L, 15_750_000_000L); // DeepSeek-V2-Lite: 15.7B
        Assert.Equal(s.Parameters, s.GgufTensors.Sum(t => t.ElementCount));
        foreach (var format in new[] { ModelFormat.HuggingFace, ModelFormat.Gguf })
        {
            var c = ConfigOf(s, format);
            Assert.Equal(27L * (512 + 64) * 4, c.KvBytesPerToken);
            Assert.Equal(27, c.Layers);
            Assert.Equal(0, c.QLoraRank);
            Assert.Equal((64, 2, 6, 1408, 10944), (c.RoutedExperts, c.SharedExperts, c.ExpertsPerToken, c.MoeIntermediateSize, c.IntermediateSize));
            Assert.Equal((128, 64, 128), (c.QkNopeHeadDim, c.QkRopeHeadDim, c.VHeadDim));
            Assert.Equal(40, c.Yarn!.Factor);
            Assert.Equal(1 + 0.0707 * Math.Log(40), c.Yarn.AttentionMScale, 5);
        }
        var e = Assert.Throws<JevonsException>(() => DeepSeekSynthesis.Create("deepseek-v9"));
        Assert.Contains("deepseek-v2-lite", e.Message);
    }

    [Fact]
    public void Fp8EncoderRoundTripsEveryCodeAndRoundsHalfToEven()
    {
        for (int b = 0; b < 256; b++)
        {
            if ((b & 0x7F) == 0x7F) continue; // NaN
            Assert.Equal((byte)b, DeepSeekSynthesis.EncodeFp8(Quantization.F8E4M3Table[b]));
        }
        Assert.Equal(0x38, DeepSeekSynthesis.EncodeFp8(1.0625f)); // halfway 1.0 (0x38) / 1.125 (0x39): even
        Assert.Equal(0x3A, DeepSeekSynthesis.EncodeFp8(1.1875f)); // halfway 0x39 / 0x3A: even
        Assert.Equal(0x7E, DeepSeekSynthesis.EncodeFp8(1e6f));
        Assert.Equal(0xFE, DeepSeekSynthesis.EncodeFp8(-500f));
    }

    /// <summary>Writes the HF layout (BF16 or FP8 + scales) with a minimal safetensors writer.</summary>
    static void WriteHf(DeepSeekSynthesis s, string dir, bool fp8)
    {
        File.WriteAllText(Path.Combine(dir, "config.json"), fp8 ? s.HfConfigJsonFp8 : s.HfConfigJson);
        var entries = new List<(string Name, string DType, long[] Shape, byte[] Data)>();
        foreach (var t in s.HfTensors)
        {
            var values = new float[t.ElementCount];
            s.FillRows(t, 0, values);
            if (fp8 && t.Fp8)
            {
                int rows = (int)t.Rows, cols = (int)t.Columns, bands = (rows + 127) / 128, blocks = (cols + 127) / 128;
                var q = new byte[values.Length];
                var scales = new float[bands * blocks];
                for (int b = 0; b < bands; b++)
                {
                    int r0 = b * 128, n = Math.Min(128, rows - r0);
                    DeepSeekSynthesis.QuantizeFp8Band(values.AsSpan(r0 * cols, n * cols), cols, q.AsSpan(r0 * cols, n * cols), scales.AsSpan(b * blocks, blocks));
                }
                entries.Add((t.Name, "F8_E4M3", t.Shape, q));
                var sb = new byte[scales.Length * 4];
                Buffer.BlockCopy(scales, 0, sb, 0, sb.Length);
                entries.Add((t.Name + "_scale_inv", "F32", [bands, blocks], sb));
            }
            else if (t.Kind == DeepSeekSynthKind.Bias)
            {
                var fb = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, fb, 0, fb.Length);
                entries.Add((t.Name, "F32", t.Shape, fb));
            }
            else
            {
                var bf = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++)
                {
                    uint bits = BitConverter.SingleToUInt32Bits(values[i]);
                    bits += 0x7FFF + ((bits >> 16) & 1); // round to nearest even
                    BitConverter.TryWriteBytes(bf.AsSpan(i * 2), (ushort)(bits >> 16));
                }
                entries.Add((t.Name, "BF16", t.Shape, bf));
            }
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var e in entries)
        {
            header.Append($",\"{e.Name}\":{{\"dtype\":\"{e.DType}\",\"shape\":[{string.Join(",", e.Shape)}],\"data_offsets\":[{offset},{offset + e.Data.Length}]}}");
            offset += e.Data.Length;
        }
        header.Append('}');
        while (header.Length % 8 != 0) header.Append(' ');
        using var f = File.Create(Path.Combine(dir, "model.safetensors"));
        f.Write(BitConverter.GetBytes((long)header.Length));
        f.Write(Encoding.UTF8.GetBytes(header.ToString()));
        foreach (var e in entries) f.Write(e.Data);
    }

    static void WriteGgufF32(DeepSeekSynthesis s, string path)
    {
        var w = new GgufWriter();
        foreach (var (k, v) in s.Metadata) w.Set(k, ToGguf(v));
        foreach (var t in s.GgufTensors)
        {
            var tensor = t;
            w.AddTensor(t.Name, DType.F32, t.Shape, stream =>
            {
                var row = new float[tensor.Columns];
                var bytes = new byte[row.Length * 4];
                for (long r = 0; r < tensor.Rows; r++)
                {
                    s.FillRows(tensor, r, row);
                    Buffer.BlockCopy(row, 0, bytes, 0, bytes.Length);
                    stream.Write(bytes);
                }
            });
        }
        w.Write(path);
    }

    [Fact]
    public void V3MiniRunsTheSameInGgufBf16AndFp8Layouts()
    {
        var s = DeepSeekSynthesis.Create("deepseek-v3-mini", seed: 7);
        var dir = Directory.CreateTempSubdirectory("jevons-synth-").FullName;
        try
        {
            var gguf = Path.Combine(dir, "m.gguf");
            WriteGgufF32(s, gguf);
            Directory.CreateDirectory(Path.Combine(dir, "bf16"));
            Directory.CreateDirectory(Path.Combine(dir, "fp8"));
            WriteHf(s, Path.Combine(dir, "bf16"), fp8: false);
            WriteHf(s, Path.Combine(dir, "fp8"), fp8: true);

            int[] ids = [0, 17, 400, 4095, 9, 1234, 77, 3000];
            float[] Run(ModelSource src)
            {
                using var model = DeepSeek.Create(src, new ModelOptions { Threads = 1 }, Jevons.Models.Blocks.MlaAttentionMode.Absorbed);
                Assert.Equal(Jevons.Models.Blocks.TopkMethod.NoAuxTc, model.Config.TopkMethod);
                Assert.Equal((4, 2, 96), (model.Config.Groups, model.Config.TopKGroups, model.Config.QLoraRank));
                var logits = new float[ids.Length * model.VocabSize];
                model.Forward(model.CreateState(ids.Length), ids, logits);
                Assert.All(logits, v => Assert.True(float.IsFinite(v)));
                return logits;
            }
            float[] a;
            using (var file = GgufFile.Open(gguf))
            using (var src = new ModelSource(gguf, ModelFormat.Gguf, "deepseek2", file, file.Metadata))
                a = Run(src);
            float[] b, c;
            using (var src = DeepSeekTestFiles.OpenHf(Path.Combine(dir, "bf16"))) b = Run(src);
            using (var src = DeepSeekTestFiles.OpenHf(Path.Combine(dir, "fp8")))
            {
                c = Run(src);
                using var m = DeepSeek.Create(src, new ModelOptions { Threads = 1 });
                Assert.Equal(s.HfTensors.Where(t => t.Fp8).Sum(t => t.ElementCount), m.Description.WeightBytesByType[DType.F8_E4M3]);
            }
            static (float Max, double Top1, double RelMean) Compare(float[] x, float[] y, int vocab)
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
                for (int r = 0; r < rows; r++)
                    if (ArgMax(x.AsSpan(r * vocab, vocab)) == ArgMax(y.AsSpan(r * vocab, vocab))) agree++;
                return (max, (double)agree / rows, sumDiff / sumMag);
            }
            var gb = Compare(a, b, s.Preset.VocabSize);
            var gf = Compare(a, c, s.Preset.VocabSize);
            output.WriteLine($"GGUF F32 vs HF BF16: max-abs {gb.Max:E2}, mean rel {gb.RelMean:E2}, top-1 {gb.Top1:P0}; vs HF FP8: max-abs {gf.Max:E2}, mean rel {gf.RelMean:E2}, top-1 {gf.Top1:P0}");
            // Same model up to weight rounding: bf16 (8 bits of mantissa) and fp8 (3 bits) errors only.
            Assert.True(gb.Max < 0.2, $"bf16 max-abs {gb.Max}");
            Assert.True(gb.Top1 >= 0.75);
            // FP8's 3-bit mantissa moves router scores enough to flip some expert choices: compare in the mean.
            Assert.True(gb.RelMean < 0.02, $"bf16 mean relative diff {gb.RelMean}");
            Assert.True(gf.RelMean < 0.25, $"fp8 mean relative diff {gf.RelMean}");
        }
        finally { Directory.Delete(dir, true); }
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
