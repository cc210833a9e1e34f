using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>Every vector kernel against its scalar twin, lengths 0–257, seeded inputs, special values.</summary>
public unsafe class KernelTests
{
    public static IEnumerable<object[]> Paths() => TestData.VectorPathData();

    [Fact]
    public void EnvironmentVariableParses()
    {
        Assert.Equal(KernelPath.Scalar, KernelDispatch.FromEnvironment("scalar"));
        Assert.Equal(KernelDispatch.Hardware, KernelDispatch.FromEnvironment(null));
        Assert.True(KernelDispatch.FromEnvironment("V512") <= KernelDispatch.Hardware);
        Assert.Throws<JevonsException>(() => KernelDispatch.FromEnvironment("avx9"));
    }

    [Fact]
    public void HalfDecodeIsExactForEveryBitPattern()
    {
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        var dst = new float[bits.Length];
        foreach (var path in TestData.VectorPaths)
        {
            fixed (ushort* pb = bits)
            fixed (float* pd = dst)
                F16Format.Dequantize((byte*)pb, pd, bits.Length, path);
            for (int i = 0; i < bits.Length; i++)
            {
                float want = (float)BitConverter.UInt16BitsToHalf((ushort)i);
                if (float.IsNaN(want)) Assert.True(float.IsNaN(dst[i]), $"{path} 0x{i:X4}");
                else Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(dst[i]), $"{path} 0x{i:X4}: {want} vs {dst[i]}");
            }
        }
    }

    [Fact]
    public void F8AndBf16DecodeMatchTheScalarDefinition()
    {
        var f8 = new byte[256];
        for (int i = 0; i < 256; i++) f8[i] = (byte)i;
        var bf = new ushort[65536];
        for (int i = 0; i < bf.Length; i++) bf[i] = (ushort)i;
        var d8 = new float[256];
        var dbf = new float[65536];
        foreach (var path in TestData.VectorPaths)
        {
            fixed (byte* p = f8) fixed (float* d = d8) F8E4M3Format.Dequantize(p, d, 256, path);
            fixed (ushort* p = bf) fixed (float* d = dbf) BF16Format.Dequantize((byte*)p, d, bf.Length, path);
            for (int i = 0; i < 256; i++)
            {
                float want = Quantization.F8E4M3Table[i];
                if (float.IsNaN(want)) Assert.True(float.IsNaN(d8[i]));
                else Assert.Equal(BitConverter.SingleToInt32Bits(want), BitConverter.SingleToInt32Bits(d8[i]));
            }
            for (int i = 0; i < bf.Length; i++)
                Assert.Equal(BitConverter.SingleToInt32Bits(Quantization.Bf16ToFloat((ushort)i)), BitConverter.SingleToInt32Bits(dbf[i]));
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void FloatDotsMatchScalarForEveryLength(KernelPath path)
    {
        for (int n = 0; n <= 257; n++)
        {
            var x = TestData.Normal(n, n);
            var w32 = TestData.Normal(n, 1000 + n);
            var w16 = w32.Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray();
            var wbf = w32.Select(Quantization.FloatToBf16).ToArray();
            var w8 = w32.Select(Quantization.FloatToF8E4M3).ToArray();
            fixed (float* px = x, p32 = w32)
            fixed (ushort* p16 = w16, pbf = wbf)
            fixed (byte* p8 = w8)
            {
                double mag = 0;
                for (int i = 0; i < n; i++) mag += Math.Abs(x[i] * w32[i]);
                double tol = 1e-5 * mag + 1e-6;
                TestData.Close(FloatDot.DotScalar<F32Elements>((byte*)p32, px, n), F32Format.Dot((byte*)p32, px, n, path), tol, $"F32 n={n}");
                TestData.Close(FloatDot.DotScalar<F16Elements>((byte*)p16, px, n), F16Format.Dot((byte*)p16, px, n, path), tol, $"F16 n={n}");
                TestData.Close(FloatDot.DotScalar<Bf16Elements>((byte*)pbf, px, n), BF16Format.Dot((byte*)pbf, px, n, path), tol, $"BF16 n={n}");
                TestData.Close(FloatDot.DotScalar<F8Elements>(p8, px, n), F8E4M3Format.Dot(p8, px, n, path), tol, $"F8 n={n}");
                // decoding first then dotting F32 gives the same bits as the fused dot
                var dec = new float[n];
                fixed (float* pd = dec)
                {
                    F16Format.Dequantize((byte*)p16, pd, n, path);
                    Assert.Equal(F16Format.Dot((byte*)p16, px, n, path), F32Format.Dot((byte*)pd, px, n, path));
                }
            }
        }
    }

    [Fact]
    public void DotPropagatesSpecialValues()
    {
        foreach (var path in TestData.VectorPaths.Append(KernelPath.Scalar))
        {
            var a = TestData.Normal(100, 1);
            var b = TestData.Normal(100, 2);
            a[37] = float.NaN;
            Assert.True(float.IsNaN(Ops.Dot(a, b, path)));
            a[37] = float.PositiveInfinity;
            b[37] = 1;
            Assert.Equal(float.PositiveInfinity, Ops.Dot(a, b, path));
            Assert.Equal(0f, Ops.Dot(new float[] { -0f }, new float[] { 1f }, path));
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void RmsNormMatchesScalar(KernelPath path)
    {
        for (int n = 0; n <= 257; n++)
        {
            var x = TestData.Normal(n, n, 3f);
            var w = TestData.Normal(n, n + 7);
            var want = new float[n];
            var got = new float[n];
            Ops.RmsNormScalar(x, w, 1e-6f, want);
            Ops.RmsNorm(x, w, 1e-6f, got, path);
            for (int i = 0; i < n; i++) TestData.Close(want[i], got[i], 1e-5 * Math.Abs(want[i]) + 1e-6, $"n={n} i={i}");
            // in place
            Ops.RmsNorm(x, w, 1e-6f, x, path);
            for (int i = 0; i < n; i++) Assert.Equal(got[i], x[i]);
        }
        // hand value: x = [3, 4], mean square 12.5
        var y = new float[2];
        Ops.RmsNorm([3f, 4f], [1f, 2f], 0f, y, path);
        Assert.Equal(3 / MathF.Sqrt(12.5f), y[0], 1e-6f);
        Assert.Equal(8 / MathF.Sqrt(12.5f), y[1], 1e-6f);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void SoftmaxMatchesScalar(KernelPath path)
    {
        for (int n = 1; n <= 257; n++)
        {
            var x = TestData.Normal(n, n, 4f);
            if (n > 3) x[n / 2] = float.NegativeInfinity;
            var want = x.ToArray();
            Ops.SoftmaxScalar(want);
            Ops.Softmax(x, path);
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                TestData.Close(want[i], x[i], 2e-6 * want[i] + 1e-8, $"n={n} i={i}");
                sum += x[i];
            }
            Assert.InRange(sum, 1 - 1e-5, 1 + 1e-5);
            if (n > 3) Assert.Equal(0f, x[n / 2]);
        }
        Ops.Softmax(Span<float>.Empty, path);
        var nan = new float[] { 1, float.NaN, 2, 3, 4, 5, 6, 7, 8 };
        Ops.Softmax(nan, path);
        Assert.True(float.IsNaN(nan[0]));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void SiluAndSwiGluMatchScalar(KernelPath path)
    {
        for (int n = 0; n <= 257; n++)
        {
            var g = TestData.Normal(n, n, 5f);
            var u = TestData.Normal(n, n + 1);
            if (n > 10) { g[3] = float.NegativeInfinity; g[4] = float.PositiveInfinity; g[5] = -0f; g[6] = -200f; }
            var want = g.ToArray();
            Ops.SwiGluScalar(want, u);
            var got = g.ToArray();
            Ops.SwiGlu(got, u, path);
            for (int i = 0; i < n; i++) TestData.Close(want[i], got[i], 2e-6 * Math.Abs(want[i]) + 1e-7, $"swiglu n={n} i={i}");
            var s = g.ToArray();
            Ops.Silu(s, path);
            for (int i = 0; i < n; i++) TestData.Close(Ops.Silu(g[i]), s[i], 2e-6 * Math.Abs(s[i]) + 1e-7, $"silu n={n} i={i}");
            if (n > 10)
            {
                Assert.True(float.IsNaN(s[3])); // -inf/(1+exp(inf)), as ggml_silu_f32 computes it
                Assert.Equal(float.PositiveInfinity, s[4]);
                Assert.Equal(0f, s[6], 1e-30f);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void RopeMatchesScalar(KernelPath path)
    {
        for (int half = 0; half <= 128; half++)
        {
            var invFreq = Enumerable.Range(0, half).Select(i => (float)Math.Pow(10000, -2.0 * i / (2 * half))).ToArray();
            var cos = new float[half];
            var sin = new float[half];
            Ops.RopeAngles(17, invFreq, 1f, cos, sin);
            foreach (bool neox in new[] { false, true })
            {
                var x = TestData.Normal(2 * half, half);
                var want = x.ToArray();
                Ops.RopeRotateScalar(want, cos, sin, neox);
                Ops.RopeRotate(x, cos, sin, neox, path);
                for (int i = 0; i < x.Length; i++) TestData.Close(want[i], x[i], 1e-6 * (1 + Math.Abs(want[i])), $"half={half} neox={neox} i={i}");
            }
        }
        // hand value: position 1, one pair, angle = 1 rad
        var v = new float[] { 1, 0 };
        Ops.Rope(v, 1, [1f], neox: false);
        Assert.Equal(MathF.Cos(1), v[0], 1e-6f);
        Assert.Equal(MathF.Sin(1), v[1], 1e-6f);
        var h = new float[] { 1, 2, 0, 0 }; // neox pairs (0,2), (1,3)
        Ops.Rope(h, 2, [0.5f, 0f], neox: true);
        Assert.Equal(MathF.Cos(1), h[0], 1e-6f);
        Assert.Equal(MathF.Sin(1), h[2], 1e-6f);
        Assert.Equal(2f, h[1], 1e-6f);
        Assert.Equal(0f, h[3], 1e-6f);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void AxpyMatchesScalar(KernelPath path)
    {
        for (int n = 0; n <= 257; n++)
        {
            var x = TestData.Normal(n, n);
            var y = TestData.Normal(n, n + 3);
            var want = y.ToArray();
            Ops.Axpy(0.37f, x, want, KernelPath.Scalar);
            Ops.Axpy(0.37f, x, y, path);
            for (int i = 0; i < n; i++) Assert.Equal(want[i], y[i]);
        }
    }
}
