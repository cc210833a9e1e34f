using Jevons.Numerics.Quants;

namespace Jevons.Numerics.Kernels;

/// <summary>
/// Which of the driver's int8 kernels serve each block format beside <see cref="MatMul"/>'s generic loop of one
/// <see cref="IBlockFormat.DotInt8"/> per (row, token): the CPU backend's table of kernels per type (as ggml-cpu's
/// type traits), kept here in the driver layer so that the formats (Numerics/Quants) know nothing of the drivers.
/// Each route keeps the bits of the generic loop; false leaves the product to it.
/// </summary>
internal static unsafe class Int8Routes
{
    /// <summary>Y[n, out] = X·Wᵀ (+ bias) by a format's own int8 kernels where it has one for this n and the pool's
    /// path. <paramref name="type"/> is the format's <see cref="IBlockFormat.Type"/>: a constant in each
    /// instantiation of the generic driver, so the switch folds away.</summary>
    public static bool Try(DType type, Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) => type switch
    {
        // 32-element formats: the four-row MatVec for one token, the register tiles for more.
        DType.Q8_0 => n == 1 ? MatMul.LegacyMatVec<Q8_0Format>(w, x, y, bias, pool) : GemmTiles.TryLegacy<Q8_0Format>(w, x, y, bias, n, pool),
        DType.Q4_0 => n == 1 ? MatMul.LegacyMatVec<Q4_0Format>(w, x, y, bias, pool) : GemmTiles.TryLegacy<Q4_0Format>(w, x, y, bias, n, pool),
        DType.Q5_0 => n == 1 ? MatMul.LegacyMatVec<Q5_0Format>(w, x, y, bias, pool) : GemmTiles.TryLegacy<Q5_0Format>(w, x, y, bias, n, pool),
        // Formats with a min: the four-row MatVec only (the tiles have no min term).
        DType.Q4_1 => n == 1 && MatMul.LegacyMatVec<Q4_1Format>(w, x, y, bias, pool),
        DType.Q5_1 => n == 1 && MatMul.LegacyMatVec<Q5_1Format>(w, x, y, bias, pool),
        // k-quants: the four-row dots up to the batch where the tiles win (the format's own measured bound), then the tiles.
        DType.Q4_K => KRows4<Q4_KFormat>(w, x, y, bias, n, pool) || GemmTiles.TryKQuant<Q4_KFormat>(w, x, y, bias, n, pool),
        DType.Q6_K => KRows4<Q6_KFormat>(w, x, y, bias, n, pool) || GemmTiles.TryKQuant<Q6_KFormat>(w, x, y, bias, n, pool),
        DType.Q2_K => GemmTiles.TryKQuant<Q2_KFormat>(w, x, y, bias, n, pool),
        DType.Q3_K => GemmTiles.TryKQuant<Q3_KFormat>(w, x, y, bias, n, pool),
        DType.Q5_K => GemmTiles.TryKQuant<Q5_KFormat>(w, x, y, bias, n, pool),
        _ => false,
    };

    static bool KRows4<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat, IKRows4 =>
        n <= T.Rows4Batch && MatMul.KQuantRows4<T>(w, x, y, bias, n, pool);
}
