using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Quants;

/// <summary>
/// Fused AVX2 integer dots for the k-quants of Q4_K_M files (Q4_K, Q6_K) against Q8_K activations: the
/// weights are unpacked in registers (no scratch), each 32 values meet the activations with maddubs and
/// their group scales with madd. The integer sums are exact and the float combination per super-block is
/// the one of <see cref="Int8Dot.DotQ8_K{T}"/>, so the result has the same bits as the generic path
/// (its scalar twin).
/// </summary>
internal static unsafe class KQuantDots
{
    public static bool Supported => Avx2.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> ScalePair(int a, int b) => Vector256.Create(Vector128.Create((short)a), Vector128.Create((short)b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Mad(Vector256<byte> u, sbyte* x, Vector256<short> scales) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Vector256.Load(x)), scales);

    static readonly Vector128<byte> MinPairs = Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);

    /// <summary>
    /// Q6_K's scale pairs from one load: the block's 16 scales widened to shorts, each half of them copied to both
    /// lanes (<see cref="ScaleHalves"/>), then pair (k, k+1) of a half is one byte shuffle — scale k across the low
    /// lane, k+1 across the high — the vector <see cref="ScalePair"/> builds from two scalars.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void ScaleHalves(sbyte* sc, out Vector256<byte> first, out Vector256<byte> second)
    {
        var s16 = Avx2.ConvertToVector256Int16(sc).AsInt64();
        first = Avx2.Permute4x64(s16, 0b01_00_01_00).AsByte();
        second = Avx2.Permute4x64(s16, 0b11_10_11_10).AsByte();
    }

    static Vector256<byte> PairMask(int k) => Vector256.Create(
        Vector128.Create((ushort)(2 * k | (2 * k + 1) << 8)).AsByte(), Vector128.Create((ushort)(2 * k + 2 | (2 * k + 3) << 8)).AsByte());

    static readonly Vector256<byte> Pair0 = PairMask(0), Pair2 = PairMask(2), Pair4 = PairMask(4), Pair6 = PairMask(6);

    static readonly Vector256<byte> PairSplat = Vector256.Create(
        (byte)0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);

    /// <summary>
    /// One super-block's exact integer sums for the fused dot: sumi = Σ scale·q·x over its 256 values and summ the
    /// offset term (Σ min·bsum, or the −32/−4 offsets times the scales); d and dmin are its float scales (dmin = d
    /// where the offset is signed into the values).
    /// </summary>
    public interface ISuperBlock
    {
        static abstract int Bytes { get; }
        static abstract void Sums(byte* wb, sbyte* qx, short* bsums, out float d, out float dmin, out int sumi, out int summ);
    }

    /// <summary>
    /// Σ w·x over <paramref name="blocks"/> super-blocks of <typeparamref name="T"/> against Q8_K activations: the one
    /// driver of every fused k-quant dot. The float step per super-block, sum += dx·(d·sumi − dmin·summ), is the one of
    /// <see cref="Int8Dot.DotQ8_K{T}"/>, so each format's result has the bits of the generic path.
    /// </summary>
    public static float Dot<T>(byte* w, byte* xq, int blocks) where T : struct, ISuperBlock
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* xb = xq + 292 * b;
            T.Sums(w + T.Bytes * b, (sbyte*)(xb + 4), (short*)(xb + 260), out float d, out float dmin, out int sumi, out int summ);
            sum += *(float*)xb * (d * sumi - dmin * summ);
        }
        return sum;
    }

    /// <summary>Q4_K: 8 scales and 8 mins in 12 packed bytes, 4-bit values.</summary>
    public readonly struct Q4K : ISuperBlock
    {
        public static int Bytes => 144;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sums(byte* wb, sbyte* qx, short* bsums, out float d, out float dmin, out int sumi, out int summ)
        {
            var low = Vector256.Create((byte)0x0F);
            d = BlockBits.F16(wb); dmin = BlockBits.F16(wb + 2);
            // the 12 packed bytes -> 8 scales and 8 mins (one byte each), as llama.cpp unpacks them, kept in
            // registers (a round trip through memory would stall on store forwarding)
            Q4Scales(wb, out ulong scales, out ulong mins);
            // Σ_j mins[j]·(bsums[2j] + bsums[2j+1]): each min widened to two int16 lanes, one madd
            summ = Q4Summ(mins, Vector256.Load(bsums));
            var acc = Vector256<int>.Zero;
            byte* qs = wb + 16;
            for (int j = 0; j < 4; j++)
            {
                var q4 = Vector256.Load(qs + 32 * j);
                acc += Mad(q4 & low, qx + 64 * j, Vector256.Create((short)(byte)(scales >> (16 * j))));
                acc += Mad(Vector256.ShiftRightLogical(q4, 4), qx + 64 * j + 32, Vector256.Create((short)(byte)(scales >> (16 * j + 8))));
            }
            sumi = Vector256.Sum(acc);
        }
    }

    /// <summary>Q5_K: Q4_K's scales and mins, 4-bit values with a fifth bit from 32 bytes of high bits.</summary>
    public readonly struct Q5K : ISuperBlock
    {
        public static int Bytes => 176;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sums(byte* wb, sbyte* qx, short* bsums, out float d, out float dmin, out int sumi, out int summ)
        {
            var low = Vector256.Create((byte)0x0F);
            var one = Vector256.Create((byte)1);
            d = BlockBits.F16(wb); dmin = BlockBits.F16(wb + 2);
            Q4Scales(wb, out ulong scales, out ulong mins);
            summ = Q4Summ(mins, Vector256.Load(bsums));
            var acc = Vector256<int>.Zero;
            var hv = Vector256.Load(wb + 16);
            byte* ql = wb + 48;
            for (int j = 0; j < 4; j++)
            {
                var q4 = Vector256.Load(ql + 32 * j);
                var lo = (q4 & low) | ((Vector256.ShiftRightLogical(hv, 2 * j) & one) << 4);
                var hi = Vector256.ShiftRightLogical(q4, 4) | ((Vector256.ShiftRightLogical(hv, 2 * j + 1) & one) << 4);
                acc += Mad(lo, qx + 64 * j, Vector256.Create((short)(byte)(scales >> (16 * j))));
                acc += Mad(hi, qx + 64 * j + 32, Vector256.Create((short)(byte)(scales >> (16 * j + 8))));
            }
            sumi = Vector256.Sum(acc);
        }
    }

    /// <summary>Q6_K: 16 signed 8-bit scales, 6-bit values (4 low bits + 2 high bits) offset by −32.</summary>
    public readonly struct Q6K : ISuperBlock
    {
        public static int Bytes => 210;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sums(byte* wb, sbyte* qx, short* bsums, out float d, out float dmin, out int sumi, out int summ)
        {
            var low = Vector256.Create((byte)0x0F);
            var three = Vector256.Create((byte)3);
            byte* ql = wb, qh = wb + 128;
            sbyte* sc = (sbyte*)(wb + 192);
            d = dmin = BlockBits.F16(wb + 208);
            // Σ 32·sc[g]·bsums[g]: the −32 offset of every 6-bit value
            var sc16 = Avx2.ConvertToVector256Int16(sc);
            summ = 32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(sc16, Vector256.Load(bsums)));
            var acc = Vector256<int>.Zero;
            for (int n = 0; n < 2; n++)
            {
                var a = Vector256.Load(ql + 64 * n);
                var c = Vector256.Load(ql + 64 * n + 32);
                var hb = Vector256.Load(qh + 32 * n);
                sbyte* x = qx + 128 * n;
                int g = 8 * n;
                acc += Mad((a & low) | ((hb & three) << 4), x, ScalePair(sc[g], sc[g + 1]));
                acc += Mad((c & low) | ((Vector256.ShiftRightLogical(hb, 2) & three) << 4), x + 32, ScalePair(sc[g + 2], sc[g + 3]));
                acc += Mad(Vector256.ShiftRightLogical(a, 4) | ((Vector256.ShiftRightLogical(hb, 4) & three) << 4), x + 64, ScalePair(sc[g + 4], sc[g + 5]));
                acc += Mad(Vector256.ShiftRightLogical(c, 4) | (Vector256.ShiftRightLogical(hb, 6) << 4), x + 96, ScalePair(sc[g + 6], sc[g + 7]));
            }
            sumi = Vector256.Sum(acc);
        }
    }

    /// <summary>Q2_K: 16 bytes of 4-bit scale + 4-bit min, 2-bit values.</summary>
    public readonly struct Q2K : ISuperBlock
    {
        public static int Bytes => 84;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sums(byte* wb, sbyte* qx, short* bsums, out float d, out float dmin, out int sumi, out int summ)
        {
            var three = Vector256.Create((byte)3);
            d = BlockBits.F16(wb + 80); dmin = BlockBits.F16(wb + 82);
            var mn16 = Avx2.ConvertToVector256Int16(Vector128.ShiftRightLogical(Vector128.Load(wb), 4));
            summ = Vector256.Sum(Avx2.MultiplyAddAdjacent(mn16, Vector256.Load(bsums)));
            byte* sc = wb;
            var acc = Vector256<int>.Zero;
            for (int n = 0; n < 2; n++)
            {
                var q = Vector256.Load(wb + 16 + 32 * n);
                for (int j = 0; j < 4; j++)
                {
                    int g = 8 * n + 2 * j;
                    acc += Mad(Vector256.ShiftRightLogical(q, 2 * j) & three, qx + 128 * n + 32 * j, ScalePair(sc[g] & 0xF, sc[g + 1] & 0xF));
                }
            }
            sumi = Vector256.Sum(acc);
        }
    }

    /// <summary>Q3_K: 16 6-bit scales in 12 bytes (offset −32), 2-bit values with a third bit from the hmask (offset −4).</summary>
    public readonly struct Q3K : ISuperBlock
    {
        public static int Bytes => 110;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Sums(byte* wb, sbyte* qx, short* bsums, out float d, out float dmin, out int sumi, out int summ)
        {
            var three = Vector256.Create((byte)3);
            var one = Vector256.Create((byte)1);
            const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
            d = dmin = BlockBits.F16(wb + 108);
            // the 16 6-bit scales from 12 bytes, as llama.cpp unpacks them, minus 32, as int16 lanes
            uint* a = (uint*)(wb + 96);
            uint a0 = a[0], a1 = a[1], t = a[2];
            var packed = Vector128.Create(
                (a0 & kmask2) | ((t & kmask1) << 4),
                (a1 & kmask2) | (((t >> 2) & kmask1) << 4),
                ((a0 >> 4) & kmask2) | (((t >> 4) & kmask1) << 4),
                ((a1 >> 4) & kmask2) | (((t >> 6) & kmask1) << 4)).AsSByte() - Vector128.Create((sbyte)32);
            var sc16 = Avx2.ConvertToVector256Int16(packed);
            summ = 4 * Vector256.Sum(Avx2.MultiplyAddAdjacent(sc16, Vector256.Load(bsums)));
            var hv = Vector256.Load(wb);
            var acc = Vector256<int>.Zero;
            for (int n = 0; n < 2; n++)
            {
                var q = Vector256.Load(wb + 32 + 32 * n);
                for (int j = 0; j < 4; j++)
                {
                    int g = 8 * n + 2 * j;
                    var u = (Vector256.ShiftRightLogical(q, 2 * j) & three) | ((Vector256.ShiftRightLogical(hv, 4 * n + j) & one) << 2);
                    // (sc[g], sc[g+1]) to every dword, then sc[g] across the low lane and sc[g+1] across the high
                    var pair = Avx2.Shuffle(Avx2.PermuteVar8x32(sc16.AsInt32(), Vector256.Create(g / 2)).AsByte(), PairSplat).AsInt16();
                    acc += Mad(u, qx + 128 * n + 32 * j, pair);
                }
            }
            sumi = Vector256.Sum(acc);
        }
    }

    /// <summary>True where the four-row k-quant dots run (<see cref="DotQ4_KRows4"/>, <see cref="DotQ6_KRows4"/>).</summary>
    public static bool HasRows4(KernelPath path) => path >= KernelPath.V256 && Avx2.IsSupported && Sse.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Mad(Vector256<byte> u, Vector256<sbyte> x, Vector256<short> scales) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, x), scales);

    /// <summary>Q4_K/Q5_K's 12 packed bytes at wb + 4 as 8 scale bytes and 8 min bytes, as llama.cpp unpacks them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q4Scales(byte* wb, out ulong scales, out ulong mins)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint* q = (uint*)(wb + 4);
        uint u0 = q[0], u1 = q[1], u2 = q[2];
        scales = (u0 & kmask1) | ((ulong)((u2 & kmask2) | (((u0 >> 6) & kmask3) << 4)) << 32);
        mins = (u1 & kmask1) | ((ulong)(((u2 >> 4) & kmask2) | (((u1 >> 6) & kmask3) << 4)) << 32);
    }

    /// <summary>Eight scale bytes as eight shorts, repeated in both 128-bit lanes (for per-lane byte shuffles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> ScalesBothLanes(ulong scales)
    {
        var v = Sse41.ConvertToVector128Int16(Vector128.CreateScalarUnsafe(scales).AsByte()).AsByte();
        return Vector256.Create(v, v);
    }

    /// <summary>Σ_j mins[j]·(bsums[2j] + bsums[2j+1]): each min byte widened to two int16 lanes, one madd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Q4Summ(ulong mins, Vector256<short> bs) =>
        Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Ssse3.Shuffle(Vector128.CreateScalar(mins).AsByte(), MinPairs)), bs));

    /// <summary>
    /// Four rows of <see cref="Q4K"/>'s dot (rows w, w+rowBytes, w+2·rowBytes, w+3·rowBytes) in one pass over the
    /// Q8_K activations: each activation chunk and the bsums are loaded once for the four rows, the next four
    /// rows are prefetched, and every row keeps its integer sums and its float step
    /// sum += dx·(d·sumi − dmin·summ) in the order of the one-row dot, so each result has its bits.
    /// </summary>
    public static void DotQ4_KRows4(byte* w, long rowBytes, byte* xq, int blocks, float* result)
    {
        var low = Vector256.Create((byte)0x0F);
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        long ahead = 4 * rowBytes;
        for (int b = 0; b < blocks; b++)
        {
            long off = 144L * b;
            byte* b0 = w0 + off, b1 = w1 + off, b2 = w2 + off, b3 = w3 + off;
            // the next four rows at this super-block (144 bytes at any offset: up to four cache lines each)
            Sse.Prefetch1(b0 + ahead); Sse.Prefetch1(b0 + ahead + 64); Sse.Prefetch1(b0 + ahead + 128); Sse.Prefetch1(b0 + ahead + 143);
            Sse.Prefetch1(b1 + ahead); Sse.Prefetch1(b1 + ahead + 64); Sse.Prefetch1(b1 + ahead + 128); Sse.Prefetch1(b1 + ahead + 143);
            Sse.Prefetch1(b2 + ahead); Sse.Prefetch1(b2 + ahead + 64); Sse.Prefetch1(b2 + ahead + 128); Sse.Prefetch1(b2 + ahead + 143);
            Sse.Prefetch1(b3 + ahead); Sse.Prefetch1(b3 + ahead + 64); Sse.Prefetch1(b3 + ahead + 128); Sse.Prefetch1(b3 + ahead + 143);
            byte* xb = xq + 292 * b;
            float dx = *(float*)xb;
            sbyte* qx = (sbyte*)(xb + 4);
            var bs = Vector256.Load((short*)(xb + 260));
            Q4Scales(b0, out ulong sc0, out ulong mn0);
            Q4Scales(b1, out ulong sc1, out ulong mn1);
            Q4Scales(b2, out ulong sc2, out ulong mn2);
            Q4Scales(b3, out ulong sc3, out ulong mn3);
            int summ0 = Q4Summ(mn0, bs), summ1 = Q4Summ(mn1, bs), summ2 = Q4Summ(mn2, bs), summ3 = Q4Summ(mn3, bs);
            var acc0 = Vector256<int>.Zero;
            var acc1 = Vector256<int>.Zero;
            var acc2 = Vector256<int>.Zero;
            var acc3 = Vector256<int>.Zero;
            // each row's eight 6-bit scales as shorts in both lanes; sub-block k's scale across the vector is then one
            // byte shuffle by a mask of (2k, 2k+1) pairs, stepped by 0x0202 a sub-block (same integers as a broadcast)
            var v0 = ScalesBothLanes(sc0); var v1 = ScalesBothLanes(sc1); var v2 = ScalesBothLanes(sc2); var v3 = ScalesBothLanes(sc3);
            var ml = Vector256.Create((short)0x0100).AsByte();
            var step = Vector256.Create((short)0x0202).AsByte();
            for (int j = 0; j < 4; j++)
            {
                var xl = Vector256.Load(qx + 64 * j);
                var xh = Vector256.Load(qx + 64 * j + 32);
                var mh = ml + step;
                var q0 = Vector256.Load(b0 + 16 + 32 * j);
                acc0 += Mad(q0 & low, xl, Avx2.Shuffle(v0, ml).AsInt16());
                acc0 += Mad(Vector256.ShiftRightLogical(q0, 4), xh, Avx2.Shuffle(v0, mh).AsInt16());
                var q1 = Vector256.Load(b1 + 16 + 32 * j);
                acc1 += Mad(q1 & low, xl, Avx2.Shuffle(v1, ml).AsInt16());
                acc1 += Mad(Vector256.ShiftRightLogical(q1, 4), xh, Avx2.Shuffle(v1, mh).AsInt16());
                var q2 = Vector256.Load(b2 + 16 + 32 * j);
                acc2 += Mad(q2 & low, xl, Avx2.Shuffle(v2, ml).AsInt16());
                acc2 += Mad(Vector256.ShiftRightLogical(q2, 4), xh, Avx2.Shuffle(v2, mh).AsInt16());
                var q3 = Vector256.Load(b3 + 16 + 32 * j);
                acc3 += Mad(q3 & low, xl, Avx2.Shuffle(v3, ml).AsInt16());
                acc3 += Mad(Vector256.ShiftRightLogical(q3, 4), xh, Avx2.Shuffle(v3, mh).AsInt16());
                ml = mh + step;
            }
            s0 += dx * (BlockBits.F16(b0) * Vector256.Sum(acc0) - BlockBits.F16(b0 + 2) * summ0);
            s1 += dx * (BlockBits.F16(b1) * Vector256.Sum(acc1) - BlockBits.F16(b1 + 2) * summ1);
            s2 += dx * (BlockBits.F16(b2) * Vector256.Sum(acc2) - BlockBits.F16(b2 + 2) * summ2);
            s3 += dx * (BlockBits.F16(b3) * Vector256.Sum(acc3) - BlockBits.F16(b3 + 2) * summ3);
        }
        result[0] = s0; result[1] = s1; result[2] = s2; result[3] = s3;
    }

    /// <summary>
    /// <see cref="DotQ4_KRows4"/> for two tokens at once (small batches): each 4-bit chunk of a row is unpacked and
    /// its scale vectors made once for both tokens' activations (<paramref name="xq0"/>, <paramref name="xq1"/>), so two
    /// sequences cost far less than two passes. Every (row, token) keeps the integer sums and float step of the
    /// one-row dot, so <paramref name="result"/>[4·t + i] has its bits.
    /// </summary>
    public static void DotQ4_KRows4x2(byte* w, long rowBytes, byte* xq0, byte* xq1, int blocks, float* result)
    {
        var low = Vector256.Create((byte)0x0F);
        float s00 = 0, s10 = 0, s20 = 0, s30 = 0, s01 = 0, s11 = 0, s21 = 0, s31 = 0;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        long ahead = 4 * rowBytes;
        for (int b = 0; b < blocks; b++)
        {
            long off = 144L * b;
            byte* b0 = w0 + off, b1 = w1 + off, b2 = w2 + off, b3 = w3 + off;
            Sse.Prefetch1(b0 + ahead); Sse.Prefetch1(b0 + ahead + 64); Sse.Prefetch1(b0 + ahead + 128); Sse.Prefetch1(b0 + ahead + 143);
            Sse.Prefetch1(b1 + ahead); Sse.Prefetch1(b1 + ahead + 64); Sse.Prefetch1(b1 + ahead + 128); Sse.Prefetch1(b1 + ahead + 143);
            Sse.Prefetch1(b2 + ahead); Sse.Prefetch1(b2 + ahead + 64); Sse.Prefetch1(b2 + ahead + 128); Sse.Prefetch1(b2 + ahead + 143);
            Sse.Prefetch1(b3 + ahead); Sse.Prefetch1(b3 + ahead + 64); Sse.Prefetch1(b3 + ahead + 128); Sse.Prefetch1(b3 + ahead + 143);
            byte* xa = xq0 + 292 * b, xb = xq1 + 292 * b;
            float dxa = *(float*)xa, dxb = *(float*)xb;
            sbyte* qa = (sbyte*)(xa + 4), qb = (sbyte*)(xb + 4);
            var bsa = Vector256.Load((short*)(xa + 260));
            var bsb = Vector256.Load((short*)(xb + 260));
            Q4Scales(b0, out ulong sc0, out ulong mn0);
            Q4Scales(b1, out ulong sc1, out ulong mn1);
            Q4Scales(b2, out ulong sc2, out ulong mn2);
            Q4Scales(b3, out ulong sc3, out ulong mn3);
            var a00 = Vector256<int>.Zero; var a10 = a00; var a20 = a00; var a30 = a00;
            var a01 = a00; var a11 = a00; var a21 = a00; var a31 = a00;
            // the scale vectors by stepped-mask shuffles, as in the one-token dot (same integers as a broadcast)
            var v0 = ScalesBothLanes(sc0); var v1 = ScalesBothLanes(sc1); var v2 = ScalesBothLanes(sc2); var v3 = ScalesBothLanes(sc3);
            var ml = Vector256.Create((short)0x0100).AsByte();
            var step = Vector256.Create((short)0x0202).AsByte();
            for (int j = 0; j < 4; j++)
            {
                var xla = Vector256.Load(qa + 64 * j);
                var xha = Vector256.Load(qa + 64 * j + 32);
                var xlb = Vector256.Load(qb + 64 * j);
                var xhb = Vector256.Load(qb + 64 * j + 32);
                var mh = ml + step;
                var q = Vector256.Load(b0 + 16 + 32 * j);
                var ql = q & low; var qh = Vector256.ShiftRightLogical(q, 4);
                var cl = Avx2.Shuffle(v0, ml).AsInt16(); var ch = Avx2.Shuffle(v0, mh).AsInt16();
                a00 += Mad(ql, xla, cl); a00 += Mad(qh, xha, ch);
                a01 += Mad(ql, xlb, cl); a01 += Mad(qh, xhb, ch);
                q = Vector256.Load(b1 + 16 + 32 * j);
                ql = q & low; qh = Vector256.ShiftRightLogical(q, 4);
                cl = Avx2.Shuffle(v1, ml).AsInt16(); ch = Avx2.Shuffle(v1, mh).AsInt16();
                a10 += Mad(ql, xla, cl); a10 += Mad(qh, xha, ch);
                a11 += Mad(ql, xlb, cl); a11 += Mad(qh, xhb, ch);
                q = Vector256.Load(b2 + 16 + 32 * j);
                ql = q & low; qh = Vector256.ShiftRightLogical(q, 4);
                cl = Avx2.Shuffle(v2, ml).AsInt16(); ch = Avx2.Shuffle(v2, mh).AsInt16();
                a20 += Mad(ql, xla, cl); a20 += Mad(qh, xha, ch);
                a21 += Mad(ql, xlb, cl); a21 += Mad(qh, xhb, ch);
                q = Vector256.Load(b3 + 16 + 32 * j);
                ql = q & low; qh = Vector256.ShiftRightLogical(q, 4);
                cl = Avx2.Shuffle(v3, ml).AsInt16(); ch = Avx2.Shuffle(v3, mh).AsInt16();
                a30 += Mad(ql, xla, cl); a30 += Mad(qh, xha, ch);
                a31 += Mad(ql, xlb, cl); a31 += Mad(qh, xhb, ch);
                ml = mh + step;
            }
            float d0 = BlockBits.F16(b0), m0 = BlockBits.F16(b0 + 2), d1 = BlockBits.F16(b1), m1 = BlockBits.F16(b1 + 2);
            float d2 = BlockBits.F16(b2), m2 = BlockBits.F16(b2 + 2), d3 = BlockBits.F16(b3), m3 = BlockBits.F16(b3 + 2);
            s00 += dxa * (d0 * Vector256.Sum(a00) - m0 * Q4Summ(mn0, bsa));
            s10 += dxa * (d1 * Vector256.Sum(a10) - m1 * Q4Summ(mn1, bsa));
            s20 += dxa * (d2 * Vector256.Sum(a20) - m2 * Q4Summ(mn2, bsa));
            s30 += dxa * (d3 * Vector256.Sum(a30) - m3 * Q4Summ(mn3, bsa));
            s01 += dxb * (d0 * Vector256.Sum(a01) - m0 * Q4Summ(mn0, bsb));
            s11 += dxb * (d1 * Vector256.Sum(a11) - m1 * Q4Summ(mn1, bsb));
            s21 += dxb * (d2 * Vector256.Sum(a21) - m2 * Q4Summ(mn2, bsb));
            s31 += dxb * (d3 * Vector256.Sum(a31) - m3 * Q4Summ(mn3, bsb));
        }
        result[0] = s00; result[1] = s10; result[2] = s20; result[3] = s30;
        result[4] = s01; result[5] = s11; result[6] = s21; result[7] = s31;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Q6Sumi(byte* wb, sbyte* qx)
    {
        var low = Vector256.Create((byte)0x0F);
        var three = Vector256.Create((byte)3);
        byte* ql = wb, qh = wb + 128;
        ScaleHalves((sbyte*)(wb + 192), out var first, out var second);
        // two accumulators, so the four multiply-adds of a half are not one chain (integer sums: the order
        // does not change the result)
        var acc0 = Vector256<int>.Zero;
        var acc1 = Vector256<int>.Zero;
        for (int n = 0; n < 2; n++)
        {
            var a = Vector256.Load(ql + 64 * n);
            var c = Vector256.Load(ql + 64 * n + 32);
            var hb = Vector256.Load(qh + 32 * n);
            sbyte* x = qx + 128 * n;
            var half = n == 0 ? first : second;
            acc0 += Mad((a & low) | ((hb & three) << 4), x, Avx2.Shuffle(half, Pair0).AsInt16());
            acc1 += Mad((c & low) | ((Vector256.ShiftRightLogical(hb, 2) & three) << 4), x + 32, Avx2.Shuffle(half, Pair2).AsInt16());
            acc0 += Mad(Vector256.ShiftRightLogical(a, 4) | ((Vector256.ShiftRightLogical(hb, 4) & three) << 4), x + 64, Avx2.Shuffle(half, Pair4).AsInt16());
            acc1 += Mad(Vector256.ShiftRightLogical(c, 4) | (Vector256.ShiftRightLogical(hb, 6) << 4), x + 96, Avx2.Shuffle(half, Pair6).AsInt16());
        }
        return Vector256.Sum(acc0 + acc1);
    }

    /// <summary>
    /// Four rows of <see cref="Q6K"/>'s dot in one pass (see <see cref="DotQ4_KRows4"/>): bsums loaded once, the next
    /// four rows prefetched, each row's sums and float step as in the one-row dot (same bits). The activation
    /// chunks are re-read per row from L1 (a 256-byte Q8_K block stays resident across the four rows).
    /// </summary>
    public static void DotQ6_KRows4(byte* w, long rowBytes, byte* xq, int blocks, float* result)
    {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        long ahead = 4 * rowBytes;
        for (int b = 0; b < blocks; b++)
        {
            long off = 210L * b;
            byte* b0 = w0 + off, b1 = w1 + off, b2 = w2 + off, b3 = w3 + off;
            // the next four rows at this super-block (210 bytes at any offset: up to five cache lines each)
            Sse.Prefetch1(b0 + ahead); Sse.Prefetch1(b0 + ahead + 64); Sse.Prefetch1(b0 + ahead + 128); Sse.Prefetch1(b0 + ahead + 192); Sse.Prefetch1(b0 + ahead + 209);
            Sse.Prefetch1(b1 + ahead); Sse.Prefetch1(b1 + ahead + 64); Sse.Prefetch1(b1 + ahead + 128); Sse.Prefetch1(b1 + ahead + 192); Sse.Prefetch1(b1 + ahead + 209);
            Sse.Prefetch1(b2 + ahead); Sse.Prefetch1(b2 + ahead + 64); Sse.Prefetch1(b2 + ahead + 128); Sse.Prefetch1(b2 + ahead + 192); Sse.Prefetch1(b2 + ahead + 209);
            Sse.Prefetch1(b3 + ahead); Sse.Prefetch1(b3 + ahead + 64); Sse.Prefetch1(b3 + ahead + 128); Sse.Prefetch1(b3 + ahead + 192); Sse.Prefetch1(b3 + ahead + 209);
            byte* xb = xq + 292 * b;
            float dx = *(float*)xb;
            sbyte* qx = (sbyte*)(xb + 4);
            var bs = Vector256.Load((short*)(xb + 260));
            int summ0 = 32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16((sbyte*)(b0 + 192)), bs));
            int summ1 = 32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16((sbyte*)(b1 + 192)), bs));
            int summ2 = 32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16((sbyte*)(b2 + 192)), bs));
            int summ3 = 32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16((sbyte*)(b3 + 192)), bs));
            float d0 = BlockBits.F16(b0 + 208), d1 = BlockBits.F16(b1 + 208), d2 = BlockBits.F16(b2 + 208), d3 = BlockBits.F16(b3 + 208);
            s0 += dx * (d0 * Q6Sumi(b0, qx) - d0 * summ0);
            s1 += dx * (d1 * Q6Sumi(b1, qx) - d1 * summ1);
            s2 += dx * (d2 * Q6Sumi(b2, qx) - d2 * summ2);
            s3 += dx * (d3 * Q6Sumi(b3, qx) - d3 * summ3);
        }
        result[0] = s0; result[1] = s1; result[2] = s2; result[3] = s3;
    }

    /// <summary><see cref="Q6Sumi"/> for two tokens: each 6-bit chunk is rebuilt and its scale pair made once for both.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q6Sumi2(byte* wb, sbyte* qa, sbyte* qb, out int sa, out int sb)
    {
        var low = Vector256.Create((byte)0x0F);
        var three = Vector256.Create((byte)3);
        byte* ql = wb, qh = wb + 128;
        ScaleHalves((sbyte*)(wb + 192), out var first, out var second);
        var acca = Vector256<int>.Zero;
        var accb = Vector256<int>.Zero;
        for (int n = 0; n < 2; n++)
        {
            var a = Vector256.Load(ql + 64 * n);
            var c = Vector256.Load(ql + 64 * n + 32);
            var hb = Vector256.Load(qh + 32 * n);
            sbyte* xa = qa + 128 * n, xb = qb + 128 * n;
            var half = n == 0 ? first : second;
            var u = (a & low) | ((hb & three) << 4);
            var m = Avx2.Shuffle(half, Pair0).AsInt16();
            acca += Mad(u, xa, m); accb += Mad(u, xb, m);
            u = (c & low) | ((Vector256.ShiftRightLogical(hb, 2) & three) << 4);
            m = Avx2.Shuffle(half, Pair2).AsInt16();
            acca += Mad(u, xa + 32, m); accb += Mad(u, xb + 32, m);
            u = Vector256.ShiftRightLogical(a, 4) | ((Vector256.ShiftRightLogical(hb, 4) & three) << 4);
            m = Avx2.Shuffle(half, Pair4).AsInt16();
            acca += Mad(u, xa + 64, m); accb += Mad(u, xb + 64, m);
            u = Vector256.ShiftRightLogical(c, 4) | (Vector256.ShiftRightLogical(hb, 6) << 4);
            m = Avx2.Shuffle(half, Pair6).AsInt16();
            acca += Mad(u, xa + 96, m); accb += Mad(u, xb + 96, m);
        }
        sa = Vector256.Sum(acca);
        sb = Vector256.Sum(accb);
    }

    /// <summary>
    /// <see cref="DotQ6_KRows4"/> for two tokens at once (small batches; see <see cref="DotQ4_KRows4x2"/>):
    /// <paramref name="result"/>[4·t + i] has the bits of the one-row dot of row i and token t.
    /// </summary>
    public static void DotQ6_KRows4x2(byte* w, long rowBytes, byte* xq0, byte* xq1, int blocks, float* result)
    {
        float s00 = 0, s10 = 0, s20 = 0, s30 = 0, s01 = 0, s11 = 0, s21 = 0, s31 = 0;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        long ahead = 4 * rowBytes;
        for (int b = 0; b < blocks; b++)
        {
            long off = 210L * b;
            byte* b0 = w0 + off, b1 = w1 + off, b2 = w2 + off, b3 = w3 + off;
            Sse.Prefetch1(b0 + ahead); Sse.Prefetch1(b0 + ahead + 64); Sse.Prefetch1(b0 + ahead + 128); Sse.Prefetch1(b0 + ahead + 192); Sse.Prefetch1(b0 + ahead + 209);
            Sse.Prefetch1(b1 + ahead); Sse.Prefetch1(b1 + ahead + 64); Sse.Prefetch1(b1 + ahead + 128); Sse.Prefetch1(b1 + ahead + 192); Sse.Prefetch1(b1 + ahead + 209);
            Sse.Prefetch1(b2 + ahead); Sse.Prefetch1(b2 + ahead + 64); Sse.Prefetch1(b2 + ahead + 128); Sse.Prefetch1(b2 + ahead + 192); Sse.Prefetch1(b2 + ahead + 209);
            Sse.Prefetch1(b3 + ahead); Sse.Prefetch1(b3 + ahead + 64); Sse.Prefetch1(b3 + ahead + 128); Sse.Prefetch1(b3 + ahead + 192); Sse.Prefetch1(b3 + ahead + 209);
            byte* xa = xq0 + 292 * b, xb = xq1 + 292 * b;
            float dxa = *(float*)xa, dxb = *(float*)xb;
            sbyte* qa = (sbyte*)(xa + 4), qb = (sbyte*)(xb + 4);
            var bsa = Vector256.Load((short*)(xa + 260));
            var bsb = Vector256.Load((short*)(xb + 260));
            var c0 = Avx2.ConvertToVector256Int16((sbyte*)(b0 + 192)); var c1 = Avx2.ConvertToVector256Int16((sbyte*)(b1 + 192));
            var c2 = Avx2.ConvertToVector256Int16((sbyte*)(b2 + 192)); var c3 = Avx2.ConvertToVector256Int16((sbyte*)(b3 + 192));
            float d0 = BlockBits.F16(b0 + 208), d1 = BlockBits.F16(b1 + 208), d2 = BlockBits.F16(b2 + 208), d3 = BlockBits.F16(b3 + 208);
            Q6Sumi2(b0, qa, qb, out int i0a, out int i0b);
            Q6Sumi2(b1, qa, qb, out int i1a, out int i1b);
            Q6Sumi2(b2, qa, qb, out int i2a, out int i2b);
            Q6Sumi2(b3, qa, qb, out int i3a, out int i3b);
            s00 += dxa * (d0 * i0a - d0 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c0, bsa))));
            s10 += dxa * (d1 * i1a - d1 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c1, bsa))));
            s20 += dxa * (d2 * i2a - d2 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c2, bsa))));
            s30 += dxa * (d3 * i3a - d3 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c3, bsa))));
            s01 += dxb * (d0 * i0b - d0 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c0, bsb))));
            s11 += dxb * (d1 * i1b - d1 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c1, bsb))));
            s21 += dxb * (d2 * i2b - d2 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c2, bsb))));
            s31 += dxb * (d3 * i3b - d3 * (32 * Vector256.Sum(Avx2.MultiplyAddAdjacent(c3, bsb))));
        }
        result[0] = s00; result[1] = s10; result[2] = s20; result[3] = s30;
        result[4] = s01; result[5] = s11; result[6] = s21; result[7] = s31;
    }
}
