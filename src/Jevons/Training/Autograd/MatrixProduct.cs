using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Jevons.Numerics.Kernels;

namespace Jevons.Training.Autograd;

/// <summary>
/// The trainer's float32 matrix product C[m, n] (+)= op(A)·op(B), either operand optionally transposed, on
/// strided views (so attention multiplies one head's columns in place). The classic packed form: B is packed once
/// into panels of two vectors' width, [k][2·lanes], zero-padded past n; each task takes a tile of 6 rows of A
/// (in place, or packed to [k][6] when A is transposed) and sweeps it over every panel with a 6 × 2-vector register tile (12 accumulators,
/// 12 FMAs per 2 loads + 6 broadcasts, no horizontal sums). Packing is where a transpose happens, so
/// Tape.MatMul's forward (x·Wᵀ), dX (dy·W) and dW (dyᵀ·x) copy nothing else. Row tiles are spread over the pool;
/// each C element is summed by one thread in k order from zero, then added to C when accumulating, so the
/// result does not depend on the thread count. Measured (bench quick-train gemm, one Zen 4 core): 81–111 GFLOP/s
/// forward and dX on tiny-r1's shapes, 50–97 dW, against 13–99 for the unpacked 4 × 2-vector kernel it replaced,
/// whose B panels were read with a stride and whose partial panels (n = 80, 298, 8) ran scalar.
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
        var path = pool.Path;
        int width = 2 * Lanes(path), panels = (n + width - 1) / width, tiles = (m + Rows - 1) / Rows;
        float[] packed = ArrayPool<float>.Shared.Rent(checked(panels * k * width));
        fixed (float* pb = packed)
        {
            PackB(b, ldb, transB, pb, n, k, width, panels);
            var job = new Job
            {
                A = a, Lda = lda, TransA = transA, PackedB = pb, C = c, Ldc = ldc,
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

    struct Job
    {
        public float* A, PackedB, C;
        public int Lda, Ldc, M, N, K, Width, Panels;
        public bool TransA, Accumulate;
        public KernelPath Path;
        public Causal Causal;
    }

    /// <summary>op(B) [k, n] → panels [panel][k][width], zeros past column n.</summary>
    static void PackB(float* b, int ldb, bool transB, float* dst, int n, int k, int width, int panels)
    {
        for (int j = 0; j < panels; j++)
        {
            float* panel = dst + (long)j * k * width;
            int j0 = j * width, cols = Math.Min(width, n - j0);
            if (!transB)
            {
                for (int p = 0; p < k; p++)
                {
                    float* from = b + (long)p * ldb + j0, to = panel + (long)p * width;
                    for (int q = 0; q < cols; q++) to[q] = from[q];
                    for (int q = cols; q < width; q++) to[q] = 0;
                }
                continue;
            }
            // B stored [n, k]: column j of op(B) is row j of the storage, read along k.
            for (int q = 0; q < width; q++)
            {
                if (q >= cols)
                {
                    for (int p = 0; p < k; p++) panel[(long)p * width + q] = 0;
                    continue;
                }
                float* from = b + (long)(j0 + q) * ldb;
                for (int p = 0; p < k; p++) panel[(long)p * width + q] = from[p];
            }
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
                    case KernelPath.V512: Sweep<Lane512>(job, a, rowStride, step, i0, k0, k1); break;
                    case KernelPath.V256: Sweep<Lane256>(job, a, rowStride, step, i0, k0, k1); break;
                    case KernelPath.V128: Sweep<Lane128>(job, a, rowStride, step, i0, k0, k1); break;
                    default: Sweep<Lane1>(job, a, rowStride, step, i0, k0, k1); break;
                }
            }
        }
        if (tile is not null) ArrayPool<float>.Shared.Return(tile);
    }

    /// <summary>One row tile (depths k0..k1; element (r, p) at a[r·rowStride + p·step]) against every panel of B.</summary>
    static void Sweep<V>(Job* job, float* a, long rowStride, long step, int i0, int k0, int k1) where V : unmanaged, ILane<V>
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
        where V : unmanaged, ILane<V>
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
    static void StoreRow<V>(float* dst, V lo, V hi, int w, bool accumulate) where V : unmanaged, ILane<V>
    {
        if (accumulate)
        {
            lo = V.Add(lo, V.Load(dst));
            hi = V.Add(hi, V.Load(dst + w));
        }
        V.Store(lo, dst);
        V.Store(hi, dst + w);
    }

    /// <summary>The operations the tile needs, per vector width (Scalar: one lane, MathF.FusedMultiplyAdd).</summary>
    interface ILane<TSelf> where TSelf : unmanaged, ILane<TSelf>
    {
        static abstract int Count { get; }
        static abstract TSelf Zero { get; }
        static abstract TSelf Splat(float v);
        static abstract TSelf Load(float* p);
        static abstract void Store(TSelf v, float* p);
        static abstract TSelf Add(TSelf a, TSelf b);
        /// <summary>a·b + c, fused.</summary>
        static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    }

    readonly struct Lane512(Vector512<float> v) : ILane<Lane512>
    {
        readonly Vector512<float> _v = v;
        public static int Count => 16;
        public static Lane512 Zero => new(Vector512<float>.Zero);
        public static Lane512 Splat(float s) => new(Vector512.Create(s));
        public static Lane512 Load(float* p) => new(Vector512.Load(p));
        public static void Store(Lane512 a, float* p) => a._v.Store(p);
        public static Lane512 Add(Lane512 a, Lane512 b) => new(a._v + b._v);
        public static Lane512 Fma(Lane512 a, Lane512 b, Lane512 c) => new(Vector512.FusedMultiplyAdd(a._v, b._v, c._v));
    }

    readonly struct Lane256(Vector256<float> v) : ILane<Lane256>
    {
        readonly Vector256<float> _v = v;
        public static int Count => 8;
        public static Lane256 Zero => new(Vector256<float>.Zero);
        public static Lane256 Splat(float s) => new(Vector256.Create(s));
        public static Lane256 Load(float* p) => new(Vector256.Load(p));
        public static void Store(Lane256 a, float* p) => a._v.Store(p);
        public static Lane256 Add(Lane256 a, Lane256 b) => new(a._v + b._v);
        public static Lane256 Fma(Lane256 a, Lane256 b, Lane256 c) => new(Vector256.FusedMultiplyAdd(a._v, b._v, c._v));
    }

    readonly struct Lane128(Vector128<float> v) : ILane<Lane128>
    {
        readonly Vector128<float> _v = v;
        public static int Count => 4;
        public static Lane128 Zero => new(Vector128<float>.Zero);
        public static Lane128 Splat(float s) => new(Vector128.Create(s));
        public static Lane128 Load(float* p) => new(Vector128.Load(p));
        public static void Store(Lane128 a, float* p) => a._v.Store(p);
        public static Lane128 Add(Lane128 a, Lane128 b) => new(a._v + b._v);
        public static Lane128 Fma(Lane128 a, Lane128 b, Lane128 c) => new(Vector128.FusedMultiplyAdd(a._v, b._v, c._v));
    }

    readonly struct Lane1(float v) : ILane<Lane1>
    {
        readonly float _v = v;
        public static int Count => 1;
        public static Lane1 Zero => new(0);
        public static Lane1 Splat(float s) => new(s);
        public static Lane1 Load(float* p) => new(*p);
        public static void Store(Lane1 a, float* p) => *p = a._v;
        public static Lane1 Add(Lane1 a, Lane1 b) => new(a._v + b._v);
        public static Lane1 Fma(Lane1 a, Lane1 b, Lane1 c) => new(MathF.FusedMultiplyAdd(a._v, b._v, c._v));
    }
}
