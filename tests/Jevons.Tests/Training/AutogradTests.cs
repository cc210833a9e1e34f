using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Jevons.Training;
using Jevons.Training.Autograd;
using Xunit;

namespace Jevons.Tests.Training;

public class AutogradTests
{
    const double Tolerance = 2e-3;
    static readonly TrainRandom Rng = new(1234);

    static Tensor R(params int[] shape) => GradCheck.Random(Rng, shape);

    [Fact]
    public void MatMulGradients()
    {
        Tensor x = R(5, 7), w = R(6, 7);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.MatMul(x, w), [x, w]), 0, Tolerance);
    }

    [Fact]
    public void MatMulGradientsThreaded()
    {
        Tensor x = R(37, 45), w = R(29, 45);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.MatMul(x, w), [x, w], threads: 2), 0, Tolerance);
    }

    [Fact]
    public void EmbeddingGradients()
    {
        var table = R(6, 4);
        int[] ids = [1, 3, 1, 5, 0];
        Assert.InRange(GradCheck.MaxRelativeError(t => t.Embedding(table, ids), [table]), 0, Tolerance);
    }

    [Fact]
    public void ElementwiseGradients()
    {
        Tensor a = R(3, 5), b = R(3, 5);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.Add(t.Mul(a, b), t.Scale(a, -0.7f)), [a, b]), 0, Tolerance);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.Concat(t.Columns(a, 1, 3), b), [a, b]), 0, Tolerance);
    }

    [Fact]
    public void BiasAndColumnGatherGradients()
    {
        Tensor x = R(4, 6), bias = R(6);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.AddBias(x, bias), [x, bias]), 0, Tolerance);
        // Repeated and reordered columns: their gradients sum into the source column.
        var weights = R(4, 7);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.Mul(t.GatherColumns(x, [5, 0, 0, 2, 5, 5, 1]), weights), [x, weights]), 0, Tolerance);
        using var pool = new WorkerPool(1);
        var y = new Tape(pool).GatherColumns(x, [3, 1]);
        Assert.Equal(x.Data[1 * 6 + 3], y.Data[1 * 2 + 0]);
        Assert.Equal(x.Data[2 * 6 + 1], y.Data[2 * 2 + 1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Tape(pool).GatherColumns(x, [6]));
        Assert.Throws<ArgumentException>(() => new Tape(pool).AddBias(x, R(5)));
    }

    [Fact]
    public void RmsNormGradients()
    {
        Tensor x = R(4, 9), w = R(9);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.RmsNorm(x, w, 1e-6f), [x, w]), 0, Tolerance);
    }

    [Fact]
    public void RopeGradients()
    {
        var x = R(6, 2 * 10); // 2 sequences of 3, 2 heads of [nope 4 | rope 6]
        float[] inv = [1f, 0.3f, 0.05f];
        Assert.InRange(GradCheck.MaxRelativeError(t => t.Rope(x, 3, 2, 10, 4, inv), [x]), 0, Tolerance);
    }

    [Fact]
    public void RopeMatchesTheEngine()
    {
        var x = R(4, 8);
        float[] inv = [1f, 0.1f, 0.01f, 0.001f];
        using var pool = new WorkerPool(1);
        var y = new Tape(pool).Rope(x, 4, 1, 8, 0, inv);
        for (int r = 0; r < 4; r++)
        {
            var e = x.Data.AsSpan(r * 8, 8).ToArray();
            Ops.Rope(e, r, inv, neox: false);
            for (int i = 0; i < 8; i++) Assert.Equal(e[i], y.Data[r * 8 + i], 6);
        }
    }

    [Fact]
    public void SplitHalfRopeGradientsAndTheEngine()
    {
        var x = R(6, 2 * 8); // 2 sequences of 3, 2 heads of 8, all roped (Qwen2)
        float[] inv = [1f, 0.3f, 0.05f, 0.01f];
        Assert.InRange(GradCheck.MaxRelativeError(t => t.Rope(x, 3, 2, 8, 0, inv, neox: true), [x]), 0, Tolerance);
        using var pool = new WorkerPool(1);
        var y = new Tape(pool).Rope(x, 3, 2, 8, 0, inv, neox: true);
        for (int r = 0; r < 6; r++)
            for (int h = 0; h < 2; h++)
            {
                var e = x.Data.AsSpan(r * 16 + h * 8, 8).ToArray();
                Ops.Rope(e, r % 3, inv, neox: true);
                for (int i = 0; i < 8; i++) Assert.Equal(e[i], y.Data[r * 16 + h * 8 + i], 6);
            }
    }

    [Fact]
    public void AttentionWithoutASharedRopePartGradients()
    {
        // Grouped-query attention's use of the fused op: keys all per head (nope = head size), no shared kpe.
        int batch = 2, seq = 4, heads = 2, d = 3;
        Tensor q = R(batch * seq, heads * d), kv = R(batch * seq, heads * 2 * d), none = new([batch * seq, 0]);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.MlaAttention(q, kv, none, batch, seq, heads, d, 0, d, 0.5f), [q, kv], threads: 2), 0, Tolerance);
    }

    [Fact]
    public void MlaAttentionGradients()
    {
        int batch = 2, seq = 4, heads = 2, nope = 3, rope = 2, v = 3;
        Tensor q = R(batch * seq, heads * (nope + rope)), kv = R(batch * seq, heads * (nope + v)), kpe = R(batch * seq, rope);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.MlaAttention(q, kv, kpe, batch, seq, heads, nope, rope, v, 0.5f), [q, kv, kpe], threads: 2), 0, Tolerance);
    }

    [Fact]
    public void MlaAttentionGradientsAcrossTiles()
    {
        // 37 positions: several 6-row tiles and two 32-column panels, so every causal skip of the products is crossed.
        int batch = 2, seq = 37, heads = 2, nope = 3, rope = 2, v = 3;
        Tensor q = R(batch * seq, heads * (nope + rope)), kv = R(batch * seq, heads * (nope + v)), kpe = R(batch * seq, rope);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.MlaAttention(q, kv, kpe, batch, seq, heads, nope, rope, v, 0.5f), [q, kv, kpe], threads: 2), 0, Tolerance);
    }

    [Fact]
    public void MlaAttentionIsCausal()
    {
        int seq = 5;
        Tensor q = R(seq, 4), kv = R(seq, 4), kpe = R(seq, 2);
        using var pool = new WorkerPool(1);
        var before = new Tape(pool).MlaAttention(q, kv, kpe, 1, seq, 1, 2, 2, 2, 0.7f).Data.ToArray();
        kv.Data[^1] += 5; kpe.Data[^1] -= 3; // the last position's key and value
        var after = new Tape(pool).MlaAttention(q, kv, kpe, 1, seq, 1, 2, 2, 2, 0.7f).Data;
        Assert.Equal(before.AsSpan(0, (seq - 1) * 2).ToArray(), after.AsSpan(0, (seq - 1) * 2).ToArray());
        Assert.NotEqual(before[^1], after[^1]);
    }

    [Fact]
    public void SwiGluGradients()
    {
        Tensor g = R(3, 6), u = R(3, 6);
        Assert.InRange(GradCheck.MaxRelativeError(t => t.SwiGlu(g, u), [g, u]), 0, Tolerance);
    }

    [Theory]
    [InlineData(true, 1.0f)]
    [InlineData(false, 2.5f)]
    public void RouteGatherCombineGradients(bool normalize, float scaling)
    {
        int n = 5, d = 3, experts = 4, k = 2;
        Tensor logits = R(n, experts), x = R(n, d);
        float[] bias = [0.3f, -0.2f, 0.1f, 0f];
        Tensor F(Tape t)
        {
            var routing = t.Route(logits, bias, k, normalize, scaling);
            var (tokens, slots) = routing.ByExpert();
            var outs = new Tensor?[experts];
            for (int e = 0; e < experts; e++)
                if (tokens[e].Length > 0) outs[e] = t.Scale(t.Gather(x, tokens[e]), e + 1f);
            return t.Combine(n, d, outs, tokens, slots, routing.Weights);
        }
        Assert.InRange(GradCheck.MaxRelativeError(F, [logits, x], eps: 1e-3f), 0, Tolerance);
    }

    [Fact]
    public void RouteSelectsOnBiasedScoresAndWeighsWithUnbiased()
    {
        var logits = new Tensor([1, 3], [2f, 0f, -1f], requiresGrad: false);
        using var pool = new WorkerPool(1);
        // Bias lifts expert 2 (lowest score) over both others; the weights still come from the unbiased sigmoid scores.
        var r = new Tape(pool).Route(logits, [0f, 0f, 1f], 2, normalize: true, scaling: 1f);
        Assert.Equal([2, 0], r.Ids);
        float s0 = 1 / (1 + MathF.Exp(-2f)), s2 = 1 / (1 + MathF.Exp(1f));
        Assert.Equal(s2 / (s0 + s2), r.Weights.Data[0], 5);
        Assert.Equal(s0 / (s0 + s2), r.Weights.Data[1], 5);
    }

    [Fact]
    public void MaskedCrossEntropyGradients()
    {
        var logits = R(4, 5);
        int[] targets = [1, 4, 0, 2];
        float[] mask = [1, 0, 1, 1];
        Assert.InRange(GradCheck.MaxRelativeError(t => t.CrossEntropy(logits, targets, mask, out _), [logits]), 0, Tolerance);
    }

    [Fact]
    public void MaskedCrossEntropyIgnoresMaskedRows()
    {
        var logits = R(3, 4);
        using var pool = new WorkerPool(1);
        var tape = new Tape(pool);
        var a = tape.CrossEntropy(logits, [1, 2, 3], [1, 0, 1], out var stats).Data[0];
        logits.Data[4] += 10; // row 1, masked
        var b = tape.CrossEntropy(logits, [1, 2, 3], [1, 0, 1], out _).Data[0];
        Assert.Equal(a, b);
        Assert.Equal(2, stats.Tokens);
        double expected = 0;
        foreach (int r in new[] { 0, 2 })
        {
            var row = logits.Data.AsSpan(r * 4, 4).ToArray();
            double lse = Math.Log(row.Sum(v => Math.Exp(v)));
            expected += lse - row[r == 0 ? 1 : 3];
        }
        Assert.Equal(expected / 2, a, 5);
    }

    [Theory]
    [InlineData(KernelPath.Scalar)]
    [InlineData(KernelPath.V128)]
    [InlineData(KernelPath.V256)]
    [InlineData(KernelPath.V512)]
    public void MatrixProductMatchesDoubleReference(KernelPath path)
    {
        if (!KernelDispatch.IsAccelerated(path)) return;
        using var pool = new WorkerPool(2, path);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (3, 5, 7), (17, 9, 33), (5, 32, 3), (64, 70, 257), (9, 96, 40) })
        {
            Tensor a = R(m, k), b = R(k, n);
            var c = new float[m * n];
            Array.Fill(c, 1f);
            MatrixProduct.Nn(a.Data, b.Data, c, m, n, k, accumulate: true, pool);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 1;
                    for (int p = 0; p < k; p++) s += (double)a.Data[i * k + p] * b.Data[p * n + j];
                    Assert.True(Math.Abs(c[i * n + j] - s) <= 1e-4 * (1 + Math.Abs(s)), $"{path} [{m},{n},{k}] ({i},{j}): {c[i * n + j]} vs {s}");
                }
        }
    }

    [Theory]
    [InlineData(KernelPath.Scalar)]
    [InlineData(KernelPath.V128)]
    [InlineData(KernelPath.V256)]
    [InlineData(KernelPath.V512)]
    public unsafe void MatrixProductTransposedStridedAndCausal(KernelPath path)
    {
        if (!KernelDispatch.IsAccelerated(path)) return;
        using var pool = new WorkerPool(2, path);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 5, 3), (40, 37, 40), (13, 70, 65), (64, 33, 64) })
            foreach (bool transA in new[] { false, true })
                foreach (bool transB in new[] { false, true })
                    foreach (var causal in Enum.GetValues<MatrixProduct.Causal>())
                    {
                        // Strided views: 3 spare columns in every row of A, B and C.
                        int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 3, ldc = n + 3;
                        var a = R(transA ? k : m, lda).Data;
                        var b = R(transB ? n : k, ldb).Data;
                        float A(int i, int p) => causal == MatrixProduct.Causal.LowerA && p > i || causal == MatrixProduct.Causal.UpperA && p < i ? 0
                            : transA ? a[p * lda + i] : a[i * lda + p];
                        // The causal operand's skipped side must hold zeros.
                        for (int i = 0; i < m; i++)
                            for (int p = 0; p < k; p++)
                                if (A(i, p) == 0) { if (transA) a[p * lda + i] = 0; else a[i * lda + p] = 0; }
                        float B(int p, int j) => transB ? b[j * ldb + p] : b[p * ldb + j];
                        var c = new float[m * ldc];
                        Array.Fill(c, 0.5f);
                        fixed (float* pa = a, pb = b, pc = c)
                            MatrixProduct.Multiply(pa, lda, transA, pb, ldb, transB, pc, ldc, m, n, k, accumulate: true, pool, causal);
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n + 3; j++)
                            {
                                if (j >= n) { Assert.Equal(0.5f, c[i * ldc + j]); continue; } // outside C: untouched
                                if (causal == MatrixProduct.Causal.LowerC && j > i) continue;  // not wanted: unspecified
                                double s = 0.5;
                                for (int p = 0; p < k; p++) s += (double)A(i, p) * B(p, j);
                                Assert.True(Math.Abs(c[i * ldc + j] - s) <= 1e-4 * (1 + Math.Abs(s)),
                                    $"{path} [{m},{n},{k}] transA {transA} transB {transB} {causal} ({i},{j}): {c[i * ldc + j]} vs {s}");
                            }
                    }
    }

    [Fact]
    public void MatrixProductIsIndependentOfThreads()
    {
        Tensor a = R(33, 130), b = R(130, 71);
        var c1 = new float[33 * 71];
        var c2 = new float[33 * 71];
        using (var one = new WorkerPool(1)) MatrixProduct.Nn(a.Data, b.Data, c1, 33, 71, 130, false, one);
        using (var two = new WorkerPool(2)) MatrixProduct.Nn(a.Data, b.Data, c2, 33, 71, 130, false, two);
        Assert.Equal(c1, c2);
    }
}
