using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;

namespace Jevons.Training.Autograd;

/// <summary>
/// The trainer's float32 matrix product C[m, n] (+)= op(A)·op(B), either operand optionally transposed, on
/// strided views (so attention multiplies one head's columns in place). The classic packed form: B is packed once
/// into panels of two vectors' width, [k][2·lanes], zero-padded past n; each task takes a tile of 6 rows of A
/// (in place, or packed to [k][6] when A is transposed) and sweeps it over every panel with a 6 × 2-vector register tile (12 accumulators,
/// 12 FMAs per 2 loads + 6 broadcasts, no horizontal sums). Packing is where a transpose happens, so
/// Tape.MatMul's forward (x·Wᵀ), dX (dy·W) and dW (dyᵀ·x) copy nothing else. The panels are packed by the threads of
/// the parallel loop itself (one pool round trip per product), the row tiles spread over the pool;
/// each C element is summed by one thread in k order from zero, then added to C when accumulating, so the
/// result does not depend on the thread count. Measured (bench quick-train gemm, one Zen 4 core): 81–111 GFLOP/s
/// forward and dX on tiny-r1's shapes, 50–97 dW, against 13–99 for the unpacked 4 × 2-vector kernel it replaced,
/// whose B panels were read with a stride and whose partial panels (n = 80, 298, 8) ran scalar. The vector width is
/// one <see cref="IVec{TSelf}"/> (Vec512/256/128, Vec1 for the scalar path), narrowed for narrow products; each
/// element is one FMA chain in k order whatever the width, so the width does not change the bits.
/// </summary>
public static unsafe class MatrixProduct
{
    const int Rows = 6;

    /// <summary>C = A·B (or C += A·B when <paramref name="accumulate"/>), all row-major and dense.</summary>
    public static void Nn(float[] a, float[] b, float[] c, int m, int n, int k, bool accumulate, WorkerPool pool)
    {
        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
            throw new ArgumentException($"Nn: buffers too small for [{m}, {k}]·[{k}, {n}]");
        fixed (float* pa = a, pb = b, pc = c)
            Multiply(pa, k, false, pb, n, false, pc, n, m, n, k, accumulate, pool);
    }

    /// <summary>
    /// C[m, n] (+)= op(A)·op(B) with leading dimensions (elements between rows): A is [m, k] with row stride
    /// <paramref name="lda"/>, or with <paramref name="transA"/> stored [k, m]; B is [k, n] with row stride
    /// <paramref name="ldb"/>, or with <paramref name="transB"/> stored [n, k]; C is [m, n] with row stride <paramref name="ldc"/>.
    /// <paramref name="causal"/> skips the work a causal mask makes zero or unused (see <see cref="Causal"/>).
    /// </summary>
    public static void Multiply(float* a, int lda, bool transA, float* b, int ldb, bool transB, float* c, int ldc,
        int m, int n, int k, bool accumulate, WorkerPool pool, Causal causal = Causal.None)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0)
        {
            if (!accumulate)
                for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        var path = Narrowest(pool.Path, n);
        int width = 2 * Lanes(path), panels = (n + width - 1) / width, tiles = (m + Rows - 1) / Rows;
        float[] packed = ArrayPool<float>.Shared.Rent(checked(panels * k * width));
        fixed (float* pb = packed)
        {
            var job = new Job
            {
                A = a, Lda = lda, TransA = transA, B = b, Ldb = ldb, TransB = transB, PackedB = pb, C = c, Ldc = ldc,
                M = m, N = n, K = k, Width = width, Panels = panels, Accumulate = accumulate, Path = path, Causal = causal,
            };
            // A pool round trip costs more than a small product.
            if ((long)m * n * k < 1 << 16 || pool.Threads == 1) RowTiles(&job, 0, tiles);
            else pool.Run(tiles, &RowTiles, &job);
        }
        ArrayPool<float>.Shared.Return(packed);
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

    /// <summary>
    /// What a causal (lower-triangular) operand lets a product skip, by 6-row tiles, so each element's sum still
    /// runs over one fixed range in k order (the skipped terms are exact zeros).
    /// </summary>
    public enum Causal
    {
        None,
        /// <summary>op(A)[i, p] = 0 for p &gt; i (P·V, dS·K): a tile's k range ends after its last row.</summary>
        LowerA,
        /// <summary>op(A)[i, p] = 0 for p &lt; i (Pᵀ·dO, dSᵀ·Q): a tile's k range starts at its first row.</summary>
        UpperA,
        /// <summary>Only C[i, j] with j ≤ i is wanted (Q·Kᵀ, dO·Vᵀ): panels right of a tile's last row are not computed, and C there is left as it was.</summary>
        LowerC,
    }

    static int Lanes(KernelPath path) => path switch { KernelPath.V512 => 16, KernelPath.V256 => 8, KernelPath.V128 => 4, _ => 1 };

    /// <summary>
    /// The narrowest vector path whose panel still covers n in one, for narrow products: the router's n = 8 runs
    /// 128-bit panels of 8 columns instead of 512-bit panels of 32 with three quarters padding.
    /// </summary>
    static KernelPath Narrowest(KernelPath path, int n)
    {
        while (path > KernelPath.V128 && n <= Lanes(path)) path--;
        return path;
    }

    struct Job
    {
        public float* A, B, PackedB, C;
        public int Lda, Ldb, Ldc, M, N, K, Width, Panels;
        public bool TransA, TransB, Accumulate;
        public KernelPath Path;
        public Causal Causal;
        /// <summary>Panels claimed for packing, and packed.</summary>
        public int NextPanel, PackedPanels;
    }

    /// <summary>
    /// Packs B inside the parallel loop: every thread's first chunk claims panels to pack until none is left, then
    /// waits only for panels another running thread has claimed (a thread that never woke claimed none).
    /// </summary>
    static void PackAll(Job* job)
    {
        int panels = job->Panels;
        if (Volatile.Read(ref job->PackedPanels) == panels) return;
        int j;
        while ((j = Interlocked.Increment(ref job->NextPanel) - 1) < panels)
        {
            PackPanel(job, j);
            Interlocked.Increment(ref job->PackedPanels);
        }
        var spin = new SpinWait();
        while (Volatile.Read(ref job->PackedPanels) < panels) spin.SpinOnce();
    }

    /// <summary>Panel j of op(B) [k, n] → [k][width] at PackedB + j·k·width, zeros past column n.</summary>
    static void PackPanel(Job* job, int j)
    {
        int k = job->K, width = job->Width, j0 = j * width, cols = Math.Min(width, job->N - j0);
        long ldb = job->Ldb;
        float* panel = job->PackedB + (long)j * k * width;
        if (!job->TransB)
        {
            for (int p = 0; p < k; p++)
            {
                float* from = job->B + p * ldb + j0, to = panel + (long)p * width;
                for (int q = 0; q < cols; q++) to[q] = from[q];
                for (int q = cols; q < width; q++) to[q] = 0;
            }
            return;
        }
        // B stored [n, k]: column j of op(B) is row j of the storage, read along k.
        for (int q = 0; q < width; q++)
        {
            if (q >= cols)
            {
                for (int p = 0; p < k; p++) panel[(long)p * width + q] = 0;
                continue;
            }
            float* from = job->B + (j0 + q) * ldb;
            for (int p = 0; p < k; p++) panel[(long)p * width + q] = from[p];
        }
    }

    /// <summary>Rows i0..i0+6 of op(A) stored [k, m], depths k0..k1 → [k1 − k0][6] (the tile's values at one depth are contiguous).</summary>
    static void PackA(Job* job, int i0, int k0, int k1, float* dst)
    {
        int rows = Math.Min(Rows, job->M - i0);
        long lda = job->Lda;
        for (int p = k0; p < k1; p++)
        {
            float* from = job->A + p * lda + i0, to = dst + (long)(p - k0) * Rows;
            for (int r = 0; r < rows; r++) to[r] = from[r];
        }
    }

    static void RowTiles(void* ctx, int t0, int t1)
    {
        var job = (Job*)ctx;
        PackAll(job);
        // A stored [m, k] is read in place (a tile's 6 rows stay in L1 across the panels); stored [k, m], a tile
        // is packed to [k][6] first, so its columns are not re-read with a stride of m for every panel.
        float[]? tile = job->TransA ? ArrayPool<float>.Shared.Rent(job->K * Rows) : null;
        fixed (float* packed = tile)
        {
            for (int t = t0; t < t1; t++)
            {
                int i0 = t * Rows, k0 = 0, k1 = job->K;
                if (job->Causal == Causal.LowerA) k1 = Math.Min(k1, i0 + Rows);
                else if (job->Causal == Causal.UpperA) k0 = Math.Min(k1, i0);
                float* a;
                long rowStride, step;
                if (job->TransA)
                {
                    PackA(job, i0, k0, k1, packed);
                    a = packed;
                    rowStride = 1;
                    step = Rows;
                }
                else
                {
                    a = job->A + (long)i0 * job->Lda + k0;
                    rowStride = job->Lda;
                    step = 1;
                }
                switch (job->Path)
                {
                    case KernelPath.V512: Sweep<Vec512>(job, a, rowStride, step, i0, k0, k1); break;
                    case KernelPath.V256: Sweep<Vec256>(job, a, rowStride, step, i0, k0, k1); break;
                    case KernelPath.V128: Sweep<Vec128>(job, a, rowStride, step, i0, k0, k1); break;
                    default: Sweep<Vec1>(job, a, rowStride, step, i0, k0, k1); break;
                }
            }
        }
        if (tile is not null) ArrayPool<float>.Shared.Return(tile);
    }

    /// <summary>One row tile (depths k0..k1; element (r, p) at a[r·rowStride + p·step]) against every panel of B.</summary>
    static void Sweep<V>(Job* job, float* a, long rowStride, long step, int i0, int k0, int k1) where V : unmanaged, IVec<V>
    {
        int k = job->K, width = job->Width, rows = Math.Min(Rows, job->M - i0);
        int panels = job->Causal == Causal.LowerC ? Math.Min(job->Panels, (i0 + Rows - 1) / width + 1) : job->Panels;
        float* cRow = job->C + (long)i0 * job->Ldc;
        for (int j = 0; j < panels; j++)
        {
            int j0 = j * width;
            Tile<V>(a, rowStride, step, job->PackedB + ((long)j * k + k0) * width, k1 - k0, cRow + j0, job->Ldc, rows, Math.Min(width, job->N - j0), job->Accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile<V>(float* a, long rowStride, long step, float* b, int k, float* c, int ldc, int rows, int cols, bool accumulate)
        where V : unmanaged, IVec<V>
    {
        // Rows past the edge repeat the last row (their results are not stored).
        float* a0 = a, a1 = a + Math.Min(1, rows - 1) * rowStride, a2 = a + Math.Min(2, rows - 1) * rowStride;
        float* a3 = a + Math.Min(3, rows - 1) * rowStride, a4 = a + Math.Min(4, rows - 1) * rowStride, a5 = a + Math.Min(5, rows - 1) * rowStride;
        V c00 = V.Zero, c01 = V.Zero, c10 = V.Zero, c11 = V.Zero, c20 = V.Zero, c21 = V.Zero;
        V c30 = V.Zero, c31 = V.Zero, c40 = V.Zero, c41 = V.Zero, c50 = V.Zero, c51 = V.Zero;
        int w = V.Count;
        long end = k * step;
        for (long p = 0; p < end; p += step, b += 2 * w)
        {
            V x0 = V.Load(b), x1 = V.Load(b + w);
            V y = V.Splat(a0[p]);
            c00 = V.Fma(y, x0, c00); c01 = V.Fma(y, x1, c01);
            y = V.Splat(a1[p]);
            c10 = V.Fma(y, x0, c10); c11 = V.Fma(y, x1, c11);
            y = V.Splat(a2[p]);
            c20 = V.Fma(y, x0, c20); c21 = V.Fma(y, x1, c21);
            y = V.Splat(a3[p]);
            c30 = V.Fma(y, x0, c30); c31 = V.Fma(y, x1, c31);
            y = V.Splat(a4[p]);
            c40 = V.Fma(y, x0, c40); c41 = V.Fma(y, x1, c41);
            y = V.Splat(a5[p]);
            c50 = V.Fma(y, x0, c50); c51 = V.Fma(y, x1, c51);
        }
        if (rows == Rows && cols == 2 * w)
        {
            StoreRow(c, c00, c01, w, accumulate);
            StoreRow(c + ldc, c10, c11, w, accumulate);
            StoreRow(c + 2L * ldc, c20, c21, w, accumulate);
            StoreRow(c + 3L * ldc, c30, c31, w, accumulate);
            StoreRow(c + 4L * ldc, c40, c41, w, accumulate);
            StoreRow(c + 5L * ldc, c50, c51, w, accumulate);
            return;
        }
        // A partial tile: through a scratch tile, storing only the rows and columns inside C.
        float* s = stackalloc float[Rows * 2 * 16];
        int sw = 2 * w;
        V.Store(c00, s); V.Store(c01, s + w);
        V.Store(c10, s + sw); V.Store(c11, s + sw + w);
        V.Store(c20, s + 2 * sw); V.Store(c21, s + 2 * sw + w);
        V.Store(c30, s + 3 * sw); V.Store(c31, s + 3 * sw + w);
        V.Store(c40, s + 4 * sw); V.Store(c41, s + 4 * sw + w);
        V.Store(c50, s + 5 * sw); V.Store(c51, s + 5 * sw + w);
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < cols; q++)
            {
                ref float dst = ref c[(long)r * ldc + q];
                dst = accumulate ? dst + s[r * sw + q] : s[r * sw + q];
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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
}
