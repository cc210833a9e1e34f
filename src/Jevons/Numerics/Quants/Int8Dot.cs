using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Quants;

/// <summary>A 32-element block format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): d [, m] and 32 small integers.</summary>
internal unsafe interface ILegacyBlock
{
    static abstract int Bytes { get; }
    static abstract bool HasMin { get; }
    static abstract float Scale(byte* b);
    static abstract float Min(byte* b);
    /// <summary>The 32 integer values in element order (w = d·q [+ m]).</summary>
    static abstract void Unpack(byte* b, sbyte* q);
    static abstract Vector256<sbyte> Unpack256(byte* b);
    /// <summary>The 32 integer values in both halves of a 512-bit vector (AVX-512F).</summary>
    static abstract Vector512<sbyte> Unpack512Twice(byte* b);
}

/// <summary>A 256-element k-quant super-block, seen as 16 groups of 16: w = d·sc·u − dmin·mn, u unsigned (0..63).</summary>
internal unsafe interface IKBlock
{
    static abstract int Bytes { get; }
    static abstract void Unpack(byte* b, byte* u, short* sc, short* mn, out float d, out float dmin, bool vector);
}

/// <summary>A k-quant with four-row one-token dots (<see cref="KQuantDots"/>): one and two tokens per pass.</summary>
internal unsafe interface IKRows4
{
    static abstract void DotRows4(byte* w, long rowBytes, byte* xq, int blocks, float* result);
    static abstract void DotRows4x2(byte* w, long rowBytes, byte* xq0, byte* xq1, int blocks, float* result);

    /// <summary>The largest batch for which the four-row dots beat the register tiles (the format's own measured bound).</summary>
    static abstract int Rows4Batch { get; }
}

/// <summary>
/// Integer dot products of weight blocks with int8-quantised activations. All integer sums are exact,
/// and the float combination is the same code on every path, so every path gives the same bits.
/// </summary>
internal static unsafe class Int8Dot
{
    /// <summary>The horizontal sum of 8 lanes in the order of llama.cpp's hsum_float_8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum8(float* a)
    {
        float r0 = a[0] + a[4], r1 = a[1] + a[5], r2 = a[2] + a[6], r3 = a[3] + a[7];
        return (r0 + r2) + (r1 + r3);
    }

    /// <summary>
    /// Σ w·x for 32-element blocks against Q8_0 activations, in llama.cpp's order: 8 lanes, lane k holds
    /// Σ fma(d_w·d_x, Σ_{i=4k..4k+3} q_w·q_x). For Q8_0/Q4_0/Q5_0 this reproduces ggml_vec_dot_*_q8_0 (AVX2) bit for bit.
    /// </summary>
    public static float DotQ8_0<T>(byte* w, byte* xq, int blocks, KernelPath path) where T : ILegacyBlock
    {
        float* acc = stackalloc float[8];
        new Span<float>(acc, 8).Clear();
        float summ = 0;
        if (path >= KernelPath.V256 && Avx2.IsSupported && Fma.IsSupported)
        {
            var vacc = Vector256<float>.Zero;
            var ones = Vector256.Create((short)1);
            for (int b = 0; b < blocks; b++)
            {
                byte* wb = w + b * T.Bytes, xb = xq + b * 34;
                var qw = T.Unpack256(wb);
                var qx = Vector256.Load((sbyte*)(xb + 2));
                var p = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(qw, qw).AsByte(), Avx2.Sign(qx, qw)), ones);
                float dx = BlockBits.F16(xb);
                vacc = Fma.MultiplyAdd(Vector256.Create(T.Scale(wb) * dx), Avx.ConvertToVector256Single(p), vacc);
                if (T.HasMin) summ += T.Min(wb) * dx * SumQ((sbyte*)(xb + 2));
            }
            vacc.Store(acc);
            return HSum8(acc) + summ;
        }

        sbyte* q = stackalloc sbyte[32];
        int* lanes = stackalloc int[8];
        bool sse = path >= KernelPath.V128 && Ssse3.IsSupported;
        for (int b = 0; b < blocks; b++)
        {
            byte* wb = w + b * T.Bytes, xb = xq + b * 34;
            T.Unpack(wb, q);
            sbyte* qx = (sbyte*)(xb + 2);
            if (sse)
            {
                var ones = Vector128.Create((short)1);
                for (int h = 0; h < 2; h++)
                {
                    var a = Vector128.Load(q + 16 * h);
                    var x = Vector128.Load(qx + 16 * h);
                    var p = Sse2.MultiplyAddAdjacent(Ssse3.MultiplyAddAdjacent(Ssse3.Abs(a), Ssse3.Sign(x, a)), ones);
                    p.Store(lanes + 4 * h);
                }
            }
            else
            {
                for (int k = 0; k < 8; k++)
                {
                    int s = 0;
                    for (int i = 4 * k; i < 4 * k + 4; i++) s += q[i] * qx[i];
                    lanes[k] = s;
                }
            }
            float dx = BlockBits.F16(xb);
            float dd = T.Scale(wb) * dx;
            for (int k = 0; k < 8; k++) acc[k] = MathF.FusedMultiplyAdd(dd, lanes[k], acc[k]);
            if (T.HasMin) summ += T.Min(wb) * dx * SumQ(qx);
        }
        return HSum8(acc) + summ;
    }

    /// <summary>True where <see cref="DotQ8_0Rows4{T}"/> runs (AVX2 + FMA on V256/V512).</summary>
    public static bool HasRows4(KernelPath path) => path >= KernelPath.V256 && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>The activation block scales d_x (fp16 at the head of each 34-byte Q8_0 block) as float32, once per call.</summary>
    public static void ActivationScales(byte* xq, float* dx, int blocks)
    {
        for (int b = 0; b < blocks; b++) dx[b] = BlockBits.F16(xq + b * 34);
    }

    /// <summary>
    /// Four rows of <see cref="DotQ8_0{T}"/> in one pass over the activations (AVX2 path only): the activation
    /// block and its scale <paramref name="dx"/> (from <see cref="ActivationScales"/>) are loaded once for the four
    /// rows, and each row keeps its own accumulator chain in exactly the order of the one-row dot, so every
    /// result has the same bits as <see cref="DotQ8_0{T}"/> for that row.
    /// </summary>
    public static void DotQ8_0Rows4<T>(byte* w, long rowBytes, byte* xq, float* dx, int blocks, float* result) where T : ILegacyBlock
    {
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero;
        var a3 = Vector256<float>.Zero;
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        var ones = Vector256.Create((short)1);
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        int b = 0;
        if (!T.HasMin)
        {
            // eight blocks at a time: each row's eight fp16 scales (d at offset 0 of every 32-element block) are
            // loaded, converted and multiplied by d_x as one vector; block k then takes lane k. Same products,
            // same order as the scalar d_w·d_x below.
            long ahead = 4 * rowBytes;
            for (; b + 8 <= blocks; b += 8)
            {
                long off = (long)b * T.Bytes;
                byte* c0 = w0 + off, c1 = w1 + off, c2 = w2 + off, c3 = w3 + off;
                var d8 = Vector256.Load(dx + b);
                var s0 = Scales8<T>(c0) * d8;
                var s1 = Scales8<T>(c1) * d8;
                var s2 = Scales8<T>(c2) * d8;
                var s3 = Scales8<T>(c3) * d8;
                for (int k = 0; k < 8; k++)
                {
                    int o = k * T.Bytes;
                    // the next four rows (contiguous after these) at the same offset: short rows make four
                    // interleaved streams too short for the hardware prefetcher to train on
                    Sse.Prefetch1(c0 + o + ahead);
                    Sse.Prefetch1(c1 + o + ahead);
                    Sse.Prefetch1(c2 + o + ahead);
                    Sse.Prefetch1(c3 + o + ahead);
                    var qx = Vector256.Load((sbyte*)(xq + (b + k) * 34 + 2));
                    var q0 = T.Unpack256(c0 + o);
                    var q1 = T.Unpack256(c1 + o);
                    var q2 = T.Unpack256(c2 + o);
                    var q3 = T.Unpack256(c3 + o);
                    var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q0, q0).AsByte(), Avx2.Sign(qx, q0)), ones);
                    var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q1, q1).AsByte(), Avx2.Sign(qx, q1)), ones);
                    var p2 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q2, q2).AsByte(), Avx2.Sign(qx, q2)), ones);
                    var p3 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q3, q3).AsByte(), Avx2.Sign(qx, q3)), ones);
                    var lane = Vector256.Create(k);
                    a0 = Fma.MultiplyAdd(Avx2.PermuteVar8x32(s0, lane), Avx.ConvertToVector256Single(p0), a0);
                    a1 = Fma.MultiplyAdd(Avx2.PermuteVar8x32(s1, lane), Avx.ConvertToVector256Single(p1), a1);
                    a2 = Fma.MultiplyAdd(Avx2.PermuteVar8x32(s2, lane), Avx.ConvertToVector256Single(p2), a2);
                    a3 = Fma.MultiplyAdd(Avx2.PermuteVar8x32(s3, lane), Avx.ConvertToVector256Single(p3), a3);
                }
            }
        }
        for (; b < blocks; b++)
        {
            long off = (long)b * T.Bytes;
            byte* xb = xq + b * 34;
            var qx = Vector256.Load((sbyte*)(xb + 2));
            float d = dx[b];
            byte* b0 = w0 + off, b1 = w1 + off, b2 = w2 + off, b3 = w3 + off;
            var q0 = T.Unpack256(b0);
            var q1 = T.Unpack256(b1);
            var q2 = T.Unpack256(b2);
            var q3 = T.Unpack256(b3);
            var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q0, q0).AsByte(), Avx2.Sign(qx, q0)), ones);
            var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q1, q1).AsByte(), Avx2.Sign(qx, q1)), ones);
            var p2 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q2, q2).AsByte(), Avx2.Sign(qx, q2)), ones);
            var p3 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Sign(q3, q3).AsByte(), Avx2.Sign(qx, q3)), ones);
            a0 = Fma.MultiplyAdd(Vector256.Create(T.Scale(b0) * d), Avx.ConvertToVector256Single(p0), a0);
            a1 = Fma.MultiplyAdd(Vector256.Create(T.Scale(b1) * d), Avx.ConvertToVector256Single(p1), a1);
            a2 = Fma.MultiplyAdd(Vector256.Create(T.Scale(b2) * d), Avx.ConvertToVector256Single(p2), a2);
            a3 = Fma.MultiplyAdd(Vector256.Create(T.Scale(b3) * d), Avx.ConvertToVector256Single(p3), a3);
            if (T.HasMin)
            {
                int sq = SumQ((sbyte*)(xb + 2));
                m0 += T.Min(b0) * d * sq;
                m1 += T.Min(b1) * d * sq;
                m2 += T.Min(b2) * d * sq;
                m3 += T.Min(b3) * d * sq;
            }
        }
        float* acc = stackalloc float[32];
        a0.Store(acc);
        a1.Store(acc + 8);
        a2.Store(acc + 16);
        a3.Store(acc + 24);
        result[0] = HSum8(acc) + m0;
        result[1] = HSum8(acc + 8) + m1;
        result[2] = HSum8(acc + 16) + m2;
        result[3] = HSum8(acc + 24) + m3;
    }

    /// <summary>The fp16 scales d (offset 0) of eight consecutive blocks as float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Scales8<T>(byte* c) where T : ILegacyBlock
    {
        var h = Vector128.Create(*(ushort*)c, *(ushort*)(c + T.Bytes), *(ushort*)(c + 2 * T.Bytes), *(ushort*)(c + 3 * T.Bytes),
            *(ushort*)(c + 4 * T.Bytes), *(ushort*)(c + 5 * T.Bytes), *(ushort*)(c + 6 * T.Bytes), *(ushort*)(c + 7 * T.Bytes));
        return VecBits.HalfToFloat(Vector256.WidenLower(h.ToVector256Unsafe()).AsUInt32());
    }

    static int SumQ(sbyte* q)
    {
        int s = 0;
        for (int i = 0; i < 32; i++) s += q[i];
        return s;
    }

    /// <summary>Σ w·x for k-quant super-blocks against Q8_K activations.</summary>
    public static float DotQ8_K<T>(byte* w, byte* xq, int blocks, KernelPath path) where T : IKBlock
    {
        byte* u = stackalloc byte[256];
        short* sc = stackalloc short[16];
        short* mn = stackalloc short[16];
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            T.Unpack(w + b * T.Bytes, u, sc, mn, out float d, out float dmin, path != KernelPath.Scalar);
            byte* xb = xq + b * 292;
            float dx = *(float*)xb;
            sbyte* qx = (sbyte*)(xb + 4);
            short* bsums = (short*)(xb + 260);
            int sumi = GroupDot(u, qx, sc, path);
            int summ = 0;
            for (int g = 0; g < 16; g++) summ += mn[g] * bsums[g];
            sum += dx * (d * sumi - dmin * summ);
        }
        return sum;
    }

    /// <summary>Σ_g sc[g]·Σ_{i in group g} u[i]·x[i] over 16 groups of 16 (u in 0..63).</summary>
    public static int GroupDot(byte* u, sbyte* x, short* sc, KernelPath path)
    {
        if (path >= KernelPath.V256 && Avx2.IsSupported)
        {
            var acc = Vector256<int>.Zero;
            for (int k = 0; k < 8; k++)
            {
                var p = Avx2.MultiplyAddAdjacent(Vector256.Load(u + 32 * k), Vector256.Load(x + 32 * k));
                var s = Vector256.Create(Vector128.Create(sc[2 * k]), Vector128.Create(sc[2 * k + 1]));
                acc += Avx2.MultiplyAddAdjacent(p, s);
            }
            return Vector256.Sum(acc);
        }
        if (path >= KernelPath.V128 && Ssse3.IsSupported)
        {
            var acc = Vector128<int>.Zero;
            for (int g = 0; g < 16; g++)
            {
                var p = Ssse3.MultiplyAddAdjacent(Vector128.Load(u + 16 * g), Vector128.Load(x + 16 * g));
                acc += Sse2.MultiplyAddAdjacent(p, Vector128.Create(sc[g]));
            }
            return Vector128.Sum(acc);
        }
        int total = 0;
        for (int g = 0; g < 16; g++)
        {
            int s = 0;
            for (int i = 16 * g; i < 16 * g + 16; i++) s += u[i] * x[i];
            total += sc[g] * s;
        }
        return total;
    }
}
