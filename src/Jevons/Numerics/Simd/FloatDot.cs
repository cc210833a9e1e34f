using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Jevons.Numerics.Simd;

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
    public static float LoadScalar(byte* p, int i) => FloatBits.HalfToFloat(((ushort*)p)[i]);
}

internal unsafe struct Bf16Elements : IElementLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Load<V>(byte* p, int i) where V : struct, IVec<V> => V.LoadBf16((ushort*)p + i);
    public static float LoadScalar(byte* p, int i) => FloatBits.Bf16ToFloat(((ushort*)p)[i]);
}

internal unsafe struct F8Elements : IElementLoader
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Load<V>(byte* p, int i) where V : struct, IVec<V> => V.LoadF8(p + i);
    public static float LoadScalar(byte* p, int i) => FloatBits.F8E4M3Table[p[i]];
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

    // FP8 E4M3 weights with block scales (DeepSeek-V3/R1: one scale per 128×128 block) are dotted in two steps.
    // PrepareF8 folds the scales of one row block into the activations once: x'[i] = x[i]·s[i / blockCols]
    // (times 2^(120-k) on the vector paths, see below). DotF8 then dots every row of that block with x'
    // as a plain dot, with no per-block reduction. On the vector paths a weight byte is decoded in three
    // integer ops: sign-extended to int32, shifted left by 20 and masked with 0x87F00000 it is a float32 whose
    // value is exactly the FP8 value times 2^-120 (FP8 subnormals land on float32 subnormals, which the FMA
    // multiplies exactly); x' carries the 2^120 back, less 2^k when max|x·s| is at least 2^7, which DotF8's
    // caller multiplies back in (PrepareF8 returns 2^k). Each product is the exactly rounded w·x·s.
    // A row holding a NaN byte (0x7F/0xFF) gives NaN.

    const float Two120 = 1.329228e36f; // 2^120

    /// <summary>
    /// x'[i] = x[i]·scales[i / blockCols] for the vector paths' <see cref="DotF8"/>, scaled by 2^(120-k); returns the
    /// factor 2^k the dot must be multiplied by (1 unless max|x·s| ≥ 2^7). The scalar path keeps plain x·s.
    /// </summary>
    public static float PrepareF8(float* x, float* xs, int n, int blockCols, float* scales, KernelPath path)
    {
        float amax = 0;
        for (int c = 0, k = 0; c < n; c += blockCols, k++)
        {
            int len = Math.Min(blockCols, n - c);
            float s = scales[k];
            for (int i = c; i < c + len; i++)
            {
                float v = x[i] * s;
                xs[i] = v;
                amax = MathF.Max(amax, MathF.Abs(v));
            }
        }
        if (path == KernelPath.Scalar) return 1;
        int e = float.IsFinite(amax) && amax >= 128 ? Math.ILogB(amax) - 6 : 0;
        float up = MathF.ScaleB(1, 120 - e);
        for (int i = 0; i < n; i++) xs[i] *= up;
        return MathF.ScaleB(1, e);
    }

    /// <summary>Σ w·x' for FP8 weights against activations from <see cref="PrepareF8"/> on the same path (NaN if w holds a NaN byte).</summary>
    public static float DotF8(byte* w, float* xs, int n, KernelPath path) =>
        F8HasNaN(w, n) ? float.NaN : DotF8Finite(w, xs, n, path);

    /// <summary><see cref="DotF8"/> for a row already scanned for NaN bytes (<see cref="F8HasNaN"/>).</summary>
    public static float DotF8Finite(byte* w, float* xs, int n, KernelPath path)
    {
        return path switch
        {
            KernelPath.V512 => DotF8<Vec512>(w, xs, n),
            KernelPath.V256 => DotF8<Vec256>(w, xs, n),
            KernelPath.V128 => DotF8<Vec128>(w, xs, n),
            _ => DotScalar<F8Elements>(w, xs, n),
        };
    }

    /// <summary>Σ_k s[k]·Σ_{i in block k} w[i]·x[i] (prepare + dot; for tests and one-off rows).</summary>
    public static float DotF8Scaled(byte* w, float* x, int n, int blockCols, float* scales, KernelPath path)
    {
        float[] xs = new float[n];
        fixed (float* pxs = xs)
        {
            float post = PrepareF8(x, pxs, n, blockCols, scales, path);
            return DotF8(w, pxs, n, path) * post;
        }
    }

    /// <summary>The float32 whose value is the finite FP8 byte's value times 2^-120.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float F8Tiny(byte b) => BitConverter.Int32BitsToSingle(((sbyte)b << 20) & unchecked((int)0x87F00000));

    static float DotF8<V>(byte* w, float* xs, int n) where V : struct, IVec<V>
    {
        int c = V.Count, i = 0;
        V a0 = V.Zero, a1 = V.Zero, a2 = V.Zero, a3 = V.Zero;
        for (; i <= n - 4 * c; i += 4 * c)
        {
            a0 = V.Fma(V.LoadF8Tiny(w + i), V.Load(xs + i), a0);
            a1 = V.Fma(V.LoadF8Tiny(w + i + c), V.Load(xs + i + c), a1);
            a2 = V.Fma(V.LoadF8Tiny(w + i + 2 * c), V.Load(xs + i + 2 * c), a2);
            a3 = V.Fma(V.LoadF8Tiny(w + i + 3 * c), V.Load(xs + i + 3 * c), a3);
        }
        for (; i <= n - c; i += c)
            a0 = V.Fma(V.LoadF8Tiny(w + i), V.Load(xs + i), a0);
        float s = V.Sum(V.Add(V.Add(a0, a1), V.Add(a2, a3)));
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(F8Tiny(w[i]), xs[i], s);
        return s;
    }

    /// <summary>True when any of the n bytes is an e4m3fn NaN (0x7F or 0xFF).</summary>
    public static bool F8HasNaN(byte* w, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var m = Vector512.Create((byte)0x7F);
            for (; i <= n - 64; i += 64)
                if (Vector512.EqualsAny(Vector512.Load(w + i) & m, m)) return true;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create((byte)0x7F);
            for (; i <= n - 32; i += 32)
                if (Vector256.EqualsAny(Vector256.Load(w + i) & m, m)) return true;
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var m = Vector128.Create((byte)0x7F);
            for (; i <= n - 16; i += 16)
                if (Vector128.EqualsAny(Vector128.Load(w + i) & m, m)) return true;
        }
        for (; i < n; i++)
            if ((w[i] & 0x7F) == 0x7F) return true;
        return false;
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
