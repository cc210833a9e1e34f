using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>The tiled prefill Gemm against one MatVec per token: odd token counts, odd row counts, every path.</summary>
public unsafe class GemmTests
{
    public static IEnumerable<object[]> Types() =>
        new[] { DType.Q8_0, DType.Q4_0, DType.Q5_0, DType.Q4_1, DType.Q5_1, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K,
                DType.F32, DType.F16, DType.BF16, DType.F8_E4M3 }.Select(t => new object[] { t });

    static readonly int[] TokenCounts = [.. Enumerable.Range(1, 17), 24, 64];

    sealed class Weight : IDisposable
    {
        readonly System.Runtime.InteropServices.GCHandle _h, _s;
        public readonly Linear Linear;

        public Weight(DType type, int outF, int inF, int seed, float[]? bias)
        {
            var w = TestData.Normal(outF * inF, seed, 0.5f);
            long rowBytes = type.ByteCount(inF);
            var bytes = new byte[rowBytes * outF];
            for (int r = 0; r < outF; r++)
                Quantization.QuantizeRow(type, w.AsSpan(r * inF, inF), bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
            int sr = (outF + 127) / 128, sc = (inF + 127) / 128;
            var scales = TestData.Uniform(sr * sc, seed + 1, 0.5f, 2f);
            _h = System.Runtime.InteropServices.GCHandle.Alloc(bytes, System.Runtime.InteropServices.GCHandleType.Pinned);
            _s = System.Runtime.InteropServices.GCHandle.Alloc(scales, System.Runtime.InteropServices.GCHandleType.Pinned);
            bool fp8 = type == DType.F8_E4M3;
            Linear = new Linear("w", type, outF, inF, (byte*)_h.AddrOfPinnedObject(), "test",
                fp8 ? (float*)_s.AddrOfPinnedObject() : null, fp8 ? 128 : 0, fp8 ? 128 : 0, bias);
        }

        public void Dispose() { _h.Free(); _s.Free(); }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void GemmGivesTheBitsOfOneMatVecPerToken(DType type)
    {
        int inF = type.BlockSize() == 256 ? 512 : 320, outF = 13; // 13 rows: three full tiles of 4 and one of 1
        var bias = TestData.Normal(outF, 9);
        using var w = new Weight(type, outF, inF, 100 + (int)type, bias);
        var x = TestData.Normal(64 * inF, 31, 2f);
        // a token of zeros and one with a single large value exercise zero scales and saturation-free extremes
        Array.Clear(x, 2 * inF, inF);
        x[4 * inF + 7] = 1000f;
        foreach (var mode in new[] { ActivationMode.LlamaCpp, ActivationMode.Float })
            foreach (var path in new[] { KernelPath.Scalar, KernelPath.V128, KernelPath.V256, KernelPath.V512 })
            {
                using var pool = new WorkerPool(2, path);
                var want = new float[64 * outF];
                for (int t = 0; t < 64; t++)
                    MatMul.MatVec(w.Linear, x.AsSpan(t * inF, inF), want.AsSpan(t * outF, outF), pool, mode);
                foreach (int n in TokenCounts)
                {
                    var y = new float[n * outF + 3];
                    y[^1] = 12345f;
                    MatMul.Gemm(w.Linear, x.AsSpan(0, n * inF), y, n, pool, mode);
                    for (int i = 0; i < n * outF; i++)
                        if (BitConverter.SingleToInt32Bits(want[i]) != BitConverter.SingleToInt32Bits(y[i]))
                            Assert.Fail($"{type} {mode} {path} n={n}: token {i / outF} row {i % outF}: Gemm {y[i]:R} != MatVec {want[i]:R}");
                    Assert.Equal(12345f, y[^1]);
                }
            }
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F8_E4M3)]
    public void FloatTypesWithRaggedLengthsGiveTheBitsOfMatVec(DType type)
    {
        // 237 columns: full 4-vector steps, single vectors and a scalar tail on every width; for FP8 the last
        // 128-column scale segment is partial (109), and 6 rows leave a partial row tile. 3301 columns: three
        // chunks of the tile's passes, the last partial; 21 rows: a second, partial group of 16 decoded rows.
        foreach (var (inF, outF) in new[] { (237, 6), (3301, 21) })
        foreach (var path in new[] { KernelPath.Scalar, KernelPath.V128, KernelPath.V256, KernelPath.V512 })
        {
            const int n = 9;
            using var w = new Weight(type, outF, inF, 40 + (int)type, null);
            var x = TestData.Normal(n * inF, 41);
            using var pool = new WorkerPool(2, path);
            var y = new float[n * outF];
            MatMul.Gemm(w.Linear, x, y, n, pool);
            for (int t = 0; t < n; t++)
            {
                var yt = new float[outF];
                MatMul.MatVec(w.Linear, x.AsSpan(t * inF, inF), yt, pool);
                Assert.Equal(yt, y.AsSpan(t * outF, outF).ToArray());
            }
        }
    }

    [Fact]
    public void ManyRowsAndThreadsGiveTheSameBits()
    {
        // enough row tiles for several chunks per thread
        const int inF = 1024, outF = 203, n = 11;
        using var w = new Weight(DType.Q8_0, outF, inF, 5, null);
        var x = TestData.Normal(n * inF, 6);
        float[]? first = null;
        foreach (var path in new[] { KernelPath.V256, KernelPath.V512 })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var pool = new WorkerPool(threads, path);
                var y = new float[n * outF];
                MatMul.Gemm(w.Linear, x, y, n, pool);
                first ??= y;
                Assert.Equal(first, y);
            }
        using var one = new WorkerPool(1, KernelPath.Scalar);
        var yt = new float[outF];
        MatMul.MatVec(w.Linear, x.AsSpan(10 * inF, inF), yt, one);
        Assert.Equal(yt, first!.AsSpan(10 * outF, outF).ToArray());
    }

    [Theory]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    public void SmallBatchKQuantPairsGiveTheScalarBits(DType type)
    {
        // small n takes the fused four-row dot two tokens at a time (Q4_K n <= 8, an odd n ending with one token;
        // Q6_K n = 2), larger n the tile; 21 rows leave a tail of one row; the scalar path's MatVec is the
        // reference for every vector path
        const int inF = 768, outF = 21;
        var bias = TestData.Normal(outF, 12);
        using var w = new Weight(type, outF, inF, 77 + (int)type, bias);
        var x = TestData.Normal(8 * inF, 78, 3f);
        using var scalar = new WorkerPool(1, KernelPath.Scalar);
        var want = new float[8 * outF];
        for (int t = 0; t < 8; t++)
            MatMul.MatVec(w.Linear, x.AsSpan(t * inF, inF), want.AsSpan(t * outF, outF), scalar);
        foreach (var path in new[] { KernelPath.V256, KernelPath.V512 })
            foreach (int threads in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(threads, path);
                for (int n = 2; n <= 8; n++)
                {
                    var y = new float[n * outF];
                    MatMul.Gemm(w.Linear, x.AsSpan(0, n * inF), y, n, pool);
                    for (int i = 0; i < n * outF; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(y[i]),
                            $"{type} {path} t{threads} n={n}: token {i / outF} row {i % outF}: {y[i]:R} != {want[i]:R}");
                }
            }
    }
}
