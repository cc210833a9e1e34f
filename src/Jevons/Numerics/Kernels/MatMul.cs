using System.Buffers;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Kernels;

/// <summary>How activations meet quantised weights in the matrix kernels.</summary>
public enum ActivationMode
{
    /// <summary>
    /// As llama.cpp's CPU backend: for quantised weights the activations are quantised to Q8_0 (32-element
    /// formats) or Q8_K (k-quants) and dotted in integers; for Q8_0 weights this reproduces llama.cpp bit for bit.
    /// Float weights (F32/F16/BF16/F8) always use float32 activations.
    /// </summary>
    LlamaCpp = 0,

    /// <summary>float32 activations against weights decoded to float32 (more precise, slower for quantised weights).</summary>
    Float = 1,
}

/// <summary>
/// Matrix-vector and matrix-matrix products with weights in any stored format: one generic driver over
/// <see cref="IBlockFormat"/>, multithreaded over output rows on the <see cref="WorkerPool"/>.
/// Gemm over n tokens gives exactly the bits of n MatVec calls.
/// </summary>
public static unsafe class MatMul
{
    /// <summary>y[out] = W·x[in] (+ bias).</summary>
    public static void MatVec(Linear w, ReadOnlySpan<float> x, Span<float> y, WorkerPool pool) =>
        Gemm(w, x, y, 1, pool, ActivationMode.LlamaCpp);

    /// <summary>y[out] = W·x[in] (+ bias) with the given activation handling.</summary>
    public static void MatVec(Linear w, ReadOnlySpan<float> x, Span<float> y, WorkerPool pool, ActivationMode mode) =>
        Gemm(w, x, y, 1, pool, mode);

    /// <summary>Y[n, out] = X[n, in]·Wᵀ (+ bias).</summary>
    public static void Gemm(Linear w, ReadOnlySpan<float> x, Span<float> y, int n, WorkerPool pool) =>
        Gemm(w, x, y, n, pool, ActivationMode.LlamaCpp);

    /// <summary>Y[n, out] = X[n, in]·Wᵀ (+ bias); each weight row is read (and decoded) once for all n tokens.</summary>
    public static void Gemm(Linear w, ReadOnlySpan<float> x, Span<float> y, int n, WorkerPool pool, ActivationMode mode)
    {
        if (n < 0 || x.Length < (long)n * w.InFeatures || y.Length < (long)n * w.OutFeatures)
            throw new ArgumentException($"{w.Name}: n={n}, x has {x.Length} (need {(long)n * w.InFeatures}), y has {y.Length} (need {(long)n * w.OutFeatures})");
        if (n == 0 || w.OutFeatures == 0) return;
        if (!BlockFormats.IsSupported(w.Type))
            JevonsException.Throw($"weights of type {w.Type.Name()} cannot be multiplied", w.File, w.Name);
        fixed (float* px = x, py = y, pb = w.Bias)
        {
            var action = new GemmAction { W = w, X = px, Y = py, Bias = pb, N = n, Pool = pool, Mode = mode };
            BlockFormats.Dispatch(w.Type, ref action);
        }
    }

    struct GemmAction : IFormatAction
    {
        public Linear W;
        public float* X, Y, Bias;
        public int N;
        public WorkerPool Pool;
        public ActivationMode Mode;
        public void Run<T>() where T : struct, IBlockFormat => Gemm<T>(W, X, Y, Bias, N, Pool, Mode);
    }

    struct Job
    {
        public byte* Data;
        public long RowBytes;
        public int In, Out, Blocks, N;
        public float* X, Y, Bias;
        public byte* Xq;
        public int XqBytes;
        public float* Dx;
        public float* Scale;
        public int ScaleRows, ScaleCols, ScaleColumns;
        public KernelPath Path;
    }

    static void Gemm<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool, ActivationMode mode) where T : struct, IBlockFormat
    {
        var job = NewJob<T>(w, x, y, bias, n, pool);
        bool int8 = mode == ActivationMode.LlamaCpp && T.ActivationType != DType.F32 && w.ScaleInv == null;
        if (!int8)
        {
            // FP8 with block scales: scales folded into the activations per row block (MatVec and Gemm alike)
            if (T.Type == DType.F8_E4M3 && w.ScaleInv != null)
            {
                pool.Run(w.OutFeatures, &Fp8ScaledRows, &job);
                return;
            }
            if (n == 1 && T.Type == DType.F16 && w.ScaleInv == null && HalfDot.Has(pool.Path))
            {
                HalfMatVec(ref job, x, pool);
                return;
            }
            if (GemmTiles.TryFloat<T>(w, x, y, bias, n, pool)) return;
            pool.Run(w.OutFeatures, &FloatRows<T>, &job);
            return;
        }
        if (Int8Routes.Try(T.Type, w, x, y, bias, n, pool)) return;
        RunOnQuantized<T>(ref job, x, &Int8Rows<T>, pool);
    }

    /// <summary>Quantises the job's n activation rows to the format's activation blocks, then runs <paramref name="rows"/> over the output rows.</summary>
    static void RunOnQuantized<T>(ref Job job, float* x, delegate*<void*, int, int, void> rows, WorkerPool pool) where T : struct, IBlockFormat
    {
        int qBytes = (int)T.ActivationType.ByteCount(job.In);
        byte[] rented = ArrayPool<byte>.Shared.Rent(qBytes * job.N);
        try
        {
            fixed (byte* xq = rented)
            {
                for (int t = 0; t < job.N; t++)
                    ActivationQuant.Quantize(T.ActivationType, x + (long)t * job.In, xq + (long)t * qBytes, job.In);
                job.Xq = xq;
                job.XqBytes = qBytes;
                fixed (Job* pj = &job)
                    pool.Run(job.Out, rows, pj);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    static Job NewJob<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat => new()
    {
        Data = w.Data, RowBytes = w.RowBytes, In = w.InFeatures, Out = w.OutFeatures, Blocks = w.InFeatures / T.BlockSize,
        N = n, X = x, Y = y, Bias = bias, Scale = w.ScaleInv, ScaleRows = w.ScaleBlockRows, ScaleCols = w.ScaleBlockCols,
        ScaleColumns = w.ScaleColumns, Path = pool.Path,
    };

    /// <summary>
    /// Single-token MatVec for 32-element formats against Q8_0 activations: the activations are quantised and
    /// their block scales converted to float once per call, then four rows at a time share each activation
    /// block (<see cref="Int8Dot.DotQ8_0Rows4{T}"/>); every row keeps the bits of the one-row dot. False where
    /// the path has no four-row dot.
    /// </summary>
    internal static bool LegacyMatVec<T>(Linear w, float* x, float* y, float* bias, WorkerPool pool) where T : struct, IBlockFormat, ILegacyBlock
    {
        if (!Int8Dot.HasRows4(pool.Path)) return false;
        var job = NewJob<T>(w, x, y, bias, 1, pool);
        int qBytes = job.Blocks * 34;
        byte[] rented = ArrayPool<byte>.Shared.Rent(qBytes + 4 * job.Blocks + 4);
        try
        {
            fixed (byte* xq = rented)
            {
                ActivationQuant.Quantize(DType.Q8_0, x, xq, job.In);
                float* dx = (float*)(xq + ((qBytes + 3) & ~3));
                Int8Dot.ActivationScales(xq, dx, job.Blocks);
                job.Xq = xq;
                job.XqBytes = qBytes;
                job.Dx = dx;
                pool.Run(job.Out, &Int8Rows4<T>, &job);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
        return true;
    }

    /// <summary>
    /// One token or a small batch of a k-quant with four-row dots (<see cref="IKRows4"/>) against Q8_K activations:
    /// four rows per pass share each activation super-block, two tokens at a time; every (row, token) keeps the bits
    /// of the one-row dot. False where the path has no four-row dot.
    /// </summary>
    internal static bool KQuantRows4<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat, IKRows4
    {
        if (!KQuantDots.HasRows4(pool.Path)) return false;
        var job = NewJob<T>(w, x, y, bias, n, pool);
        RunOnQuantized<T>(ref job, x, &KQuantRows4Run<T>, pool);
        return true;
    }

    /// <summary>
    /// Single-token MatVec of F16 weights: the activations scaled once per call for <see cref="HalfDot"/>, whose
    /// rows keep the bits of <see cref="FloatDot.Dot{TLoad}"/> (see there).
    /// </summary>
    static void HalfMatVec(ref Job job, float* x, WorkerPool pool)
    {
        float[] rented = ArrayPool<float>.Shared.Rent(job.In + 1);
        try
        {
            fixed (float* xs = rented)
            {
                xs[job.In] = HalfDot.Prepare(x, xs, job.In);
                job.Dx = xs;
                fixed (Job* pj = &job)
                    pool.Run(job.Out, &HalfRows, pj);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    static void HalfRows(void* ctx, int start, int end)
    {
        ref Job j = ref *(Job*)ctx;
        float post = j.Dx[j.In];
        for (int r = start; r < end; r++)
            j.Y[r] = HalfDot.Dot(j.Data + r * j.RowBytes, j.Dx, j.X, j.In, post, j.Path) + (j.Bias == null ? 0 : j.Bias[r]);
    }

    static void Int8Rows4<T>(void* ctx, int start, int end) where T : struct, IBlockFormat, ILegacyBlock
    {
        ref Job j = ref *(Job*)ctx;
        float* dots = stackalloc float[4];
        int r = start;
        for (; r + 4 <= end; r += 4)
        {
            Int8Dot.DotQ8_0Rows4<T>(j.Data + r * j.RowBytes, j.RowBytes, j.Xq, j.Dx, j.Blocks, dots);
            for (int i = 0; i < 4; i++)
                j.Y[r + i] = dots[i] + (j.Bias == null ? 0 : j.Bias[r + i]);
        }
        for (; r < end; r++)
            j.Y[r] = T.DotInt8(j.Data + r * j.RowBytes, j.Xq, j.Blocks, j.Path) + (j.Bias == null ? 0 : j.Bias[r]);
    }

    static void KQuantRows4Run<T>(void* ctx, int start, int end) where T : struct, IBlockFormat, IKRows4
    {
        ref Job j = ref *(Job*)ctx;
        float* dots = stackalloc float[8];
        int r = start;
        for (; r + 4 <= end; r += 4)
        {
            byte* w = j.Data + r * j.RowBytes;
            for (int t = 0; t < j.N;)
            {
                byte* xq = j.Xq + (long)t * j.XqBytes;
                int nt = t + 2 <= j.N ? 2 : 1;
                if (nt == 2) T.DotRows4x2(w, j.RowBytes, xq, xq + j.XqBytes, j.Blocks, dots);
                else T.DotRows4(w, j.RowBytes, xq, j.Blocks, dots);
                for (int k = 0; k < nt; k++)
                    for (int i = 0; i < 4; i++)
                        j.Y[(long)(t + k) * j.Out + r + i] = dots[4 * k + i] + (j.Bias == null ? 0 : j.Bias[r + i]);
                t += nt;
            }
        }
        for (; r < end; r++)
            for (int t = 0; t < j.N; t++)
                j.Y[(long)t * j.Out + r] = T.DotInt8(j.Data + r * j.RowBytes, j.Xq + (long)t * j.XqBytes, j.Blocks, j.Path) + (j.Bias == null ? 0 : j.Bias[r]);
    }

    static void Int8Rows<T>(void* ctx, int start, int end) where T : struct, IBlockFormat
    {
        ref Job j = ref *(Job*)ctx;
        for (int r = start; r < end; r++)
        {
            byte* row = j.Data + r * j.RowBytes;
            float b = j.Bias == null ? 0 : j.Bias[r];
            for (int t = 0; t < j.N; t++)
                j.Y[(long)t * j.Out + r] = T.DotInt8(row, j.Xq + (long)t * j.XqBytes, j.Blocks, j.Path) + b;
        }
    }

    const int RowTile = 8;

    static void FloatRows<T>(void* ctx, int start, int end) where T : struct, IBlockFormat
    {
        ref Job j = ref *(Job*)ctx;
        bool direct = T.IsFloat && (j.N == 1 || T.Type == DType.F32);
        float[]? rented = direct ? null : ArrayPool<float>.Shared.Rent(RowTile * j.In);
        try
        {
            fixed (float* scratch = rented)
            {
                for (int r0 = start; r0 < end; r0 += RowTile)
                {
                    int rows = Math.Min(RowTile, end - r0);
                    if (!direct)
                        for (int i = 0; i < rows; i++)
                            T.Dequantize(j.Data + (r0 + i) * j.RowBytes, scratch + (long)i * j.In, j.Blocks, j.Path);
                    for (int t = 0; t < j.N; t++)
                    {
                        float* xt = j.X + (long)t * j.In;
                        for (int i = 0; i < rows; i++)
                        {
                            int r = r0 + i;
                            float s = direct
                                ? RowDot<T>(ref j, j.Data + r * j.RowBytes, xt, r)
                                : RowDot<F32Format>(ref j, (byte*)(scratch + (long)i * j.In), xt, r);
                            j.Y[(long)t * j.Out + r] = s + (j.Bias == null ? 0 : j.Bias[r]);
                        }
                    }
                }
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// FP8 weights with block scales: per row block the scales are folded into the activations once
    /// (<see cref="FloatDot.PrepareF8"/>), then every row of the block is one plain FP8 dot. Gemm and MatVec
    /// run the same code per token, so they give the same bits.
    /// </summary>
    static void Fp8ScaledRows(void* ctx, int start, int end)
    {
        ref Job j = ref *(Job*)ctx;
        float[] rented = ArrayPool<float>.Shared.Rent(j.N * (j.In + 1));
        try
        {
            fixed (float* scratch = rented)
            {
                float* post = scratch + (long)j.N * j.In;
                bool* nan = stackalloc bool[RowTile];
                int group = -1;
                for (int r0 = start; r0 < end;)
                {
                    int g = r0 / j.ScaleRows;
                    if (g != group)
                    {
                        group = g;
                        float* srow = j.Scale + group * j.ScaleColumns;
                        for (int t = 0; t < j.N; t++)
                            post[t] = FloatDot.PrepareF8(j.X + (long)t * j.In, scratch + (long)t * j.In, j.In, j.ScaleCols, srow, j.Path);
                    }
                    // a tile of rows inside one scale block: each token's x' is read once per tile
                    int r1 = Math.Min(Math.Min(end, r0 + RowTile), (g + 1) * j.ScaleRows);
                    for (int r = r0; r < r1; r++) nan[r - r0] = FloatDot.F8HasNaN(j.Data + r * j.RowBytes, j.In);
                    for (int t = 0; t < j.N; t++)
                        for (int r = r0; r < r1; r++)
                        {
                            float b = j.Bias == null ? 0 : j.Bias[r];
                            float dot = nan[r - r0] ? float.NaN : FloatDot.DotF8Finite(j.Data + r * j.RowBytes, scratch + (long)t * j.In, j.In, j.Path);
                            j.Y[(long)t * j.Out + r] = dot * post[t] + b;
                        }
                    r0 = r1;
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>One row's dot, in scale blocks when the weight has FP8 block scales (the last may be partial).</summary>
    static float RowDot<TF>(ref Job j, byte* row, float* x, int r) where TF : struct, IBlockFormat
    {
        if (j.Scale == null) return TF.Dot(row, x, j.In, j.Path);
        float* srow = j.Scale + (r / j.ScaleRows) * j.ScaleColumns;
        float s = 0;
        for (int c = 0, k = 0; c < j.In; c += j.ScaleCols, k++)
        {
            int len = Math.Min(j.ScaleCols, j.In - c);
            s += srow[k] * TF.Dot(row + (long)c * TF.BlockBytes, x + c, len, j.Path);
        }
        return s;
    }

    /// <summary>Decodes row r of W into float32, FP8 block scales applied.</summary>
    public static void DecodeRow(Linear w, int r, Span<float> dst)
    {
        var src = new ReadOnlySpan<byte>(w.Row(r), checked((int)w.RowBytes));
        Quantization.Dequantize(w.Type, src, dst[..w.InFeatures]);
        if (w.ScaleInv != null)
        {
            float* srow = w.ScaleInv + (r / w.ScaleBlockRows) * w.ScaleColumns;
            for (int i = 0; i < w.InFeatures; i++) dst[i] *= srow[i / w.ScaleBlockCols];
        }
    }
}
