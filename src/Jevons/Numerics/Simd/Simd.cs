using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Jevons.Numerics.Simd;

/// <summary>
/// One vector width as an operator struct, so a kernel is written once as a generic method over
/// <typeparamref name="TSelf"/> and the JIT specialises it for 128, 256 and 512 bits.
/// </summary>
internal unsafe interface IVec<TSelf> where TSelf : struct, IVec<TSelf>
{
    static abstract int Count { get; }
    static abstract TSelf Zero { get; }
    static abstract TSelf Splat(float v);
    static abstract TSelf Load(float* p);
    static abstract void Store(TSelf v, float* p);
    static abstract TSelf Add(TSelf a, TSelf b);
    static abstract TSelf Sub(TSelf a, TSelf b);
    static abstract TSelf Mul(TSelf a, TSelf b);
    static abstract TSelf Div(TSelf a, TSelf b);
    /// <summary>a·b + c, fused.</summary>
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract TSelf Max(TSelf a, TSelf b);
    static abstract TSelf Exp(TSelf a);
    static abstract float Sum(TSelf a);
    /// <summary>The sums of four vectors at once, [Σa, Σb, Σc, Σd] (pairwise adds: other bits than four <see cref="Sum"/>s).</summary>
    static abstract Vector128<float> Sum4(TSelf a, TSelf b, TSelf c, TSelf d);
    static abstract float MaxAcross(TSelf a);
    /// <summary>Count IEEE half values (raw bits) widened to float.</summary>
    static abstract TSelf LoadHalf(ushort* p);
    /// <summary>Count bfloat16 values (raw bits) widened to float.</summary>
    static abstract TSelf LoadBf16(ushort* p);
    /// <summary>Count FP8 E4M3 (e4m3fn) bytes decoded to float.</summary>
    static abstract TSelf LoadF8(byte* p);
    /// <summary>Count finite FP8 bytes as float32 values 2^-120 times theirs (sign-extend, shift, mask: see FloatDot.PrepareF8).</summary>
    static abstract TSelf LoadF8Tiny(byte* p);
}

/// <summary>Bit-level decoders shared by the vector widths (all exact).</summary>
internal static class VecBits
{
    /// <summary>[Σa, Σb, Σc, Σd] of four 4-float vectors by pairwise adds: (a0+a1)+(a2+a3) for each, on every route.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d) =>
        Sum4(a.GetLower() + a.GetUpper(), b.GetLower() + b.GetUpper(), c.GetLower() + c.GetUpper(), d.GetLower() + d.GetUpper());

    /// <summary>[Σa, Σb, Σc, Σd] of four 4-float vectors by pairwise adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector128<float> a, Vector128<float> b, Vector128<float> c, Vector128<float> d)
    {
        if (Sse3.IsSupported) return Sse3.HorizontalAdd(Sse3.HorizontalAdd(a, b), Sse3.HorizontalAdd(c, d));
        if (System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.IsSupported)
        {
            var ab = System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.AddPairwise(a, b);
            var cd = System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.AddPairwise(c, d);
            return System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.AddPairwise(ab, cd);
        }
        return Vector128.Create((a[0] + a[1]) + (a[2] + a[3]), (b[0] + b[1]) + (b[2] + b[3]), (c[0] + c[1]) + (c[2] + c[3]), (d[0] + d[1]) + (d[2] + d[3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max4(Vector128<float> v) => MathF.Max(MathF.Max(v[0], v[1]), MathF.Max(v[2], v[3]));

    // half -> float: place exponent+mantissa at float position and rescale by 2^112 (exact for normals and
    // subnormals); Inf/NaN (exponent 31) get the float's all-ones exponent.
    const uint HalfMagic = 0x77800000; // 2^112

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> HalfToFloat(Vector128<uint> h)
    {
        var em = h & Vector128.Create(0x7FFFu);
        var sign = (h & Vector128.Create(0x8000u)) << 16;
        var f = (em << 13).AsSingle() * Vector128.Create(HalfMagic).AsSingle();
        var special = Vector128.GreaterThanOrEqual(em, Vector128.Create(0x7C00u));
        var bits = Vector128.ConditionalSelect(special, (em << 13) | Vector128.Create(0x7F800000u), f.AsUInt32());
        return (bits | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> HalfToFloat(Vector256<uint> h)
    {
        var em = h & Vector256.Create(0x7FFFu);
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var f = (em << 13).AsSingle() * Vector256.Create(HalfMagic).AsSingle();
        var special = Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7C00u));
        var bits = Vector256.ConditionalSelect(special, (em << 13) | Vector256.Create(0x7F800000u), f.AsUInt32());
        return (bits | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> HalfToFloat(Vector512<uint> h)
    {
        var em = h & Vector512.Create(0x7FFFu);
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var f = (em << 13).AsSingle() * Vector512.Create(HalfMagic).AsSingle();
        var special = Vector512.GreaterThanOrEqual(em, Vector512.Create(0x7C00u));
        var bits = Vector512.ConditionalSelect(special, (em << 13) | Vector512.Create(0x7F800000u), f.AsUInt32());
        return (bits | sign).AsSingle();
    }

    // e4m3fn -> float: same trick, exponent bias 7 -> 127 is 2^120; 0x7F/0xFF are NaN, there is no Inf.
    const uint F8Magic = 0x7B800000; // 2^120

    /// <summary>e4m3fn bytes (zero-extended to 32 bits) to float; 0x7F/0xFF are NaN, there is no Inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> F8ToFloat(Vector128<uint> b)
    {
        var f = F8FiniteToFloat((b << 24).AsInt32() >> 24);
        var nan = Vector128.Equals(b & Vector128.Create(0x7Fu), Vector128.Create(0x7Fu)).AsSingle();
        return Vector128.ConditionalSelect(nan, Vector128.Create(float.NaN), f);
    }

    /// <summary>e4m3fn bytes (zero-extended to 32 bits) to float; 0x7F/0xFF are NaN, there is no Inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> F8ToFloat(Vector256<uint> b)
    {
        var f = F8FiniteToFloat((b << 24).AsInt32() >> 24);
        var nan = Vector256.Equals(b & Vector256.Create(0x7Fu), Vector256.Create(0x7Fu)).AsSingle();
        return Vector256.ConditionalSelect(nan, Vector256.Create(float.NaN), f);
    }

    /// <summary>e4m3fn bytes (zero-extended to 32 bits) to float; 0x7F/0xFF are NaN, there is no Inf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F8ToFloat(Vector512<uint> b)
    {
        var f = F8FiniteToFloat((b << 24).AsInt32() >> 24);
        var nan = Vector512.Equals(b & Vector512.Create(0x7Fu), Vector512.Create(0x7Fu)).AsSingle();
        return Vector512.ConditionalSelect(nan, Vector512.Create(float.NaN), f);
    }

    const int F8TinyMask = unchecked((int)0x87F00000);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F8Tiny(int sx) => BitConverter.Int32BitsToSingle((sx << 20) & F8TinyMask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> F8Tiny(Vector128<int> sx) => ((sx << 20) & Vector128.Create(F8TinyMask)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> F8Tiny(Vector256<int> sx) => ((sx << 20) & Vector256.Create(F8TinyMask)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F8Tiny(Vector512<int> sx) => ((sx << 20) & Vector512.Create(F8TinyMask)).AsSingle();

    // Finite e4m3fn -> float without touching float subnormals (a multiply by 2^120 of a float32 subnormal
    // costs a microcode assist per vector on x86). t = byte sign-extended to int32 << 20 holds the sign in
    // bit 31 and exponent+mantissa in bits 20..26 (mag). mag + (120 << 23) is the value for exponents 1..15;
    // for exponent 0 (zero and FP8 subnormals, m·2^-9) mag + (121 << 23) is 2^-6·(1 + m/8), minus 2^-6 exactly.
    const int F8SignMask = unchecked((int)0x80000000), F8MagMask = 0x07F00000, F8Bias = 120 << 23, F8SubBias = 121 << 23,
        F8MinNormal = 1 << 23;
    const float F8SubOffset = 0.015625f; // 2^-6

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> F8FiniteToFloat(Vector128<int> sx)
    {
        var t = sx << 20;
        var mag = t & Vector128.Create(F8MagMask);
        var normal = mag + Vector128.Create(F8Bias);
        var sub = (mag + Vector128.Create(F8SubBias)).AsSingle() - Vector128.Create(F8SubOffset);
        var r = Vector128.ConditionalSelect(Vector128.LessThan(mag, Vector128.Create(F8MinNormal)).AsSingle(), sub, normal.AsSingle());
        return r | (t & Vector128.Create(F8SignMask)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> F8FiniteToFloat(Vector256<int> sx)
    {
        var t = sx << 20;
        var mag = t & Vector256.Create(F8MagMask);
        var normal = mag + Vector256.Create(F8Bias);
        var sub = (mag + Vector256.Create(F8SubBias)).AsSingle() - Vector256.Create(F8SubOffset);
        var r = Vector256.ConditionalSelect(Vector256.LessThan(mag, Vector256.Create(F8MinNormal)).AsSingle(), sub, normal.AsSingle());
        return r | (t & Vector256.Create(F8SignMask)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> F8FiniteToFloat(Vector512<int> sx)
    {
        var t = sx << 20;
        var mag = t & Vector512.Create(F8MagMask);
        var normal = mag + Vector512.Create(F8Bias);
        var sub = (mag + Vector512.Create(F8SubBias)).AsSingle() - Vector512.Create(F8SubOffset);
        var r = Vector512.ConditionalSelect(Vector512.LessThan(mag, Vector512.Create(F8MinNormal)).AsSingle(), sub, normal.AsSingle());
        return r | (t & Vector512.Create(F8SignMask)).AsSingle();
    }
}

/// <summary>One lane: the scalar path (<see cref="KernelPath.Scalar"/>) of a kernel written once over <see cref="IVec{TSelf}"/>.</summary>
internal readonly unsafe struct Vec1 : IVec<Vec1>
{
    readonly float v;
    Vec1(float v) => this.v = v;
    public static int Count => 1;
    public static Vec1 Zero => new(0);
    public static Vec1 Splat(float s) => new(s);
    public static Vec1 Load(float* p) => new(*p);
    public static void Store(Vec1 a, float* p) => *p = a.v;
    public static Vec1 Add(Vec1 a, Vec1 b) => new(a.v + b.v);
    public static Vec1 Sub(Vec1 a, Vec1 b) => new(a.v - b.v);
    public static Vec1 Mul(Vec1 a, Vec1 b) => new(a.v * b.v);
    public static Vec1 Div(Vec1 a, Vec1 b) => new(a.v / b.v);
    public static Vec1 Fma(Vec1 a, Vec1 b, Vec1 c) => new(MathF.FusedMultiplyAdd(a.v, b.v, c.v));
    public static Vec1 Max(Vec1 a, Vec1 b) => new(MathF.Max(a.v, b.v));
    public static Vec1 Exp(Vec1 a) => new(MathF.Exp(a.v));
    public static float Sum(Vec1 a) => a.v;
    public static Vector128<float> Sum4(Vec1 a, Vec1 b, Vec1 c, Vec1 d) => Vector128.Create(a.v, b.v, c.v, d.v);
    public static float MaxAcross(Vec1 a) => a.v;
    public static Vec1 LoadHalf(ushort* p) => new((float)BitConverter.UInt16BitsToHalf(*p));
    public static Vec1 LoadBf16(ushort* p) => new(BitConverter.Int32BitsToSingle(*p << 16));
    public static Vec1 LoadF8(byte* p) => new(FloatBits.F8E4M3Table[*p]);
    public static Vec1 LoadF8Tiny(byte* p) => new(VecBits.F8Tiny(*(sbyte*)p));
}

internal readonly unsafe struct Vec128 : IVec<Vec128>
{
    readonly Vector128<float> v;
    Vec128(Vector128<float> v) => this.v = v;
    public static int Count => 4;
    public static Vec128 Zero => new(Vector128<float>.Zero);
    public static Vec128 Splat(float s) => new(Vector128.Create(s));
    public static Vec128 Load(float* p) => new(Vector128.Load(p));
    public static void Store(Vec128 a, float* p) => a.v.Store(p);
    public static Vec128 Add(Vec128 a, Vec128 b) => new(a.v + b.v);
    public static Vec128 Sub(Vec128 a, Vec128 b) => new(a.v - b.v);
    public static Vec128 Mul(Vec128 a, Vec128 b) => new(a.v * b.v);
    public static Vec128 Div(Vec128 a, Vec128 b) => new(a.v / b.v);
    public static Vec128 Fma(Vec128 a, Vec128 b, Vec128 c) => new(Vector128.FusedMultiplyAdd(a.v, b.v, c.v));
    public static Vec128 Max(Vec128 a, Vec128 b) => new(Vector128.Max(a.v, b.v));
    public static Vec128 Exp(Vec128 a) => new(Vector128.Exp(a.v));
    public static float Sum(Vec128 a) => Vector128.Sum(a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vec128 a, Vec128 b, Vec128 c, Vec128 d) => VecBits.Sum4(a.v, b.v, c.v, d.v);
    public static float MaxAcross(Vec128 a) => VecBits.Max4(a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 LoadHalf(ushort* p) => new(VecBits.HalfToFloat(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsUInt16())));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 LoadBf16(ushort* p) => new((Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsUInt16()) << 16).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 LoadF8(byte* p) =>
        new(VecBits.F8ToFloat(Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(uint*)p).AsByte()))));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128 LoadF8Tiny(byte* p) => new(VecBits.F8Tiny(SignExtend(p)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<int> SignExtend(byte* p) => Sse41.IsSupported
        ? Sse41.ConvertToVector128Int32((sbyte*)p)
        : Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(uint*)p).AsSByte()));
}

internal readonly unsafe struct Vec256 : IVec<Vec256>
{
    readonly Vector256<float> v;
    Vec256(Vector256<float> v) => this.v = v;
    public static int Count => 8;
    public static Vec256 Zero => new(Vector256<float>.Zero);
    public static Vec256 Splat(float s) => new(Vector256.Create(s));
    public static Vec256 Load(float* p) => new(Vector256.Load(p));
    public static void Store(Vec256 a, float* p) => a.v.Store(p);
    public static Vec256 Add(Vec256 a, Vec256 b) => new(a.v + b.v);
    public static Vec256 Sub(Vec256 a, Vec256 b) => new(a.v - b.v);
    public static Vec256 Mul(Vec256 a, Vec256 b) => new(a.v * b.v);
    public static Vec256 Div(Vec256 a, Vec256 b) => new(a.v / b.v);
    public static Vec256 Fma(Vec256 a, Vec256 b, Vec256 c) => new(Vector256.FusedMultiplyAdd(a.v, b.v, c.v));
    public static Vec256 Max(Vec256 a, Vec256 b) => new(Vector256.Max(a.v, b.v));
    public static Vec256 Exp(Vec256 a) => new(Vector256.Exp(a.v));
    public static float Sum(Vec256 a) => Vector256.Sum(a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vec256 a, Vec256 b, Vec256 c, Vec256 d) => VecBits.Sum4(a.v, b.v, c.v, d.v);
    public static float MaxAcross(Vec256 a) => VecBits.Max4(Vector128.Max(a.v.GetLower(), a.v.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 LoadHalf(ushort* p)
    {
        var (lo, hi) = Vector128.Widen(Vector128.Load(p));
        return new(VecBits.HalfToFloat(Vector256.Create(lo, hi)));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 LoadBf16(ushort* p)
    {
        if (Avx2.IsSupported) return new((Avx2.ConvertToVector256Int32(p) << 16).AsSingle());
        var (lo, hi) = Vector128.Widen(Vector128.Load(p));
        return new((Vector256.Create(lo, hi) << 16).AsSingle());
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 LoadF8(byte* p)
    {
        var w = Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsByte());
        var (lo, hi) = Vector128.Widen(w);
        return new(VecBits.F8ToFloat(Vector256.Create(lo, hi)));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256 LoadF8Tiny(byte* p) => new(VecBits.F8Tiny(SignExtend(p)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> SignExtend(byte* p)
    {
        if (Avx2.IsSupported) return Avx2.ConvertToVector256Int32((sbyte*)p);
        var (lo, hi) = Vector128.Widen(Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)p).AsSByte()));
        return Vector256.Create(lo, hi);
    }
}

internal readonly unsafe struct Vec512 : IVec<Vec512>
{
    readonly Vector512<float> v;
    Vec512(Vector512<float> v) => this.v = v;
    public static int Count => 16;
    public static Vec512 Zero => new(Vector512<float>.Zero);
    public static Vec512 Splat(float s) => new(Vector512.Create(s));
    public static Vec512 Load(float* p) => new(Vector512.Load(p));
    public static void Store(Vec512 a, float* p) => a.v.Store(p);
    public static Vec512 Add(Vec512 a, Vec512 b) => new(a.v + b.v);
    public static Vec512 Sub(Vec512 a, Vec512 b) => new(a.v - b.v);
    public static Vec512 Mul(Vec512 a, Vec512 b) => new(a.v * b.v);
    public static Vec512 Div(Vec512 a, Vec512 b) => new(a.v / b.v);
    public static Vec512 Fma(Vec512 a, Vec512 b, Vec512 c) => new(Vector512.FusedMultiplyAdd(a.v, b.v, c.v));
    public static Vec512 Max(Vec512 a, Vec512 b) => new(Vector512.Max(a.v, b.v));
    public static Vec512 Exp(Vec512 a) => new(Vector512.Exp(a.v));
    public static float Sum(Vec512 a) => Vector512.Sum(a.v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vec512 a, Vec512 b, Vec512 c, Vec512 d) =>
        VecBits.Sum4(a.v.GetLower() + a.v.GetUpper(), b.v.GetLower() + b.v.GetUpper(), c.v.GetLower() + c.v.GetUpper(), d.v.GetLower() + d.v.GetUpper());
    public static float MaxAcross(Vec512 a)
    {
        var m = Vector256.Max(a.v.GetLower(), a.v.GetUpper());
        return VecBits.Max4(Vector128.Max(m.GetLower(), m.GetUpper()));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 LoadHalf(ushort* p)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Load(p));
        return new(VecBits.HalfToFloat(Vector512.Create(lo, hi)));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 LoadBf16(ushort* p)
    {
        if (Avx512F.IsSupported) return new((Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle());
        var (lo, hi) = Vector256.Widen(Vector256.Load(p));
        return new((Vector512.Create(lo, hi) << 16).AsSingle());
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 LoadF8(byte* p)
    {
        var (a, b) = Vector128.Widen(Vector128.Load(p));
        var (l0, l1) = Vector128.Widen(a);
        var (h0, h1) = Vector128.Widen(b);
        return new(VecBits.F8ToFloat(Vector512.Create(Vector256.Create(l0, l1), Vector256.Create(h0, h1))));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512 LoadF8Tiny(byte* p) => new(VecBits.F8Tiny(SignExtend(p)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<int> SignExtend(byte* p)
    {
        if (Avx512F.IsSupported) return Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)p));
        var (a, b) = Vector128.Widen(Vector128.Load((sbyte*)p));
        var (l0, l1) = Vector128.Widen(a);
        var (h0, h1) = Vector128.Widen(b);
        return Vector512.Create(Vector256.Create(l0, l1), Vector256.Create(h0, h1));
    }
}
