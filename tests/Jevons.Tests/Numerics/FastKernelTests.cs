using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>The fast decode kernels against their scalar twins.</summary>
public unsafe class FastKernelTests
{
    public static IEnumerable<object[]> Paths() => TestData.VectorPathData();

    [Theory]
    [MemberData(nameof(Paths))]
    public void Fp8BlockScaledDotMatchesScalarTwin(KernelPath path)
    {
        // activation magnitudes 1 (no rescale), 1e3 and 1e30 (x·s ≥ 2^7: the 2^k correction), 1e-30 (tiny)
        foreach (float xmag in new[] { 1f, 1e3f, 1e30f, 1e-30f })
            foreach (int blockCols in new[] { 128, 16, 48, 7 })
                foreach (int n in new[] { 0, 1, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 255, 300, 1000 })
                {
                    var x = TestData.Normal(n, n + 1, xmag);
                    var w = TestData.Normal(n, 2000 + n).Select(Quantization.FloatToF8E4M3).ToArray();
                    var scales = TestData.Uniform((n + blockCols - 1) / blockCols + 1, n + 7, 0.25f, 4f);
                    fixed (float* px = x, ps = scales)
                    fixed (byte* pw = w)
                    {
                        double want = 0, mag = 0;
                        for (int i = 0; i < n; i++)
                        {
                            double p = (double)Quantization.F8E4M3Table[w[i]] * scales[i / blockCols] * x[i];
                            want += p;
                            mag += Math.Abs(p);
                        }
                        float twin = FloatDot.DotF8Scaled(pw, px, n, blockCols, ps, KernelPath.Scalar);
                        float fast = FloatDot.DotF8Scaled(pw, px, n, blockCols, ps, path);
                        string what = $"{path} x~{xmag} n={n} b={blockCols}";
                        TestData.Close((float)want, twin, 1e-5 * mag + 1e-37, "scalar " + what);
                        TestData.Close(twin, fast, 1e-5 * mag + 1e-37, what);
                        Assert.True(float.IsFinite(fast), what);
                    }
                }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Fp8DotDecodesEveryByteValue(KernelPath path)
    {
        // every finite byte once (NaN bytes excluded), one-hot activations read back each decoded value
        var bytes = Enumerable.Range(0, 256).Where(b => (b & 0x7F) != 0x7F).Select(b => (byte)b).ToArray();
        var ones = new float[] { 1, 1 };
        var x = new float[bytes.Length];
        fixed (byte* pw = bytes) fixed (float* px = x, po = ones)
            for (int i = 0; i < bytes.Length; i++)
            {
                Array.Clear(x);
                x[i] = 1;
                float got = FloatDot.DotF8Scaled(pw, px, bytes.Length, 128, po, path);
                Assert.Equal(BitConverter.SingleToInt32Bits(Quantization.F8E4M3Table[bytes[i]] + 0f),
                    BitConverter.SingleToInt32Bits(got + 0f));
            }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Fp8NaNBytesGiveNaN(KernelPath path)
    {
        foreach (byte nan in new byte[] { 0x7F, 0xFF })
            foreach (int at in new[] { 0, 40, 199 })
            {
                var w = TestData.Normal(200, 3).Select(Quantization.FloatToF8E4M3).ToArray();
                w[at] = nan;
                var x = TestData.Normal(200, 4);
                var s = new float[] { 1, 2 };
                fixed (byte* pw = w) fixed (float* px = x, ps = s)
                    Assert.True(float.IsNaN(FloatDot.DotF8Scaled(pw, px, 200, 128, ps, path)), $"{nan:X2} at {at}");
            }
    }
}

public class HalfScalarTests
{
    [Fact]
    public void InlineHalfToFloatIsExactForEveryBitPattern()
    {
        for (int h = 0; h < 65536; h++)
        {
            float want = (float)BitConverter.UInt16BitsToHalf((ushort)h);
            float got = Jevons.Numerics.Quants.BlockBits.HalfToFloat((ushort)h);
            if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"{h:X4}");
            else Assert.Equal(BitConverter.SingleToInt32Bits(want), BitConverter.SingleToInt32Bits(got));
        }
    }
}

public unsafe class ActivationQuantTwinTests
{
    [Fact]
    public void VectorQ8_0QuantiserMatchesScalarTwin()
    {
        const int n = 32 * 64;
        var x = TestData.Normal(n, 11, 2f);
        // exact halves after scaling (round-half-even ties), a zero block, a block with one huge value
        for (int i = 0; i < 32; i++) x[i] = (i - 16) * 0.5f;
        for (int i = 32; i < 64; i++) x[i] = 0;
        x[70] = 1e30f;
        var a = new byte[34 * 64];
        var b = new byte[34 * 64];
        fixed (float* px = x) fixed (byte* pa = a, pb = b)
        {
            Jevons.Numerics.Quants.ActivationQuant.QuantizeQ8_0Scalar(px, pa, n);
            Jevons.Numerics.Quants.ActivationQuant.QuantizeQ8_0Vector(px, pb, n);
        }
        Assert.Equal(a, b);
    }
}

public unsafe class ActivationQuantQ8KTwinTests
{
    [Fact]
    public void VectorQ8_KQuantiserMatchesScalarTwin()
    {
        const int n = 256 * 8;
        var x = TestData.Normal(n, 12, 3f);
        for (int i = 256; i < 512; i++) x[i] = 0;                       // a zero block
        x[600] = 5; x[700] = -5;                                          // equal magnitudes: the first decides the sign
        x[900] = -7; x[901] = 7;
        for (int i = 1024; i < 1280; i++) x[i] = (i % 9 - 4) * 0.25f;    // ties after scaling
        x[1500] = float.NaN;                                              // a NaN block goes through the scalar path
        var a = new byte[292 * 8];
        var b = new byte[292 * 8];
        fixed (float* px = x) fixed (byte* pa = a, pb = b)
        {
            Jevons.Numerics.Quants.ActivationQuant.QuantizeQ8_KScalar(px, pa, n);
            Jevons.Numerics.Quants.ActivationQuant.QuantizeQ8_KVector(px, pb, n);
        }
        Assert.Equal(a, b);
    }
}

public unsafe class Fp8MatMulTests
{
    [Fact]
    public void Fp8GemmMatchesMatVecAcrossScaleBlocksAndNaNRowsStayLocal()
    {
        const int outF = 300, inF = 200, n = 3;
        var bytes = TestData.Normal(outF * inF, 31).Select(Quantization.FloatToF8E4M3).ToArray();
        bytes[130 * inF + 17] = 0x7F; // row 130 holds a NaN
        var scales = TestData.Uniform(3 * 2, 32, 0.5f, 2f);
        var x = TestData.Normal(n * inF, 33);
        fixed (byte* pw = bytes) fixed (float* ps = scales)
        {
            var w = new Linear("w", DType.F8_E4M3, outF, inF, pw, "test", ps, 128, 128);
            foreach (var path in TestData.VectorPaths.Append(KernelPath.Scalar))
                foreach (int threads in new[] { 1, 2 })
                {
                    using var pool = new WorkerPool(threads, path);
                    var y = new float[n * outF];
                    MatMul.Gemm(w, x, y, n, pool, ActivationMode.LlamaCpp);
                    var row = new float[inF];
                    for (int t = 0; t < n; t++)
                    {
                        var yt = new float[outF];
                        MatMul.MatVec(w, x.AsSpan(t * inF, inF), yt, pool);
                        Assert.Equal(y.AsSpan(t * outF, outF).ToArray(), yt);
                        for (int r = 0; r < outF; r++)
                        {
                            if (r == 130) { Assert.True(float.IsNaN(yt[r])); continue; }
                            MatMul.DecodeRow(w, r, row);
                            double want = 0, mag = 0;
                            for (int i = 0; i < inF; i++) { want += (double)row[i] * x[t * inF + i]; mag += Math.Abs((double)row[i] * x[t * inF + i]); }
                            TestData.Close((float)want, yt[r], 1e-5 * mag + 1e-6, $"{path} t{threads} token {t} row {r}");
                        }
                    }
                }
        }
    }
}
