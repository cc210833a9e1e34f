using Jevons.Numerics.Kernels;

namespace Jevons.Training.Autograd;

/// <summary>
/// The trainer's float32 matrix product C[m, n] (+)= A[m, k] · B[k, n], the classic register-blocked
/// outer-product kernel: a tile of 4 rows × 2 vectors of C lives in 8 accumulators; each step over k loads
/// two vectors of B's row p and broadcasts A[i, p], 8 FMAs per 2 loads + 4 broadcasts, and no horizontal
/// sums (a dot-product tile with k = 256 spent as much on its 16 reductions as on its FMAs). Every product of
/// training is put in this form with at most one cheap transpose. Tiles are spread over the pool; each C
/// element is summed by one thread in k order, so the result does not depend on the thread count.
/// </summary>
public static unsafe class MatrixProduct
{
    const int Rows = 4;

    /// <summary>C = A·B (or C += A·B when <paramref name="accumulate"/>).</summary>
    public static void Nn(float[] a, float[] b, float[] c, int m, int n, int k, bool accumulate, WorkerPool pool)
    {
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
            throw new ArgumentException($"Nn: buffers too small for [{m}, {k}]·[{k}, {n}]");
        if (m == 0 || n == 0) return;
        var path = pool.Path;
        int width = 2 * path switch { KernelPath.V512 => 16, KernelPath.V256 => 8, KernelPath.V128 => 4, _ => 1 };
        int mTiles = (m + Rows - 1) / Rows, nTiles = (n + width - 1) / width;
        // A pool round trip costs more than a small product.
        if ((long)m * n * k < 1 << 16 || pool.Threads == 1)
        {
            Tiles(a, b, c, m, n, k, accumulate, path, width, mTiles, 0, mTiles * nTiles);
            return;
        }
        pool.For(mTiles * nTiles, (t0, t1) => Tiles(a, b, c, m, n, k, accumulate, path, width, mTiles, t0, t1));
    }

    /// <summary>Transposes src [rows, cols] into dst [cols, rows] in 32 × 32 blocks.</summary>
    public static void Transpose(ReadOnlySpan<float> src, int rows, int cols, Span<float> dst)
    {
        const int B = 32;
        for (int r0 = 0; r0 < rows; r0 += B)
            for (int c0 = 0; c0 < cols; c0 += B)
            {
                int r1 = Math.Min(rows, r0 + B), c1 = Math.Min(cols, c0 + B);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++)
                        dst[c * rows + r] = src[r * cols + c];
            }
    }

    /// <summary>Tiles t0..t1, column panel outer so consecutive tiles share B's panel in cache.</summary>
    static void Tiles(float[] a, float[] b, float[] c, int m, int n, int k, bool accumulate, KernelPath path, int width, int mTiles, int t0, int t1)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            for (int t = t0; t < t1; t++)
            {
                int i0 = t % mTiles * Rows, j0 = t / mTiles * width;
                if (j0 + width > n || path == KernelPath.Scalar) { Edge(pa, pb, pc, m, n, k, i0, j0, Math.Min(width, n - j0), accumulate); continue; }
                switch (path)
                {
                    case KernelPath.V512: Tile<Vec512>(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                    case KernelPath.V256: Tile<Vec256>(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                    default: Tile<Vec128>(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                }
            }
        }
    }

    static void Tile<V>(float* a, float* b, float* c, int m, int n, int k, int i0, int j0, bool accumulate) where V : unmanaged, IVec<V>
    {
        // Rows past the edge repeat the last row (their results are not stored).
        float* a0 = a + (long)i0 * k, a1 = a + (long)Math.Min(i0 + 1, m - 1) * k;
        float* a2 = a + (long)Math.Min(i0 + 2, m - 1) * k, a3 = a + (long)Math.Min(i0 + 3, m - 1) * k;
        V c00 = V.Zero, c01 = V.Zero, c10 = V.Zero, c11 = V.Zero, c20 = V.Zero, c21 = V.Zero, c30 = V.Zero, c31 = V.Zero;
        int w = V.Count;
        float* bp = b + j0;
        for (int p = 0; p < k; p++, bp += n)
        {
            V x0 = V.Load(bp), x1 = V.Load(bp + w);
            V y = V.Splat(a0[p]);
            c00 = V.Fma(y, x0, c00); c01 = V.Fma(y, x1, c01);
            y = V.Splat(a1[p]);
            c10 = V.Fma(y, x0, c10); c11 = V.Fma(y, x1, c11);
            y = V.Splat(a2[p]);
            c20 = V.Fma(y, x0, c20); c21 = V.Fma(y, x1, c21);
            y = V.Splat(a3[p]);
            c30 = V.Fma(y, x0, c30); c31 = V.Fma(y, x1, c31);
        }
        int rows = Math.Min(Rows, m - i0);
        StoreRow(c + (long)i0 * n + j0, c00, c01, w, accumulate);
        if (rows > 1) StoreRow(c + (long)(i0 + 1) * n + j0, c10, c11, w, accumulate);
        if (rows > 2) StoreRow(c + (long)(i0 + 2) * n + j0, c20, c21, w, accumulate);
        if (rows > 3) StoreRow(c + (long)(i0 + 3) * n + j0, c30, c31, w, accumulate);
    }

    static void StoreRow<V>(float* dst, V lo, V hi, int w, bool accumulate) where V : unmanaged, IVec<V>
    {
        if (accumulate)
        {
            lo = V.Add(lo, V.Load(dst));
            hi = V.Add(hi, V.Load(dst + w));
        }
        V.Store(lo, dst);
        V.Store(hi, dst + w);
    }

    /// <summary>The scalar form (the last, partial column panel; and the Scalar path): same k order per element.</summary>
    static void Edge(float* a, float* b, float* c, int m, int n, int k, int i0, int j0, int cols, bool accumulate)
    {
        int rows = Math.Min(Rows, m - i0);
        for (int i = i0; i < i0 + rows; i++)
            for (int j = j0; j < j0 + cols; j++)
            {
                float s = 0;
                float* ai = a + (long)i * k;
                for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(ai[p], b[(long)p * n + j], s);
                ref float dst = ref c[(long)i * n + j];
                dst = accumulate ? dst + s : s;
            }
    }
}
