using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>The F16 one-token dot (sign-extend, shift, mask) against the plain half → float dot it replaces.</summary>
public unsafe class HalfDotTests
{
    public static IEnumerable<object[]> Paths() => TestData.VectorPathData();

    static ushort[] Halves(int n, int seed, float scale) =>
        TestData.Normal(n, seed, scale).Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray();

    [Theory]
    [MemberData(nameof(Paths))]
    public void HasTheBitsOfThePlainDot(KernelPath path)
    {
        // weight magnitudes from half subnormals (1e-6) to near the half maximum; activations up to 3e4 stay unscaled (e = 0)
        foreach (float wmag in new[] { 1f, 1e-6f, 1e4f })
            foreach (float xmag in new[] { 1f, 1e-30f, 3e3f })
                for (int n = 0; n <= 257; n++)
                {
                    var w = Halves(n, 17 * n + 1, wmag);
                    var x = TestData.Normal(n + 1, n + 5, xmag);
                    fixed (ushort* pw = w)
                    fixed (float* px = x)
                    fixed (float* xs = new float[n + 1])
                    {
                        float post = HalfDot.Prepare(px, xs, n);
                        float plain = FloatDot.Dot<F16Elements>((byte*)pw, px, n, path);
                        float fast = HalfDot.Dot((byte*)pw, xs, px, n, post, path);
                        Assert.True(BitConverter.SingleToInt32Bits(plain) == BitConverter.SingleToInt32Bits(fast),
                            $"{path} w~{wmag} x~{xmag} n={n}: {plain} vs {fast}");
                    }
                }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void LargeActivationsAreScaledBackExactly(KernelPath path)
    {
        foreach (float xmag in new[] { 1e5f, 1e20f, 1e36f })
            foreach (int n in new[] { 1, 16, 64, 65, 200, 257 })
            {
                var w = Halves(n, n, 1);
                var x = TestData.Normal(n, n + 9, xmag);
                x[n / 2] = -xmag;
                fixed (ushort* pw = w)
                fixed (float* px = x)
                fixed (float* xs = new float[Math.Max(n, 1)])
                {
                    float post = HalfDot.Prepare(px, xs, n);
                    Assert.True(post > 1, $"x~{xmag}: e = 0");
                    for (int i = 0; i < n; i++) Assert.True(float.IsFinite(xs[i]), $"x'[{i}] = {xs[i]}");
                    float plain = FloatDot.Dot<F16Elements>((byte*)pw, px, n, path);
                    float fast = HalfDot.Dot((byte*)pw, xs, px, n, post, path);
                    Assert.Equal(plain, fast);
                }
            }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void InfAndNaNWeightsGiveThePlainResult(KernelPath path)
    {
        foreach (ushort special in new ushort[] { 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01 })
            foreach (int n in new[] { 1, 15, 16, 17, 63, 64, 65, 130, 257 })
                foreach (int at in new[] { 0, n / 2, n - 1 })
                {
                    var w = Halves(n, n + at, 1);
                    w[at] = special;
                    var x = TestData.Normal(n, n, 1);
                    fixed (ushort* pw = w)
                    fixed (float* px = x)
                    fixed (float* xs = new float[Math.Max(n, 1)])
                    {
                        float post = HalfDot.Prepare(px, xs, n);
                        float plain = FloatDot.Dot<F16Elements>((byte*)pw, px, n, path);
                        float fast = HalfDot.Dot((byte*)pw, xs, px, n, post, path);
                        Assert.True(float.IsNaN(plain) ? float.IsNaN(fast) : plain == fast, $"{special:X4} at {at} of {n}: {plain} vs {fast}");
                        Assert.False(float.IsFinite(fast), $"{special:X4} at {at} of {n}: {fast}");
                    }
                }
    }
}
