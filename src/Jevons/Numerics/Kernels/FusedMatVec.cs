using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Kernels;

/// <summary>One matrix of a fused dispatch: the rows of W·xq into Y through the format's integer dot.</summary>
internal unsafe struct MatVecPart
{
    public byte* Data;
    public long RowBytes;
    public int Rows, Blocks;
    public byte* Xq;
    public float* Y;
    public delegate*<byte*, byte*, int, KernelPath, float> Dot;
}

/// <summary>A weight type's integer dot, the activation type it reads and its block size.</summary>
internal unsafe struct IntegerDot : IFormatAction
{
    public delegate*<byte*, byte*, int, KernelPath, float> Dot;
    public DType Activation;
    public int BlockSize;

    public void Run<T>() where T : struct, IBlockFormat
    {
        Dot = &DotOf<T>;
        Activation = T.ActivationType;
        BlockSize = T.BlockSize;
    }

    static float DotOf<T>(byte* w, byte* xq, int blocks, KernelPath path) where T : struct, IBlockFormat =>
        T.DotInt8(w, xq, blocks, path);
}

/// <summary>
/// Several matrix-vector products in one parallel loop over their concatenated rows: one dispatch on the
/// <see cref="WorkerPool"/> instead of one per matrix (a token's experts: gate and up of every expert, then
/// every down). Each row is the same integer dot <see cref="MatMul"/> runs, so the bits are MatMul's.
/// </summary>
internal static unsafe class FusedMatVec
{
    /// <summary>
    /// Whether <paramref name="w"/> takes MatMul's integer path (LlamaCpp activations, no FP8 scales, no bias),
    /// and if so its dot, activation type and block size.
    /// </summary>
    public static bool IntegerPath(Linear w, out IntegerDot dot)
    {
        dot = default;
        if (w.ScaleInv != null || w.Bias is not null || !BlockFormats.IsSupported(w.Type)) return false;
        BlockFormats.Dispatch(w.Type, ref dot);
        return dot.Activation != DType.F32 && w.InFeatures % dot.BlockSize == 0;
    }

    /// <summary>The part that writes W·xq to <paramref name="y"/> (xq: x quantised to the dot's activation type).</summary>
    public static MatVecPart Part(Linear w, in IntegerDot dot, byte* xq, float* y) => new()
    {
        Data = w.Data, RowBytes = w.RowBytes, Rows = w.OutFeatures, Blocks = w.InFeatures / dot.BlockSize, Xq = xq, Y = y, Dot = dot.Dot,
    };

    /// <summary>Runs <paramref name="count"/> parts as one parallel loop.</summary>
    public static void Run(WorkerPool pool, MatVecPart* parts, int count)
    {
        long rows = 0;
        for (int i = 0; i < count; i++) rows += parts[i].Rows;
        if (rows == 0) return;
        var job = new Job { Parts = parts, Path = pool.Path };
        pool.Run(checked((int)rows), &Rows, &job);
    }

    struct Job
    {
        public MatVecPart* Parts;
        public KernelPath Path;
    }

    static void Rows(void* ctx, int start, int end)
    {
        ref Job j = ref *(Job*)ctx;
        int p = 0, first = 0;
        while (first + j.Parts[p].Rows <= start) first += j.Parts[p++].Rows;
        int r = start;
        while (r < end)
        {
            ref MatVecPart part = ref j.Parts[p];
            int stop = Math.Min(end - first, part.Rows);
            for (int i = r - first; i < stop; i++)
                part.Y[i] = part.Dot(part.Data + i * part.RowBytes, part.Xq, part.Blocks, j.Path) + 0f;
            r = first + stop;
            first += part.Rows;
            p++;
        }
    }
}
