using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Jevons.Numerics.Simd;

/// <summary>
/// The one-token dot of F16 weights in three integer ops a vector instead of a full half → float conversion
/// (.NET exposes no F16C intrinsic). A half sign-extended to int32, shifted left by 13 and masked with
/// 0x8FFFE000 is the float32 whose value is the half's value times 2^-112 — normal halves land on normal
/// floats, subnormal halves on float subnormals, both exactly — for every half but Inf and NaN (exponent
/// 31), which become finite. So the activations carry the 2^112 back (<see cref="Prepare"/>: x' = x·2^(112-e),
/// with e = 0 unless max|x| ≥ 2^14, where 2^e keeps x' finite and the caller multiplies it back), and each
/// row tracks the largest |half| it read: a row holding an Inf or NaN is dotted again the plain way
/// (<see cref="FloatDot.Dot{TLoad}"/>). With e = 0 every product w'·x' is the real number w·x, so the result
/// has the bits of <see cref="FloatDot.Dot{TLoad}"/> (same accumulators, same order, same tail); with e ≠ 0
/// only products in the float32 subnormal range can round differently.
/// </summary>
internal static unsafe class HalfDot
{
    /// <summary>True where <see cref="Dot"/> has a fast route (V512 with AVX-512F, V256 with AVX2 + FMA).</summary>
    public static bool Has(KernelPath path) =>
        path == KernelPath.V512 ? Avx512F.IsSupported && Avx512BW.IsSupported
        : path == KernelPath.V256 && Avx2.IsSupported && Fma.IsSupported;

    const float Two112 = 5.192297e33f; // 2^112

    /// <summary>x'[i] = x[i]·2^(112-e); returns 2^e, the factor the dot of x' is multiplied by (1 unless max|x| ≥ 2^14).</summary>
    public static float Prepare(float* x, float* xs, int n)
    {
        float amax = 0;
        for (int i = 0; i < n; i++) amax = MathF.Max(amax, MathF.Abs(x[i]));
        int e = float.IsFinite(amax) && amax >= 16384 ? Math.ILogB(amax) - 13 : 0;
        float up = MathF.ScaleB(1, 112 - e);
        System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(x, n), up, new Span<float>(xs, n));
        return MathF.ScaleB(1, e);
    }

    /// <summary>
    /// Σ w·x over n halves: <paramref name="xs"/> from <see cref="Prepare"/> (post its result), <paramref name="x"/>
    /// the activations themselves (for the tail and for a row holding an Inf or NaN). A path the CPU lacks (forced
    /// or emulated) takes the plain dot, which has the same bits.
    /// </summary>
    public static float Dot(byte* w, float* xs, float* x, int n, float post, KernelPath path) =>
        !Has(path) ? FloatDot.Dot<F16Elements>(w, x, n, path)
        : path == KernelPath.V512 ? Dot512(w, xs, x, n, post)
        : Dot256(w, xs, x, n, post);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Tiny512(short* p) =>
        (Avx512F.ConvertToVector512Int32(Vector256.Load(p)) << 13 & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Tiny256(short* p) =>
        (Avx2.ConvertToVector256Int32(p) << 13 & Vector256.Create(unchecked((int)0x8FFFE000))).AsSingle();

    /// <summary>Halves whose |h| (doubled, the sign shifted out) reaches this are Inf or NaN.</summary>
    const ushort SpecialTwice = 0xF800;

    static float Dot512(byte* w, float* xs, float* x, int n, float post)
    {
        short* h = (short*)w;
        const int c = 16;
        int i = 0;
        var a0 = Vector512<float>.Zero;
        var a1 = Vector512<float>.Zero;
        var a2 = Vector512<float>.Zero;
        var a3 = Vector512<float>.Zero;
        var top = Vector512<ushort>.Zero;
        for (; i <= n - 4 * c; i += 4 * c)
        {
            top = Vector512.Max(top, Vector512.Load((ushort*)h + i) << 1);
            top = Vector512.Max(top, Vector512.Load((ushort*)h + i + 2 * c) << 1);
            a0 = Vector512.FusedMultiplyAdd(Tiny512(h + i), Vector512.Load(xs + i), a0);
            a1 = Vector512.FusedMultiplyAdd(Tiny512(h + i + c), Vector512.Load(xs + i + c), a1);
            a2 = Vector512.FusedMultiplyAdd(Tiny512(h + i + 2 * c), Vector512.Load(xs + i + 2 * c), a2);
            a3 = Vector512.FusedMultiplyAdd(Tiny512(h + i + 3 * c), Vector512.Load(xs + i + 3 * c), a3);
        }
        var top2 = Vector256<ushort>.Zero;
        for (; i <= n - c; i += c)
        {
            top2 = Vector256.Max(top2, Vector256.Load((ushort*)h + i) << 1);
            a0 = Vector512.FusedMultiplyAdd(Tiny512(h + i), Vector512.Load(xs + i), a0);
        }
        if (Vector512.GreaterThanOrEqualAny(top, Vector512.Create(SpecialTwice))
            || Vector256.GreaterThanOrEqualAny(top2, Vector256.Create(SpecialTwice)))
            return FloatDot.Dot<Vec512, F16Elements>(w, x, n);
        float s = Vector512.Sum(a0 + a1 + (a2 + a3)) * post;
        for (; i < n; i++) s += F16Elements.LoadScalar(w, i) * x[i];
        return s;
    }

    static float Dot256(byte* w, float* xs, float* x, int n, float post)
    {
        short* h = (short*)w;
        const int c = 8;
        int i = 0;
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero;
        var a3 = Vector256<float>.Zero;
        var top = Vector256<ushort>.Zero;
        for (; i <= n - 4 * c; i += 4 * c)
        {
            top = Vector256.Max(top, Vector256.Load((ushort*)h + i) << 1);
            top = Vector256.Max(top, Vector256.Load((ushort*)h + i + 2 * c) << 1);
            a0 = Vector256.FusedMultiplyAdd(Tiny256(h + i), Vector256.Load(xs + i), a0);
            a1 = Vector256.FusedMultiplyAdd(Tiny256(h + i + c), Vector256.Load(xs + i + c), a1);
            a2 = Vector256.FusedMultiplyAdd(Tiny256(h + i + 2 * c), Vector256.Load(xs + i + 2 * c), a2);
            a3 = Vector256.FusedMultiplyAdd(Tiny256(h + i + 3 * c), Vector256.Load(xs + i + 3 * c), a3);
        }
        var top2 = Vector128<ushort>.Zero;
        for (; i <= n - c; i += c)
        {
            top2 = Vector128.Max(top2, Vector128.Load((ushort*)h + i) << 1);
            a0 = Vector256.FusedMultiplyAdd(Tiny256(h + i), Vector256.Load(xs + i), a0);
        }
        if (Vector256.GreaterThanOrEqualAny(top, Vector256.Create(SpecialTwice))
            || Vector128.GreaterThanOrEqualAny(top2, Vector128.Create(SpecialTwice)))
            return FloatDot.Dot<Vec256, F16Elements>(w, x, n);
        float s = Vector256.Sum(a0 + a1 + (a2 + a3)) * post;
        for (; i < n; i++) s += F16Elements.LoadScalar(w, i) * x[i];
        return s;
    }
}
