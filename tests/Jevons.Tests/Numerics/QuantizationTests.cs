using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

public unsafe class QuantizationTests
{
    static byte[] HalfBytes(float v) => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v));

    [Fact]
    public void HandBuiltQ4KBlockDequantizesToTheGgufFormula()
    {
        // d = 0.5, dmin = 0.25; sub-block scales sc = [1,2,3,4,17,5,6,33], mins m = [0,1,2,3,4,18,5,40]
        // packed by hand into the 12 scale bytes (6 bits each; high bits of 4..7 in the top bits of bytes 0..7).
        byte[] scales = [65, 2, 3, 132, 0, 65, 2, 131, 65, 37, 86, 129];
        int[] sc = [1, 2, 3, 4, 17, 5, 6, 33], m = [0, 1, 2, 3, 4, 18, 5, 40];
        var qs = new byte[128];
        for (int i = 0; i < 128; i++) qs[i] = (byte)((i % 16) | ((15 - i % 16) << 4));
        byte[] block = [.. HalfBytes(0.5f), .. HalfBytes(0.25f), .. scales, .. qs];
        Assert.Equal(144, block.Length);

        var y = new float[256];
        Quantization.Dequantize(DType.Q4_K, block, y);

        // spot values worked out by hand: w = d·sc·q − dmin·m
        Assert.Equal(0f, y[0]);          // sub-block 0, q = 0
        Assert.Equal(0.5f, y[1]);        // 0.5·1·1 − 0
        Assert.Equal(14.75f, y[32]);     // sub-block 1: 0.5·2·15 − 0.25·1
        Assert.Equal(58.5f, y[135]);     // sub-block 4: 0.5·17·7 − 0.25·4
        Assert.Equal(25.5f, y[163]);     // sub-block 5: 0.5·5·12 − 0.25·18
        Assert.Equal(155f, y[229]);      // sub-block 7: 0.5·33·10 − 0.25·40
        for (int e = 0; e < 256; e++)
        {
            int sub = e / 32, k = e / 64, l = e % 32;
            int q = sub % 2 == 0 ? qs[32 * k + l] & 0xF : qs[32 * k + l] >> 4;
            Assert.Equal(0.5f * sc[sub] * q - 0.25f * m[sub], y[e]);
        }
    }

    [Fact]
    public void HandBuiltQ6KBlockDequantizesToTheGgufFormula()
    {
        var ql = new byte[128];
        var qh = new byte[64];
        for (int i = 0; i < 128; i++) ql[i] = (byte)i;
        for (int i = 0; i < 64; i++) qh[i] = (byte)(i * 37);
        var sc = new sbyte[16];
        for (int g = 0; g < 16; g++) sc[g] = (sbyte)(g % 2 == 0 ? g + 1 : -(g + 1));
        sc[15] = 127;
        byte[] block = [.. ql, .. qh, .. sc.Select(s => (byte)s), .. HalfBytes(0.125f)];
        Assert.Equal(210, block.Length);

        var y = new float[256];
        Quantization.Dequantize(DType.Q6_K, block, y);

        // w = d·sc·(q − 32), q = 4 low bits from ql | 2 high bits from qh
        Assert.Equal(-4f, y[0]);          // q = 0, sc 1
        Assert.Equal(-1.875f, y[1]);      // q = 1 | 1<<4 = 17
        Assert.Equal(3.75f, y[17]);       // q = 17, sc[1] = −2
        Assert.Equal(-5.625f, y[33]);     // q = 17, sc[2] = 3
        Assert.Equal(0f, y[65]);          // q = 0 | 2<<4 = 32
        Assert.Equal(-26.25f, y[97]);     // q = 2, sc[6] = 7
        Assert.Equal(-396.875f, y[255]);  // q = 7, sc[15] = 127
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++)
            {
                int h = qh[32 * n + l];
                int q1 = (ql[64 * n + l] & 0xF) | ((h & 3) << 4);
                int q2 = (ql[64 * n + 32 + l] & 0xF) | (((h >> 2) & 3) << 4);
                int q3 = (ql[64 * n + l] >> 4) | (((h >> 4) & 3) << 4);
                int q4 = (ql[64 * n + 32 + l] >> 4) | (((h >> 6) & 3) << 4);
                int g = 8 * n + l / 16;
                Assert.Equal(0.125f * sc[g] * (q1 - 32), y[128 * n + l]);
                Assert.Equal(0.125f * sc[g + 2] * (q2 - 32), y[128 * n + 32 + l]);
                Assert.Equal(0.125f * sc[g + 4] * (q3 - 32), y[128 * n + 64 + l]);
                Assert.Equal(0.125f * sc[g + 6] * (q4 - 32), y[128 * n + 96 + l]);
            }
    }

    [Fact]
    public void HandBuiltLegacyBlocksDequantize()
    {
        // Q8_0: d = 0.25, q = -3
        var q8 = new byte[34];
        HalfBytes(0.25f).CopyTo(q8, 0);
        q8[2] = unchecked((byte)-3);
        q8[33] = 127;
        var y = new float[32];
        Quantization.Dequantize(DType.Q8_0, q8, y);
        Assert.Equal(-0.75f, y[0]);
        Assert.Equal(31.75f, y[31]);

        // Q4_0: byte 0x2F -> element 0 = 15-8 = 7, element 16 = 2-8 = -6; d = 2
        var q4 = new byte[18];
        HalfBytes(2f).CopyTo(q4, 0);
        q4[2] = 0x2F;
        Quantization.Dequantize(DType.Q4_0, q4, y);
        Assert.Equal(14f, y[0]);
        Assert.Equal(-12f, y[16]);
        Assert.Equal(-16f, y[1]);

        // Q5_0: qh bit 0 and bit 16 set -> element 0 = (0xF|0x10)-16 = 15, element 16 = (0x1|0x10)-16 = 1
        var q5 = new byte[22];
        HalfBytes(1f).CopyTo(q5, 0);
        BitConverter.GetBytes(0x00010001u).CopyTo(q5, 2);
        q5[6] = 0x1F;
        Quantization.Dequantize(DType.Q5_0, q5, y);
        Assert.Equal(15f, y[0]);
        Assert.Equal(1f, y[16]);
        Assert.Equal(-16f, y[1]);

        // Q4_1: w = d·q + m
        var q41 = new byte[20];
        HalfBytes(0.5f).CopyTo(q41, 0);
        HalfBytes(-1f).CopyTo(q41, 2);
        q41[4] = 0x3A;
        Quantization.Dequantize(DType.Q4_1, q41, y);
        Assert.Equal(4f, y[0]);      // 10·0.5 − 1
        Assert.Equal(0.5f, y[16]);   // 3·0.5 − 1
    }

    public static IEnumerable<object[]> RoundTripCases() =>
    [
        [DType.F16, 1e-3], [DType.BF16, 5e-3], [DType.F8_E4M3, 0.05], [DType.Q8_0, 0.01], [DType.Q6_K, 0.03],
        [DType.Q5_K, 0.05], [DType.Q5_0, 0.06], [DType.Q5_1, 0.06], [DType.Q4_K, 0.1], [DType.Q4_0, 0.13],
        [DType.Q4_1, 0.12], [DType.Q3_K, 0.25], [DType.Q2_K, 0.45],
    ];

    [Theory]
    [MemberData(nameof(RoundTripCases))]
    public void QuantizeThenDequantizeStaysWithinTheFormatsError(DType type, double maxRelRmse)
    {
        const int n = 4096;
        var x = TestData.Normal(n, (int)type);
        var bytes = new byte[type.ByteCount(n)];
        Quantization.QuantizeRow(type, x, bytes);
        var y = new float[n];
        Quantization.Dequantize(type, bytes, y);
        double se = 0, ss = 0;
        for (int i = 0; i < n; i++) { se += (x[i] - y[i]) * (x[i] - y[i]); ss += x[i] * x[i]; }
        double rel = Math.Sqrt(se / ss);
        Assert.True(rel < maxRelRmse, $"{type}: relative rmse {rel:F4} >= {maxRelRmse}");
        Assert.True(rel > maxRelRmse / 20, $"{type}: relative rmse {rel:F6} is suspiciously small");
        // re-quantising the decoded values is stable (for the formats whose grid contains them)
        if (type is DType.F16 or DType.BF16 or DType.F8_E4M3 or DType.Q8_0)
        {
            var again = new byte[bytes.Length];
            Quantization.QuantizeRow(type, y, again);
            Assert.Equal(bytes, again);
        }
    }

    [Fact]
    public void ZeroRowsQuantizeToZero()
    {
        foreach (DType t in new[] { DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K })
        {
            var bytes = new byte[t.ByteCount(256)];
            Quantization.QuantizeRow(t, new float[256], bytes);
            var y = new float[256];
            Quantization.Dequantize(t, bytes, y);
            Assert.All(y, v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Q8_0FileQuantizerRoundsHalfAwayFromZero()
    {
        // amax 127 -> d = 1; ggml's quantize_row_q8_0_ref uses roundf: 2.5 -> 3, -2.5 -> -3
        var x = new float[32];
        x[0] = 127; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.49f;
        var b = new byte[34];
        Quantization.QuantizeRow(DType.Q8_0, x, b);
        Assert.Equal(1f, (float)BitConverter.ToHalf(b, 0));
        Assert.Equal(127, (sbyte)b[2]);
        Assert.Equal(3, (sbyte)b[3]);
        Assert.Equal(-3, (sbyte)b[4]);
        Assert.Equal(0, (sbyte)b[5]);
    }

    [Fact]
    public void Q8_0ActivationsRoundHalfToEvenLikeLlamaCpp()
    {
        // llama.cpp's CPU quantize_row_q8_0: id = 127/amax, q = round-half-even(x·id)
        var x = new float[32];
        x[0] = 127; x[1] = 2.5f; x[2] = -2.5f; x[3] = 3.5f; x[4] = -0.5f;
        var b = new byte[34];
        Quantization.QuantizeActivations(DType.Q8_0, x, b);
        Assert.Equal(1f, (float)BitConverter.ToHalf(b, 0));
        Assert.Equal(127, (sbyte)b[2]);
        Assert.Equal(2, (sbyte)b[3]);
        Assert.Equal(-2, (sbyte)b[4]);
        Assert.Equal(4, (sbyte)b[5]);
        Assert.Equal(0, (sbyte)b[6]);
        // d is fp16(amax/127): amax 1 -> d = fp16(0.007874016)
        var y = TestData.Normal(32, 5);
        y[7] = 1; for (int i = 0; i < 32; i++) y[i] = Math.Clamp(y[i], -1, 1);
        Quantization.QuantizeActivations(DType.Q8_0, y, b);
        Assert.Equal((Half)(1f / 127f), BitConverter.ToHalf(b, 0));
        Assert.Equal(127, (sbyte)b[2 + 7]);
    }

    [Fact]
    public void Q8_KActivationsCarryBlockSums()
    {
        var x = TestData.Normal(512, 9);
        var b = new byte[2 * 292];
        Quantization.QuantizeActivations(DType.Q8_K, x, b);
        for (int blk = 0; blk < 2; blk++)
        {
            float d = BitConverter.ToSingle(b, 292 * blk);
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 0; i < 16; i++) s += (sbyte)b[292 * blk + 4 + 16 * g + i];
                Assert.Equal(s, BitConverter.ToInt16(b, 292 * blk + 260 + 2 * g));
            }
            for (int i = 0; i < 256; i++) Assert.True(Math.Abs(x[256 * blk + i] - d * (sbyte)b[292 * blk + 4 + i]) <= Math.Abs(d) * 0.5001);
        }
    }

    [Fact]
    public void Fp8AndBf16EncodersRoundToNearestEven()
    {
        for (int b = 0; b < 256; b++)
        {
            if (b == 0x7F || b == 0xFF || b == 0x80) continue;
            Assert.Equal(b, Quantization.FloatToF8E4M3(Quantization.F8E4M3Table[b]));
        }
        Assert.Equal(0x7E, Quantization.FloatToF8E4M3(1e6f));
        Assert.Equal(0x7F, Quantization.FloatToF8E4M3(float.NaN));
        Assert.Equal(0x80, Quantization.FloatToF8E4M3(-0f));
        Assert.Equal(0x38, Quantization.FloatToF8E4M3(1.0625f)); // halfway between 1 and 1.125 -> even (1)
        Assert.Equal(0x3A, Quantization.FloatToF8E4M3(1.1875f)); // halfway between 1.125 and 1.25 -> even (1.25)
        Assert.Equal(0x3F80, Quantization.FloatToBf16(1f));
        Assert.Equal(0x3F80, Quantization.FloatToBf16(BitConverter.Int32BitsToSingle(0x3F808000))); // tie -> even
        Assert.Equal(0x3F82, Quantization.FloatToBf16(BitConverter.Int32BitsToSingle(0x3F818000))); // tie -> even (up)
    }

    [Fact]
    public void EveryDTypeDequantizes()
    {
        foreach (DType t in Enum.GetValues<DType>())
        {
            int n = t.BlockSize();
            var src = TestData.Bytes(t.BlockBytes(), (int)t);
            var dst = new float[n];
            Quantization.Dequantize(t, src, dst);
        }
        var ints = new float[2];
        Quantization.Dequantize(DType.I32, BitConverter.GetBytes(-7).Concat(BitConverter.GetBytes(9)).ToArray(), ints);
        Assert.Equal([-7f, 9f], ints);
        Assert.Throws<ArgumentException>(() => Quantization.Dequantize(DType.Q8_0, new byte[33], new float[32]));
    }

    public static IEnumerable<object[]> QuantTypes() =>
        new[] { DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K }
            .Select(t => new object[] { t });

    [Theory]
    [MemberData(nameof(QuantTypes))]
    public void IntegerDotAgreesWithDequantizeThenDot(DType type)
    {
        const int n = 1024;
        var w = TestData.Normal(n, 11 + (int)type);
        var x = TestData.Normal(n, 12 + (int)type);
        var wq = new byte[type.ByteCount(n)];
        Quantization.QuantizeRow(type, w, wq);
        var wd = new float[n];
        Quantization.Dequantize(type, wq, wd);
        double exact = 0, mag = 0;
        for (int i = 0; i < n; i++) { exact += (double)wd[i] * x[i]; mag += Math.Abs(wd[i] * x[i]); }

        var act = type is DType.Q2_K or DType.Q3_K or DType.Q4_K or DType.Q5_K or DType.Q6_K ? DType.Q8_K : DType.Q8_0;
        var xq = new byte[act.ByteCount(n)];
        Quantization.QuantizeActivations(act, x, xq);
        var results = new List<float>();
        foreach (var path in new[] { KernelPath.Scalar, KernelPath.V128, KernelPath.V256, KernelPath.V512 })
        {
            fixed (byte* pw = wq, px = xq)
            {
                var action = new Int8DotAction { W = pw, X = px, Blocks = n / type.BlockSize(), Path = path };
                BlockFormats.Dispatch(type, ref action);
                results.Add(action.Result);
            }
        }
        // every path gives the same bits; the value is within activation-quantisation error of the float dot
        Assert.All(results, r => Assert.Equal(results[0], r));
        Assert.True(Math.Abs(results[0] - exact) < 0.01 * mag, $"{type}: int8 {results[0]} vs float {exact} (Σ|wx| {mag})");
    }

    struct Int8DotAction : IFormatAction
    {
        public byte* W, X;
        public int Blocks;
        public KernelPath Path;
        public float Result;
        public void Run<T>() where T : struct, IBlockFormat => Result = T.DotInt8(W, X, Blocks, Path);
    }
}
