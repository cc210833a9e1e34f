using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Quants;

internal static unsafe class KBits
{
    /// <summary>The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaleMin(int j, byte* q, out int d, out int m)
    {
        if (j < 4)
        {
            d = q[j] & 63;
            m = q[j + 4] & 63;
        }
        else
        {
            d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>The signed 6-bit scale (−32..31) of group j (0..15) from the 12 packed bytes of Q3_K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Q3Scale(int j, byte* s)
    {
        int sc = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        return (sc | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    }

    public static void SubBlockScales(byte* scales, short* sc, short* mn)
    {
        for (int j = 0; j < 8; j++)
        {
            ScaleMin(j, scales, out int d, out int m);
            sc[2 * j] = sc[2 * j + 1] = (short)d;
            mn[2 * j] = mn[2 * j + 1] = (short)m;
        }
    }
}

/// <summary>Q2_K: 16 bytes of 4-bit scale|min per 16, 64 bytes of 2-bit q, fp16 d, fp16 dmin; w = d·sc·q − dmin·m.</summary>
public unsafe struct Q2_KFormat : IBlockFormat, IKBlock
{
    public static DType Type => DType.Q2_K;
    public static int BlockSize => 256;
    public static int BlockBytes => 84;
    public static int Bytes => 84;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_K;

    public static void Unpack(byte* b, byte* u, short* sc, short* mn, out float d, out float dmin, bool vector)
    {
        byte* scales = b, qs = b + 16;
        d = BlockBits.F16(b + 80);
        dmin = BlockBits.F16(b + 82);
        for (int g = 0; g < 16; g++)
        {
            sc[g] = (short)(scales[g] & 0xF);
            mn[g] = (short)(scales[g] >> 4);
        }
        if (vector)
        {
            // 32-byte stores that GroupDot's 32-byte loads can forward from
            var three = Vector256.Create((byte)3);
            for (int n = 0; n < 2; n++)
            {
                var q = Vector256.Load(qs + 32 * n);
                for (int j = 0; j < 4; j++)
                    (Vector256.ShiftRightLogical(q, 2 * j) & three).Store(u + 128 * n + 32 * j);
            }
            return;
        }
        for (int n = 0; n < 2; n++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++)
                    u[128 * n + 32 * j + l] = (byte)((qs[32 * n + l] >> (2 * j)) & 3);
    }

    public static void Dequantize(byte* src, float* y, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 84)
        {
            float d = BlockBits.F16(src + 80), min = BlockBits.F16(src + 82);
            byte* q = src + 16;
            int isc = 0;
            for (int n = 0; n < 256; n += 128)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    byte sc = src[isc++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
                    sc = src[isc++];
                    dl = d * (sc & 0xF); ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
                    shift += 2;
                }
                q += 32;
            }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) =>
        path >= KernelPath.V256 && KQuantDots.Supported ? KQuantDots.Dot<KQuantDots.Q2K>(w, xq, blocks) : Int8Dot.DotQ8_K<Q2_KFormat>(w, xq, blocks, path);
}

/// <summary>Q3_K: 32 bytes hmask, 64 bytes of 2-bit q, 12 bytes of 6-bit scales, fp16 d; w = d·(sc − 32)·(q − 4·!h).</summary>
public unsafe struct Q3_KFormat : IBlockFormat, IKBlock
{
    public static DType Type => DType.Q3_K;
    public static int BlockSize => 256;
    public static int BlockBytes => 110;
    public static int Bytes => 110;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_K;

    public static void Unpack(byte* b, byte* u, short* sc, short* mn, out float d, out float dmin, bool vector)
    {
        byte* hm = b, qs = b + 32, scales = b + 96;
        d = dmin = BlockBits.F16(b + 108);
        for (int g = 0; g < 16; g++)
        {
            int s = KBits.Q3Scale(g, scales);
            sc[g] = (short)s;
            mn[g] = (short)(4 * s);
        }
        // u = q + 4·h  (0..7); w = d·sc·(u − 4)
        if (vector)
        {
            var three = Vector256.Create((byte)3);
            var one = Vector256.Create((byte)1);
            var hv = Vector256.Load(hm);
            for (int n = 0; n < 2; n++)
            {
                var q = Vector256.Load(qs + 32 * n);
                for (int j = 0; j < 4; j++)
                    ((Vector256.ShiftRightLogical(q, 2 * j) & three) | ((Vector256.ShiftRightLogical(hv, 4 * n + j) & one) << 2))
                        .Store(u + 128 * n + 32 * j);
            }
            return;
        }
        for (int n = 0; n < 2; n++)
            for (int j = 0; j < 4; j++)
            {
                int m = 1 << (4 * n + j);
                for (int l = 0; l < 32; l++)
                    u[128 * n + 32 * j + l] = (byte)(((qs[32 * n + l] >> (2 * j)) & 3) | ((hm[l] & m) != 0 ? 4 : 0));
            }
    }

    public static void Dequantize(byte* src, float* y, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 110)
        {
            float dAll = BlockBits.F16(src + 108);
            byte* hm = src, q = src + 32, scales = src + 96;
            int m = 1, isc = 0;
            for (int n = 0; n < 256; n += 128)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    float dl = dAll * KBits.Q3Scale(isc++, scales);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    dl = dAll * KBits.Q3Scale(isc++, scales);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));
                    shift += 2;
                    m <<= 1;
                }
                q += 32;
            }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) =>
        path >= KernelPath.V256 && KQuantDots.Supported ? KQuantDots.Dot<KQuantDots.Q3K>(w, xq, blocks) : Int8Dot.DotQ8_K<Q3_KFormat>(w, xq, blocks, path);
}

/// <summary>Q4_K: fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles; w = d·sc·q − dmin·m.</summary>
public unsafe struct Q4_KFormat : IBlockFormat, IKBlock, IKRows4
{
    public static DType Type => DType.Q4_K;
    public static int BlockSize => 256;
    public static int BlockBytes => 144;
    public static int Bytes => 144;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_K;

    public static void Unpack(byte* b, byte* u, short* sc, short* mn, out float d, out float dmin, bool vector)
    {
        d = BlockBits.F16(b);
        dmin = BlockBits.F16(b + 2);
        KBits.SubBlockScales(b + 4, sc, mn);
        byte* qs = b + 16;
        if (vector)
        {
            var low = Vector256.Create((byte)0x0F);
            for (int j = 0; j < 4; j++)
            {
                var q = Vector256.Load(qs + 32 * j);
                (q & low).Store(u + 64 * j);
                Vector256.ShiftRightLogical(q, 4).Store(u + 64 * j + 32);
            }
            return;
        }
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++)
            {
                u[64 * j + l] = (byte)(qs[32 * j + l] & 0xF);
                u[64 * j + 32 + l] = (byte)(qs[32 * j + l] >> 4);
            }
    }

    public static void Dequantize(byte* src, float* y, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 144)
        {
            float d = BlockBits.F16(src), min = BlockBits.F16(src + 2);
            byte* scales = src + 4, q = src + 16;
            for (int j = 0, isc = 0; j < 256; j += 64, isc += 2, q += 32)
            {
                KBits.ScaleMin(isc, scales, out int sc, out int m);
                float d1 = d * sc, m1 = min * m;
                KBits.ScaleMin(isc + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
            }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) =>
        path >= KernelPath.V256 && KQuantDots.Supported ? KQuantDots.Dot<KQuantDots.Q4K>(w, xq, blocks) : Int8Dot.DotQ8_K<Q4_KFormat>(w, xq, blocks, path);

    /// <summary>
    /// Most tokens for which Q4_K takes the four-row dots (two tokens per pass) instead of the Gemm tile, whose
    /// per-tile unpack costs 4× a MatVec at n = 2 (8960x1536, 1 thread, CPU time per call, tile → pairs: n = 2
    /// 2.64 → 0.81 ms, n = 4 2.68 → 1.60, n = 6 3.55 → 2.56, n = 8 3.54 → 3.35; n = 16 5.38 vs 6.61, so the tile keeps n > 8).
    /// </summary>
    /// <summary>Batches up to this many tokens take the four-row dots rather than the tiles.</summary>
    public static int Rows4Batch => 8;

    public static void DotRows4(byte* w, long rowBytes, byte* xq, int blocks, float* result) => KQuantDots.DotQ4_KRows4(w, rowBytes, xq, blocks, result);
    public static void DotRows4x2(byte* w, long rowBytes, byte* xq0, byte* xq1, int blocks, float* result) =>
        KQuantDots.DotQ4_KRows4x2(w, rowBytes, xq0, xq1, blocks, result);
}

/// <summary>Q5_K: fp16 d, fp16 dmin, 12 bytes of scales/mins, 32 bytes of fifth bits, 128 bytes of nibbles; w = d·sc·q − dmin·m.</summary>
public unsafe struct Q5_KFormat : IBlockFormat, IKBlock
{
    public static DType Type => DType.Q5_K;
    public static int BlockSize => 256;
    public static int BlockBytes => 176;
    public static int Bytes => 176;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_K;

    public static void Unpack(byte* b, byte* u, short* sc, short* mn, out float d, out float dmin, bool vector)
    {
        d = BlockBits.F16(b);
        dmin = BlockBits.F16(b + 2);
        KBits.SubBlockScales(b + 4, sc, mn);
        byte* qh = b + 16, ql = b + 48;
        if (vector)
        {
            var low = Vector256.Create((byte)0x0F);
            var one = Vector256.Create((byte)1);
            var hv = Vector256.Load(qh);
            for (int j = 0; j < 4; j++)
            {
                var q = Vector256.Load(ql + 32 * j);
                ((q & low) | ((Vector256.ShiftRightLogical(hv, 2 * j) & one) << 4)).Store(u + 64 * j);
                (Vector256.ShiftRightLogical(q, 4) | ((Vector256.ShiftRightLogical(hv, 2 * j + 1) & one) << 4)).Store(u + 64 * j + 32);
            }
            return;
        }
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++)
            {
                u[64 * j + l] = (byte)((ql[32 * j + l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4));
                u[64 * j + 32 + l] = (byte)((ql[32 * j + l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4));
            }
    }

    public static void Dequantize(byte* src, float* y, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 176)
        {
            float d = BlockBits.F16(src), min = BlockBits.F16(src + 2);
            byte* scales = src + 4, qh = src + 16, ql = src + 48;
            int u1 = 1, u2 = 2;
            for (int j = 0, isc = 0; j < 256; j += 64, isc += 2, ql += 32, u1 <<= 2, u2 <<= 2)
            {
                KBits.ScaleMin(isc, scales, out int sc, out int m);
                float d1 = d * sc, m1 = min * m;
                KBits.ScaleMin(isc + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) =>
        path >= KernelPath.V256 && KQuantDots.Supported ? KQuantDots.Dot<KQuantDots.Q5K>(w, xq, blocks) : Int8Dot.DotQ8_K<Q5_KFormat>(w, xq, blocks, path);
}

/// <summary>Q6_K: 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales (one per 16), fp16 d; w = d·sc·(q − 32).</summary>
public unsafe struct Q6_KFormat : IBlockFormat, IKBlock, IKRows4
{
    public static DType Type => DType.Q6_K;
    public static int BlockSize => 256;
    public static int BlockBytes => 210;
    public static int Bytes => 210;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_K;

    public static void Unpack(byte* b, byte* u, short* sc, short* mn, out float d, out float dmin, bool vector)
    {
        byte* ql = b, qh = b + 128;
        sbyte* scales = (sbyte*)(b + 192);
        d = dmin = BlockBits.F16(b + 208);
        for (int g = 0; g < 16; g++)
        {
            sc[g] = scales[g];
            mn[g] = (short)(32 * scales[g]);
        }
        if (vector)
        {
            var low = Vector256.Create((byte)0x0F);
            var three = Vector256.Create((byte)3);
            for (int n = 0; n < 2; n++)
            {
                var a = Vector256.Load(ql + 64 * n);
                var c = Vector256.Load(ql + 64 * n + 32);
                var hb = Vector256.Load(qh + 32 * n);
                byte* o = u + 128 * n;
                ((a & low) | ((hb & three) << 4)).Store(o);
                ((c & low) | ((Vector256.ShiftRightLogical(hb, 2) & three) << 4)).Store(o + 32);
                (Vector256.ShiftRightLogical(a, 4) | ((Vector256.ShiftRightLogical(hb, 4) & three) << 4)).Store(o + 64);
                (Vector256.ShiftRightLogical(c, 4) | (Vector256.ShiftRightLogical(hb, 6) << 4)).Store(o + 96);
            }
            return;
        }
        for (int n = 0; n < 2; n++)
            for (int l = 0; l < 32; l++)
            {
                byte a = ql[64 * n + l], c = ql[64 * n + 32 + l], hb = qh[32 * n + l];
                u[128 * n + l] = (byte)((a & 0xF) | ((hb & 3) << 4));
                u[128 * n + l + 32] = (byte)((c & 0xF) | (((hb >> 2) & 3) << 4));
                u[128 * n + l + 64] = (byte)((a >> 4) | (((hb >> 4) & 3) << 4));
                u[128 * n + l + 96] = (byte)((c >> 4) | (((hb >> 6) & 3) << 4));
            }
    }

    public static void Dequantize(byte* src, float* y, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 210)
        {
            float d = BlockBits.F16(src + 208);
            byte* ql = src, qh = src + 128;
            sbyte* sc = (sbyte*)(src + 192);
            for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
                for (int l = 0; l < 32; l++)
                {
                    int isc = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[isc] * q1;
                    y[l + 32] = d * sc[isc + 2] * q2;
                    y[l + 64] = d * sc[isc + 4] * q3;
                    y[l + 96] = d * sc[isc + 6] * q4;
                }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) =>
        path >= KernelPath.V256 && KQuantDots.Supported ? KQuantDots.Dot<KQuantDots.Q6K>(w, xq, blocks) : Int8Dot.DotQ8_K<Q6_KFormat>(w, xq, blocks, path);

    /// <summary>
    /// Most tokens for which Q6_K takes the four-row dots: n = 2 runs as one pair (8960x1536, 1 thread, CPU ms: tile
    /// 2.50 → pair 1.34); from n = 3 the tile is as fast or faster (n = 4: tile 2.59, pairs 3.02).
    /// </summary>
    /// <summary>Batches up to this many tokens take the four-row dots rather than the tiles.</summary>
    public static int Rows4Batch => 2;

    public static void DotRows4(byte* w, long rowBytes, byte* xq, int blocks, float* result) => KQuantDots.DotQ6_KRows4(w, rowBytes, xq, blocks, result);
    public static void DotRows4x2(byte* w, long rowBytes, byte* xq0, byte* xq1, int blocks, float* result) =>
        KQuantDots.DotQ6_KRows4x2(w, rowBytes, xq0, xq1, blocks, result);
}
