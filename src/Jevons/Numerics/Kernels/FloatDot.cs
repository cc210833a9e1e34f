using System.Runtime.CompilerServices;

namespace Jevons.Numerics.Kernels;

/// <summary>How one float-like element type is read: as a vector of any width, or one value.</summary>
internal unsafe interface IElementLoader
{
    static abstract V Load<V>(byte* p, int i) where V : struct, IVec<V>;
    static abstract float LoadScalar(byte* p, int i);
}

internal unsafe struct F32Elements : IElementLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Load<V>(byte* p, int i) where V : struct, IVec<V> => V.Load((float*)p + i);
    public static float LoadScalar(byte* p, int i) => ((float*)p)[i];
}

internal unsafe struct F16Elements : IElementLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Load<V>(byte* p, int i) where V : struct, IVec<V> => V.LoadHalf((ushort*)p + i);
    public static float LoadScalar(byte* p, int i) => (float)((Half*)p)[i];
}

internal unsafe struct Bf16Elements : IElementLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Load<V>(byte* p, int i) where V : struct, IVec<V> => V.LoadBf16((ushort*)p + i);
    public static float LoadScalar(byte* p, int i) => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16);
}

internal unsafe struct F8Elements : IElementLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Load<V>(byte* p, int i) where V : struct, IVec<V> => V.LoadF8(p + i);
    public static float LoadScalar(byte* p, int i) => Quantization.F8E4M3Table[p[i]];
}

/// <summary>
/// Dot products and decoding of float-like element types (F32, F16, BF16, F8_E4M3) against float32.
/// The vector kernels keep four accumulators, then one, then a scalar tail; the result depends only
/// on (values, length, path), so decoding a row first and dotting the F32 copy gives the same bits.
/// </summary>
internal static unsafe class FloatDot
{
    public static float Dot<TLoad>(byte* w, float* x, int n, KernelPath path) where TLoad : IElementLoader => path switch
    {
        KernelPath.V512 => Dot<Vec512, TLoad>(w, x, n),
        KernelPath.V256 => Dot<Vec256, TLoad>(w, x, n),
        KernelPath.V128 => Dot<Vec128, TLoad>(w, x, n),
        _ => DotScalar<TLoad>(w, x, n),
    };

    public static float DotScalar<TLoad>(byte* w, float* x, int n) where TLoad : IElementLoader
    {
        float s = 0;
        for (int i = 0; i < n; i++) s += TLoad.LoadScalar(w, i) * x[i];
        return s;
    }

    public static float Dot<V, TLoad>(byte* w, float* x, int n) where V : struct, IVec<V> where TLoad : IElementLoader
    {
        int c = V.Count, i = 0;
        V a0 = V.Zero, a1 = V.Zero, a2 = V.Zero, a3 = V.Zero;
        for (; i <= n - 4 * c; i += 4 * c)
        {
            a0 = V.Fma(TLoad.Load<V>(w, i), V.Load(x + i), a0);
            a1 = V.Fma(TLoad.Load<V>(w, i + c), V.Load(x + i + c), a1);
            a2 = V.Fma(TLoad.Load<V>(w, i + 2 * c), V.Load(x + i + 2 * c), a2);
            a3 = V.Fma(TLoad.Load<V>(w, i + 3 * c), V.Load(x + i + 3 * c), a3);
        }
        for (; i <= n - c; i += c)
            a0 = V.Fma(TLoad.Load<V>(w, i), V.Load(x + i), a0);
        float s = V.Sum(V.Add(V.Add(a0, a1), V.Add(a2, a3)));
        for (; i < n; i++) s += TLoad.LoadScalar(w, i) * x[i];
        return s;
    }

    /// <summary>Decodes n elements to float32.</summary>
    public static void Decode<TLoad>(byte* w, float* dst, int n, KernelPath path) where TLoad : IElementLoader
    {
        switch (path)
        {
            case KernelPath.V512: Decode<Vec512, TLoad>(w, dst, n); break;
            case KernelPath.V256: Decode<Vec256, TLoad>(w, dst, n); break;
            case KernelPath.V128: Decode<Vec128, TLoad>(w, dst, n); break;
            default:
                for (int i = 0; i < n; i++) dst[i] = TLoad.LoadScalar(w, i);
                break;
        }
    }

    static void Decode<V, TLoad>(byte* w, float* dst, int n) where V : struct, IVec<V> where TLoad : IElementLoader
    {
        int c = V.Count, i = 0;
        for (; i <= n - c; i += c) V.Store(TLoad.Load<V>(w, i), dst + i);
        for (; i < n; i++) dst[i] = TLoad.LoadScalar(w, i);
    }
}
