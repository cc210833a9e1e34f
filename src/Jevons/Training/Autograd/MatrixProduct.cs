using Jevons.Numerics.Kernels;

namespace Jevons.Training.Autograd;

/// <summary>
/// The trainer's float32 matrix product C[m, n] (+)= A[m, k] · B[n, k]ᵀ: both operands walk their rows
/// contiguously (every product of training, forward and backward, is put in this form by transposing the
/// small side). Tiles of 4 rows of A × 4 rows of B keep 16 vector accumulators in registers, so each
/// loaded vector feeds 4 FMAs. Tiles are spread over the pool; each C element is summed by one thread in
/// one fixed order, so the result does not depend on the thread count.
/// </summary>
public static unsafe class MatrixProduct
{
    const int Tile = 4;

    /// <summary>C = A·Bᵀ (or C += A·Bᵀ when <paramref name="accumulate"/>).</summary>
    public static void Nt(float[] a, float[] b, float[] c, int m, int n, int k, bool accumulate, WorkerPool pool)
    {
        if (a.Length < (long)m * k || b.Length < (long)n * k || c.Length < (long)m * n)
            throw new ArgumentException($"Nt: buffers too small for [{m}, {k}]·[{n}, {k}]ᵀ");
        if (m == 0 || n == 0) return;
        int mTiles = (m + Tile - 1) / Tile, nTiles = (n + Tile - 1) / Tile;
        var path = pool.Path;
        // Few, large jobs for small products: a pool round trip costs more than ~64k FMAs.
        if ((long)m * n * k < 1 << 16 || pool.Threads == 1)
        {
            Tiles(a, b, c, m, n, k, accumulate, path, nTiles, 0, mTiles * nTiles);
            return;
        }
        pool.For(mTiles * nTiles, (t0, t1) => Tiles(a, b, c, m, n, k, accumulate, path, nTiles, t0, t1));
    }

    /// <summary>Transposes src [rows, cols] into dst [cols, rows].</summary>
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

    static void Tiles(float[] a, float[] b, float[] c, int m, int n, int k, bool accumulate, KernelPath path, int nTiles, int t0, int t1)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            // Row order inside a chunk: B tile outer would reload A; with m tiles outer the 4 A rows stay in L1.
            for (int t = t0; t < t1; t++)
            {
                int i0 = t / nTiles * Tile, j0 = t % nTiles * Tile;
                switch (path)
                {
                    case KernelPath.V512: Block<Vec512>(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                    case KernelPath.V256: Block<Vec256>(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                    case KernelPath.V128: Block<Vec128>(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                    default: BlockScalar(pa, pb, pc, m, n, k, i0, j0, accumulate); break;
                }
            }
        }
    }

    static void Block<V>(float* a, float* b, float* c, int m, int n, int k, int i0, int j0, bool accumulate) where V : unmanaged, IVec<V>
    {
        // Rows past the edge repeat the last row (their results are not stored).
        float* a0 = a + (long)Math.Min(i0, m - 1) * k, a1 = a + (long)Math.Min(i0 + 1, m - 1) * k;
        float* a2 = a + (long)Math.Min(i0 + 2, m - 1) * k, a3 = a + (long)Math.Min(i0 + 3, m - 1) * k;
        float* b0 = b + (long)Math.Min(j0, n - 1) * k, b1 = b + (long)Math.Min(j0 + 1, n - 1) * k;
        float* b2 = b + (long)Math.Min(j0 + 2, n - 1) * k, b3 = b + (long)Math.Min(j0 + 3, n - 1) * k;
        V c00 = V.Zero, c01 = V.Zero, c02 = V.Zero, c03 = V.Zero, c10 = V.Zero, c11 = V.Zero, c12 = V.Zero, c13 = V.Zero;
        V c20 = V.Zero, c21 = V.Zero, c22 = V.Zero, c23 = V.Zero, c30 = V.Zero, c31 = V.Zero, c32 = V.Zero, c33 = V.Zero;
        int w = V.Count, p = 0;
        for (; p + w <= k; p += w)
        {
            V x0 = V.Load(b0 + p), x1 = V.Load(b1 + p), x2 = V.Load(b2 + p), x3 = V.Load(b3 + p);
            V y = V.Load(a0 + p);
            c00 = V.Fma(y, x0, c00); c01 = V.Fma(y, x1, c01); c02 = V.Fma(y, x2, c02); c03 = V.Fma(y, x3, c03);
            y = V.Load(a1 + p);
            c10 = V.Fma(y, x0, c10); c11 = V.Fma(y, x1, c11); c12 = V.Fma(y, x2, c12); c13 = V.Fma(y, x3, c13);
            y = V.Load(a2 + p);
            c20 = V.Fma(y, x0, c20); c21 = V.Fma(y, x1, c21); c22 = V.Fma(y, x2, c22); c23 = V.Fma(y, x3, c23);
            y = V.Load(a3 + p);
            c30 = V.Fma(y, x0, c30); c31 = V.Fma(y, x1, c31); c32 = V.Fma(y, x2, c32); c33 = V.Fma(y, x3, c33);
        }
        Span<float> s = stackalloc float[16];
        s[0] = V.Sum(c00); s[1] = V.Sum(c01); s[2] = V.Sum(c02); s[3] = V.Sum(c03);
        s[4] = V.Sum(c10); s[5] = V.Sum(c11); s[6] = V.Sum(c12); s[7] = V.Sum(c13);
        s[8] = V.Sum(c20); s[9] = V.Sum(c21); s[10] = V.Sum(c22); s[11] = V.Sum(c23);
        s[12] = V.Sum(c30); s[13] = V.Sum(c31); s[14] = V.Sum(c32); s[15] = V.Sum(c33);
        Store(a0, a1, a2, a3, b0, b1, b2, b3, p, k, s, c, m, n, i0, j0, accumulate);
    }

    static void BlockScalar(float* a, float* b, float* c, int m, int n, int k, int i0, int j0, bool accumulate)
    {
        float* a0 = a + (long)Math.Min(i0, m - 1) * k, a1 = a + (long)Math.Min(i0 + 1, m - 1) * k;
        float* a2 = a + (long)Math.Min(i0 + 2, m - 1) * k, a3 = a + (long)Math.Min(i0 + 3, m - 1) * k;
        float* b0 = b + (long)Math.Min(j0, n - 1) * k, b1 = b + (long)Math.Min(j0 + 1, n - 1) * k;
        float* b2 = b + (long)Math.Min(j0 + 2, n - 1) * k, b3 = b + (long)Math.Min(j0 + 3, n - 1) * k;
        Span<float> s = stackalloc float[16];
        Store(a0, a1, a2, a3, b0, b1, b2, b3, 0, k, s, c, m, n, i0, j0, accumulate);
    }

    /// <summary>Adds the scalar tail [p, k) to the 16 sums and stores the valid ones.</summary>
    static void Store(float* a0, float* a1, float* a2, float* a3, float* b0, float* b1, float* b2, float* b3, int p, int k,
        Span<float> s, float* c, int m, int n, int i0, int j0, bool accumulate)
    {
        for (int q = p; q < k; q++)
        {
            float x0 = b0[q], x1 = b1[q], x2 = b2[q], x3 = b3[q];
            float y = a0[q]; s[0] += y * x0; s[1] += y * x1; s[2] += y * x2; s[3] += y * x3;
            y = a1[q]; s[4] += y * x0; s[5] += y * x1; s[6] += y * x2; s[7] += y * x3;
            y = a2[q]; s[8] += y * x0; s[9] += y * x1; s[10] += y * x2; s[11] += y * x3;
            y = a3[q]; s[12] += y * x0; s[13] += y * x1; s[14] += y * x2; s[15] += y * x3;
        }
        int mi = Math.Min(Tile, m - i0), nj = Math.Min(Tile, n - j0);
        for (int i = 0; i < mi; i++)
            for (int j = 0; j < nj; j++)
            {
                ref float dst = ref c[(long)(i0 + i) * n + j0 + j];
                dst = accumulate ? dst + s[i * 4 + j] : s[i * 4 + j];
            }
    }
}
