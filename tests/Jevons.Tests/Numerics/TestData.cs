using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;

namespace Jevons.Tests.Numerics;

/// <summary>Seeded inputs and the kernel paths every property test runs over.</summary>
internal static class TestData
{
    /// <summary>Every vector path (emulated where the CPU lacks it, which still checks the arithmetic).</summary>
    public static readonly KernelPath[] VectorPaths = [KernelPath.V128, KernelPath.V256, KernelPath.V512];

    public static IEnumerable<object[]> VectorPathData() => VectorPaths.Select(p => new object[] { p });

    public static float[] Normal(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            a[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return a;
    }

    public static float[] Uniform(int n, int seed, float lo = -1, float hi = 1)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return a;
    }

    public static byte[] Bytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>|a − b| ≤ tol, NaN matching NaN, infinities equal.</summary>
    public static void Close(float expected, float actual, double tol, string what)
    {
        if (float.IsNaN(expected)) { Xunit.Assert.True(float.IsNaN(actual), $"{what}: expected NaN, got {actual}"); return; }
        if (float.IsInfinity(expected)) { Xunit.Assert.True(expected == actual, $"{what}: expected {expected}, got {actual}"); return; }
        Xunit.Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: expected {expected}, got {actual} (tol {tol})");
    }
}
