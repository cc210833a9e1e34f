using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

public unsafe class MatMulTests
{
    public static IEnumerable<object[]> WeightTypes() =>
        new[] { DType.F32, DType.F16, DType.BF16, DType.F8_E4M3, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1,
                DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K }.Select(t => new object[] { t });

    sealed class Weight : IDisposable
    {
        public readonly byte[] Bytes;
        public readonly float[] Scales;
        System.Runtime.InteropServices.GCHandle _h, _s;
        public readonly Linear Linear;

        public Weight(DType type, int outF, int inF, int seed, float[]? bias = null)
        {
            var w = TestData.Normal(outF * inF, seed, 0.5f);
            long rowBytes = type.ByteCount(inF);
            Bytes = new byte[rowBytes * outF];
            for (int r = 0; r < outF; r++)
                Quantization.QuantizeRow(type, w.AsSpan(r * inF, inF), Bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
            int sr = (outF + 127) / 128, sc = (inF + 127) / 128;
            Scales = TestData.Uniform(sr * sc, seed + 1, 0.5f, 2f);
            _h = System.Runtime.InteropServices.GCHandle.Alloc(Bytes, System.Runtime.InteropServices.GCHandleType.Pinned);
            _s = System.Runtime.InteropServices.GCHandle.Alloc(Scales, System.Runtime.InteropServices.GCHandleType.Pinned);
            bool fp8 = type == DType.F8_E4M3;
            Linear = new Linear("w", type, outF, inF, (byte*)_h.AddrOfPinnedObject(), "test",
                fp8 ? (float*)_s.AddrOfPinnedObject() : null, fp8 ? 128 : 0, fp8 ? 128 : 0, bias);
        }

        public void Dispose() { _h.Free(); _s.Free(); }
    }

    static double[] Reference(Linear w, float[] x, int n)
    {
        var y = new double[n * w.OutFeatures];
        var row = new float[w.InFeatures];
        for (int r = 0; r < w.OutFeatures; r++)
        {
            MatMul.DecodeRow(w, r, row);
            for (int t = 0; t < n; t++)
            {
                double s = w.Bias?[r] ?? 0;
                for (int i = 0; i < w.InFeatures; i++) s += (double)row[i] * x[t * w.InFeatures + i];
                y[t * w.OutFeatures + r] = s;
            }
        }
        return y;
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void MatVecAndGemmMatchTheDecodedReferenceOnEveryPath(DType type)
    {
        int inF = type.BlockSize() == 256 ? 512 : 320, outF = 37, n = 3;
        var bias = TestData.Normal(outF, 77);
        using var w = new Weight(type, outF, inF, (int)type, bias);
        var x = TestData.Normal(n * inF, 5);
        var want = Reference(w.Linear, x, n);
        double mag = x.Take(inF).Sum(Math.Abs) * 0.5;
        foreach (var mode in new[] { ActivationMode.Float, ActivationMode.LlamaCpp })
        {
            float[]? first = null;
            foreach (var path in new[] { KernelPath.Scalar, KernelPath.V128, KernelPath.V256, KernelPath.V512 })
                foreach (int threads in new[] { 1, 3 })
                {
                    using var pool = new WorkerPool(threads, path);
                    var y = new float[n * outF];
                    MatMul.Gemm(w.Linear, x, y, n, pool, mode);
                    bool int8 = mode == ActivationMode.LlamaCpp && type is not (DType.F32 or DType.F16 or DType.BF16 or DType.F8_E4M3);
                    double tol = int8 ? 0.02 * mag : 1e-5 * mag;
                    for (int i = 0; i < y.Length; i++) TestData.Close((float)want[i], y[i], tol, $"{type} {mode} {path} t{threads} i={i}");
                    // Gemm gives exactly the bits of one MatVec per token
                    for (int t = 0; t < n; t++)
                    {
                        var yt = new float[outF];
                        MatMul.MatVec(w.Linear, x.AsSpan(t * inF, inF), yt, pool, mode);
                        Assert.Equal(y.AsSpan(t * outF, outF).ToArray(), yt);
                    }
                    if (int8)
                    {
                        // the integer paths are exact: every path and thread count gives the same bits
                        first ??= y;
                        Assert.Equal(first, y);
                    }
                }
        }
    }

    [Fact]
    public void Fp8WithPartialEdgeScaleBlocks()
    {
        // 200 x 300: scale blocks [2, 3], the last row block has 72 rows and the last column block 44 columns
        using var w = new Weight(DType.F8_E4M3, 200, 300, 3);
        Assert.Equal(3, w.Linear.ScaleColumns);
        var x = TestData.Normal(300, 4);
        var want = Reference(w.Linear, x, 1);
        using var pool = new WorkerPool(2);
        var y = new float[200];
        MatMul.MatVec(w.Linear, x, y, pool);
        for (int r = 0; r < 200; r++) TestData.Close((float)want[r], y[r], 1e-4, $"row {r}");
        // a hand check of the scale lookup: row 150, column 290 uses scale [1, 2]
        var row = new float[300];
        MatMul.DecodeRow(w.Linear, 150, row);
        Assert.Equal(Quantization.F8E4M3Table[w.Bytes[150 * 300 + 290]] * w.Scales[1 * 3 + 2], row[290]);
    }

    [Fact]
    public void Q8_0IntegerDotFollowsLlamaCppLaneOrder()
    {
        // An independent restatement of ggml_vec_dot_q8_0_q8_0 (AVX2): 8 float lanes, each lane accumulating
        // fma(d_w·d_x, Σ of 4 consecutive int products), then hsum_float_8.
        const int inF = 32 * 40;
        using var w = new Weight(DType.Q8_0, 1, inF, 21);
        var x = TestData.Normal(inF, 22, 3f);
        var xq = new byte[DType.Q8_0.ByteCount(inF)];
        Quantization.QuantizeActivations(DType.Q8_0, x, xq);
        var lanes = new float[8];
        for (int b = 0; b < inF / 32; b++)
        {
            float d = (float)BitConverter.ToHalf(w.Bytes, 34 * b) * (float)BitConverter.ToHalf(xq, 34 * b);
            for (int k = 0; k < 8; k++)
            {
                int s = 0;
                for (int i = 4 * k; i < 4 * k + 4; i++) s += (sbyte)w.Bytes[34 * b + 2 + i] * (sbyte)xq[34 * b + 2 + i];
                lanes[k] = MathF.FusedMultiplyAdd(d, s, lanes[k]);
            }
        }
        float want = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
        using var pool = new WorkerPool(1);
        var y = new float[1];
        MatMul.MatVec(w.Linear, x, y, pool);
        Assert.Equal(want, y[0]);
    }

    [Theory]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    [InlineData(DType.Q5_K)]
    public void KQuantMatVecRowsFourAtATimeKeepTheOneRowBits(DType type)
    {
        // The single-token Q4_K/Q6_K kernel dots four rows per pass; each row must keep the bits of the one-row
        // dot, i.e. of the scalar twin (Scalar path) and of one MatVec per row.
        const int inF = 256 * 5, outF = 11; // two groups of four rows and a tail of three
        var bias = TestData.Normal(outF, 41);
        using var w = new Weight(type, outF, inF, 43, bias);
        var x = TestData.Normal(inF, 44, 2f);
        var want = new float[outF];
        using (var scalar = new WorkerPool(1, KernelPath.Scalar))
            MatMul.MatVec(w.Linear, x, want, scalar);
        foreach (var path in new[] { KernelPath.V256, KernelPath.V512 })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var pool = new WorkerPool(threads, path);
                var y = new float[outF];
                MatMul.MatVec(w.Linear, x, y, pool);
                Assert.Equal(want, y);
            }
        // and row by row (a one-row weight runs the one-row dot)
        using var one = new WorkerPool(1, KernelPath.V256);
        long rowBytes = type.ByteCount(inF);
        for (int r = 0; r < outF; r++)
        {
            fixed (byte* p = &w.Bytes[r * rowBytes])
            {
                var lr = new Linear("w", type, 1, inF, p, "test", null, 0, 0, new[] { bias[r] });
                var y1 = new float[1];
                MatMul.MatVec(lr, x, y1, one);
                Assert.Equal(want[r], y1[0]);
            }
        }
    }

    [Fact]
    public void Q8_0MatVecRowsFourAtATimeKeepEachRowsLlamaCppBits()
    {
        // The single-token kernel dots four rows per pass; each row must still be ggml_vec_dot_q8_0_q8_0's chain.
        const int inF = 32 * 27, outF = 11; // three groups of eight blocks and a tail of three
        using var w = new Weight(DType.Q8_0, outF, inF, 31);
        var x = TestData.Normal(inF, 32, 2f);
        var xq = new byte[DType.Q8_0.ByteCount(inF)];
        Quantization.QuantizeActivations(DType.Q8_0, x, xq);
        var want = new float[outF];
        for (int r = 0; r < outF; r++)
        {
            var lanes = new float[8];
            int o = r * 34 * (inF / 32);
            for (int b = 0; b < inF / 32; b++)
            {
                float d = (float)BitConverter.ToHalf(w.Bytes, o + 34 * b) * (float)BitConverter.ToHalf(xq, 34 * b);
                for (int k = 0; k < 8; k++)
                {
                    int s = 0;
                    for (int i = 4 * k; i < 4 * k + 4; i++) s += (sbyte)w.Bytes[o + 34 * b + 2 + i] * (sbyte)xq[34 * b + 2 + i];
                    lanes[k] = MathF.FusedMultiplyAdd(d, s, lanes[k]);
                }
            }
            want[r] = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
        }
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var pool = new WorkerPool(threads);
            var y = new float[outF];
            MatMul.MatVec(w.Linear, x, y, pool);
            Assert.Equal(want, y);
        }
    }

    [Fact]
    public void ShapeErrorsAreReported()
    {
        using var w = new Weight(DType.F32, 4, 8, 1);
        using var pool = new WorkerPool(1);
        Assert.Throws<ArgumentException>(() => MatMul.MatVec(w.Linear, new float[7], new float[4], pool));
        Assert.Throws<ArgumentException>(() => MatMul.Gemm(w.Linear, new float[16], new float[7], 2, pool));
    }

    [Fact]
    public void WorkerPoolCoversEveryIndexOnceAndPropagatesErrors()
    {
        using var pool = new WorkerPool(3);
        foreach (int count in new[] { 0, 1, 2, 5, 12, 13, 1000 })
        {
            var hits = new int[count];
            pool.For(count, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
        // nested calls run inline instead of deadlocking
        int total = 0;
        pool.For(4, (s, e) => pool.For(10, (a, b) => Interlocked.Add(ref total, b - a)));
        Assert.Equal(40, total);
        var ex = Assert.Throws<AggregateException>(() => pool.For(100, (s, e) => { if (s <= 50 && 50 < e) throw new InvalidOperationException("boom"); }));
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        // still usable afterwards
        int sum = 0;
        pool.For(10, (s, e) => Interlocked.Add(ref sum, e - s));
        Assert.Equal(10, sum);
    }

    [Fact]
    public void WorkerPoolRunsManyShortJobsBackToBack()
    {
        // Jobs far shorter than a wake-up: a worker that wakes late must find each job's chunks claimed (or the
        // next job's), never run a chunk of one job with the fields of another.
        foreach (int threads in new[] { 2, 3 })
        {
            using var pool = new WorkerPool(threads);
            for (int job = 0; job < 20_000; job++)
            {
                int count = 1 + job % 13, sum = 0;
                pool.For(count, (s, e) => Interlocked.Add(ref sum, (e - s) * (job + 1)));
                Assert.Equal(count * (job + 1), sum);
            }
        }
    }
}
