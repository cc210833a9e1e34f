using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Kernels;

/// <summary>
/// Register-tiled prefill kernels for <see cref="MatMul.Gemm(Linear, ReadOnlySpan{float}, Span{float}, int, WorkerPool, ActivationMode)"/>
/// with int8 activations (<see cref="ActivationMode.LlamaCpp"/>). A tile of 4 weight rows × 4 tokens is
/// computed together, so each weight block is unpacked once per tile and each activation block once per
/// 4 rows. Every (row, token) result keeps the integer sums and the float accumulation order of
/// <see cref="IBlockFormat.DotInt8"/> (llama.cpp's 8-lane order for 32-element blocks, one sequential float
/// sum over super-blocks for k-quants), so Gemm gives exactly the bits of one MatVec per token.
/// </summary>
internal static unsafe class GemmTiles
{
    const int Rows = 4;      // weight rows per tile
    const int Tokens = 4;    // tokens per tile (two pairs of two: a 512-bit vector holds one block of two tokens)

    /// <summary>False when JEVONS_GEMM_TILES=0: Gemm then runs one dot per (row, token) (for A/B timing and diagnosis).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("JEVONS_GEMM_TILES") != "0";

    /// <summary>The tiled int8 Gemm of a 32-element format against Q8_0 activations; false where n or the path has none.</summary>
    public static bool TryLegacy<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat, ILegacyBlock
    {
        int width = n < 2 || !Enabled ? 0 : Width(pool.Path);
        return width != 0 && Legacy<T>(w, x, y, bias, n, pool, width);
    }

    /// <summary>The tiled int8 Gemm of a k-quant against Q8_K activations; false where n or the path has none.</summary>
    public static bool TryKQuant<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat, IKBlock
    {
        int width = n < 2 || !Enabled ? 0 : Width(pool.Path);
        return width != 0 && KQuant<T>(w, x, y, bias, n, pool, width);
    }

    /// <summary>512 for AVX-512BW, 256 for AVX2+FMA, 0 where the tiled kernels do not apply.</summary>
    /// <summary>The 256-bit tiles take VNNI's dot where the CPU has it (JEVONS_VNNI=0 turns it off for A/B timing).</summary>
    static readonly bool Vnni = AvxVnni.IsSupported && Environment.GetEnvironmentVariable("JEVONS_VNNI") != "0";

    internal static int Width(KernelPath path)
    {
        if (path >= KernelPath.V512 && Avx512BW.IsSupported && Avx512F.IsSupported && Fma.IsSupported && Avx2.IsSupported) return 512;
        if (path >= KernelPath.V256 && Avx2.IsSupported && Fma.IsSupported) return 256;
        return 0;
    }

    // ---------------------------------------------------------------- 32-element blocks vs Q8_0

    struct LegacyJob
    {
        public byte* W;
        public long RowBytes;
        public int Out, Blocks, N, NPad;
        public sbyte* Xs;      // [block][token] 32 int8 (tokens padded to NPad, even, with zeros)
        public float* Dx;      // [block][token] activation scales
        public float* Dx2;     // [block][pair][16]: d_x of the pair's first token ×8, then its second ×8
        public float* Y, Bias;
        public int Width;
    }

    static bool Legacy<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool, int width)
        where T : struct, IBlockFormat, ILegacyBlock
    {
        int inF = w.InFeatures, blocks = inF / 32;
        int nPad = (n + 1) & ~1, pairs = nPad / 2;
        int qBytes = 34 * blocks;
        long xsBytes = (long)blocks * nPad * 32, dxBytes = (long)blocks * nPad * 4, dx2Bytes = (long)blocks * pairs * 64;
        byte[] rented = ArrayPool<byte>.Shared.Rent(checked((int)(xsBytes + dx2Bytes + dxBytes + qBytes + 64)));
        try
        {
            fixed (byte* buf = rented)
            {
                byte* xs = (byte*)(((nint)buf + 63) & ~(nint)63);
                float* dx2 = (float*)(xs + xsBytes);
                float* dx = (float*)((byte*)dx2 + dx2Bytes);
                byte* q = (byte*)(dx + (long)blocks * nPad);
                for (int t = 0; t < nPad; t++)
                {
                    if (t < n) ActivationQuant.QuantizeQ8_0(x + (long)t * inF, q, inF);
                    else new Span<byte>(q, qBytes).Clear();
                    PackLegacyToken(q, blocks, t, nPad, (sbyte*)xs, dx, dx2);
                }
                var job = new LegacyJob
                {
                    W = w.Data, RowBytes = w.RowBytes, Out = w.OutFeatures, Blocks = blocks, N = n, NPad = nPad,
                    Xs = (sbyte*)xs, Dx = dx, Dx2 = dx2, Y = y, Bias = bias, Width = width,
                };
                pool.Run((w.OutFeatures + Rows - 1) / Rows, &LegacyTiles<T>, &job);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
        return true;
    }

    /// <summary>Tokens per pass over a row tile: 8 (AVX-512: 16 accumulators of two tokens each) or 4 (AVX2).</summary>
    const int TileTokens = 8;

    static void LegacyTiles<T>(void* ctx, int start, int end) where T : struct, ILegacyBlock
    {
        ref LegacyJob j = ref *(LegacyJob*)ctx;
        float* lanes = stackalloc float[Rows * TileTokens * 8];
        byte** rows = stackalloc byte*[Rows];
        float[] rented = ArrayPool<float>.Shared.Rent(Rows * j.Blocks);
        fixed (float* dw = rented)
            for (int tile = start; tile < end; tile++)
                LegacyRowTile<T>(j.W, j.RowBytes, j.Out, j.Blocks, tile * Rows, j.Xs, j.Dx, j.Dx2, j.N, j.NPad, j.Y, j.Out, j.Bias, j.Width, dw, lanes, rows);
        ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>Scratch floats <see cref="LegacyRowTile{T}"/> needs for its accumulator lanes.</summary>
    internal const int LegacyLanes = Rows * TileTokens * 8;

    /// <summary>
    /// Token <paramref name="t"/>'s Q8_0 blocks <paramref name="q"/> (34 bytes each) into the tile layout: xs [block][nPad][32],
    /// dx [block][nPad] and dx2 [block][pair][16] (the pair's first token's d ×8, then its second's ×8).
    /// </summary>
    internal static void PackLegacyToken(byte* q, int blocks, int t, int nPad, sbyte* xs, float* dx, float* dx2)
    {
        int pairs = nPad / 2;
        for (int b = 0; b < blocks; b++)
        {
            Buffer.MemoryCopy(q + 34 * b + 2, xs + ((long)b * nPad + t) * 32, 32, 32);
            float d = BlockBits.F16(q + 34 * b);
            dx[(long)b * nPad + t] = d;
            new Span<float>(dx2 + ((long)b * pairs + t / 2) * 16 + (t & 1) * 8, 8).Fill(d);
        }
    }

    /// <summary>
    /// Rows r0 .. r0 + 3 of W (fewer at the end) against n tokens packed by <see cref="PackLegacyToken"/>:
    /// y[t·yStride + r] for every token. dw holds 4·blocks floats and lanes <see cref="LegacyLanes"/>; rows is 4 pointers.
    /// </summary>
    internal static void LegacyRowTile<T>(byte* w, long rowBytes, int outRows, int blocks, int r0, sbyte* xs, float* dx, float* dx2,
        int n, int nPad, float* y, long yStride, float* bias, int width, float* dw, float* lanes, byte** rows) where T : struct, ILegacyBlock
    {
        int nr = Math.Min(Rows, outRows - r0);
        // the weight scales as float, converted outside the kernels, 8 blocks per vector (the scalar
        // Half→float per block was a quarter of the 8-token Gemm)
        for (int i = 0; i < Rows; i++)
        {
            rows[i] = w + Math.Min(r0 + i, outRows - 1) * rowBytes;
            RowScales<T>(rows[i], blocks, dw + i * blocks);
        }
        // the first pass over the tile prefetches the next tile's rows (contiguous after these)
        long ahead = Rows * rowBytes;
        for (int t0 = 0; t0 < n; ahead = 0)
        {
            int pairs = Math.Min(width == 512 ? 4 : 2, (n - t0 + 1) / 2);
            if (width == 512)
                switch (pairs)
                {
                    case 4: LegacyTile512<T, Four>(rows, dw, blocks, xs, dx2, nPad, t0, ahead, lanes); break;
                    case 3: LegacyTile512<T, Three>(rows, dw, blocks, xs, dx2, nPad, t0, ahead, lanes); break;
                    case 2: LegacyTile512<T, Two>(rows, dw, blocks, xs, dx2, nPad, t0, ahead, lanes); break;
                    default: LegacyTile512<T, One>(rows, dw, blocks, xs, dx2, nPad, t0, ahead, lanes); break;
                }
            else LegacyTile256<T>(rows, dw, blocks, xs, dx, nPad, t0, pairs, lanes);
            int nt = Math.Min(2 * pairs, n - t0);
            for (int i = 0; i < nr; i++)
            {
                float b = bias == null ? 0 : bias[r0 + i];
                for (int t = 0; t < nt; t++)
                    y[(t0 + t) * yStride + r0 + i] = (Int8Dot.HSum8(lanes + (i * TileTokens + t) * 8) + 0f) + b;
            }
            t0 += 2 * pairs;
        }
    }

    /// <summary>d of every block of a row as float32 (the same bits as BlockBits.F16 per block).</summary>
    static void RowScales<T>(byte* row, int blocks, float* dst) where T : struct, ILegacyBlock
    {
        int b = 0;
        for (; b + 8 <= blocks; b += 8) Int8Dot.Scales8<T>(row + (long)b * T.Bytes).Store(dst + b);
        for (; b < blocks; b++) dst[b] = T.Scale(row + (long)b * T.Bytes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Step512(Vector512<float> acc, Vector512<byte> aw, Vector512<sbyte> neg, Vector512<sbyte> x, Vector512<sbyte> nx,
        Vector512<float> dw, float* dx)
    {
        // sign(x, w)·|w| summed in 4s: the exact int32 lanes of ggml's mul_sum_i8_pairs_float (BlendVariable of a
        // compare stays one vpblendmb on a mask register; ConditionalSelect became vpmovm2b + vmovaps + vpternlogd)
        var s = Avx512BW.BlendVariable(x, nx, neg);
        var p = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(aw, s), Vector512.Create((short)1));
        return Avx512F.FusedMultiplyAdd(dw * Vector512.Load(dx), Avx512F.ConvertToVector512Single(p), acc);
    }

    /// <summary>A block's 32 weights in both halves of a 512-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<sbyte> Weights512<T>(byte* wb) where T : struct, ILegacyBlock => T.Unpack512Twice(wb);

    /// <summary>Token pairs per AVX-512 pass, as a type so that the JIT specialises the tile and drops the unused accumulators.</summary>
    interface IPairs { static abstract int Count { get; } }
    struct One : IPairs { public static int Count => 1; }
    struct Two : IPairs { public static int Count => 2; }
    struct Three : IPairs { public static int Count => 3; }
    struct Four : IPairs { public static int Count => 4; }

    /// <summary>
    /// 4 rows × 2·P tokens (P ≤ 4 pairs); a 512-bit vector holds one block of two tokens (8 lanes each), so the
    /// tile keeps up to 16 accumulators, and each weight block is loaded and split into |w| and sign once for all
    /// its tokens. With <paramref name="ahead"/> ≠ 0 the rows that far ahead are prefetched at the same offset (as
    /// in Int8Dot.DotQ8_0Rows4: four interleaved short rows are too short for the hardware prefetcher).
    /// </summary>
    static void LegacyTile512<T, P>(byte** rows, float* dws, int blocks, sbyte* xs, float* dx2, int nPad, int t0, long ahead, float* lanes)
        where T : struct, ILegacyBlock where P : struct, IPairs
    {
        var a00 = Vector512<float>.Zero; var a01 = a00; var a02 = a00; var a03 = a00;
        var a10 = a00; var a11 = a00; var a12 = a00; var a13 = a00;
        var a20 = a00; var a21 = a00; var a22 = a00; var a23 = a00;
        var a30 = a00; var a31 = a00; var a32 = a00; var a33 = a00;
        var x1 = Vector512<sbyte>.Zero; var x2 = x1; var x3 = x1; var nx1 = x1; var nx2 = x1; var nx3 = x1;
        byte* w0 = rows[0], w1 = rows[1], w2 = rows[2], w3 = rows[3];
        float* dw0 = dws, dw1 = dws + blocks, dw2 = dws + 2 * blocks, dw3 = dws + 3 * blocks;
        // pointers stepped per block (indexing [b·nPad + t0] kept the JIT's scalar registers spilling)
        sbyte* xb = xs + (long)t0 * 32;
        float* d = dx2 + (long)(t0 / 2) * 16;
        long xStep = (long)nPad * 32, dStep = (long)nPad * 8;
        for (int b = 0; b < blocks; b++, xb += xStep, d += dStep)
        {
            if (ahead != 0)
            {
                Sse.Prefetch1(w0 + ahead);
                Sse.Prefetch1(w1 + ahead);
                Sse.Prefetch1(w2 + ahead);
                Sse.Prefetch1(w3 + ahead);
            }
            var x0 = Vector512.Load(xb);
            var nx0 = -x0;
            if (P.Count > 1) { x1 = Vector512.Load(xb + 64); nx1 = -x1; }
            if (P.Count > 2) { x2 = Vector512.Load(xb + 128); nx2 = -x2; }
            if (P.Count > 3) { x3 = Vector512.Load(xb + 192); nx3 = -x3; }

            var q = Weights512<T>(w0);
            var aw = Avx512BW.Abs(q);
            var ng = Vector512.LessThan(q, Vector512<sbyte>.Zero);
            var dw = Vector512.Create(dw0[b]);
            a00 = Step512(a00, aw, ng, x0, nx0, dw, d);
            if (P.Count > 1) a01 = Step512(a01, aw, ng, x1, nx1, dw, d + 16);
            if (P.Count > 2) a02 = Step512(a02, aw, ng, x2, nx2, dw, d + 32);
            if (P.Count > 3) a03 = Step512(a03, aw, ng, x3, nx3, dw, d + 48);

            q = Weights512<T>(w1);
            aw = Avx512BW.Abs(q);
            ng = Vector512.LessThan(q, Vector512<sbyte>.Zero);
            dw = Vector512.Create(dw1[b]);
            a10 = Step512(a10, aw, ng, x0, nx0, dw, d);
            if (P.Count > 1) a11 = Step512(a11, aw, ng, x1, nx1, dw, d + 16);
            if (P.Count > 2) a12 = Step512(a12, aw, ng, x2, nx2, dw, d + 32);
            if (P.Count > 3) a13 = Step512(a13, aw, ng, x3, nx3, dw, d + 48);

            q = Weights512<T>(w2);
            aw = Avx512BW.Abs(q);
            ng = Vector512.LessThan(q, Vector512<sbyte>.Zero);
            dw = Vector512.Create(dw2[b]);
            a20 = Step512(a20, aw, ng, x0, nx0, dw, d);
            if (P.Count > 1) a21 = Step512(a21, aw, ng, x1, nx1, dw, d + 16);
            if (P.Count > 2) a22 = Step512(a22, aw, ng, x2, nx2, dw, d + 32);
            if (P.Count > 3) a23 = Step512(a23, aw, ng, x3, nx3, dw, d + 48);

            q = Weights512<T>(w3);
            aw = Avx512BW.Abs(q);
            ng = Vector512.LessThan(q, Vector512<sbyte>.Zero);
            dw = Vector512.Create(dw3[b]);
            a30 = Step512(a30, aw, ng, x0, nx0, dw, d);
            if (P.Count > 1) a31 = Step512(a31, aw, ng, x1, nx1, dw, d + 16);
            if (P.Count > 2) a32 = Step512(a32, aw, ng, x2, nx2, dw, d + 32);
            if (P.Count > 3) a33 = Step512(a33, aw, ng, x3, nx3, dw, d + 48);

            w0 += T.Bytes; w1 += T.Bytes; w2 += T.Bytes; w3 += T.Bytes;
        }
        // lanes[(row·8 + token)·8 + k]
        a00.Store(lanes + 0); a10.Store(lanes + 64); a20.Store(lanes + 128); a30.Store(lanes + 192);
        if (P.Count > 1) { a01.Store(lanes + 16); a11.Store(lanes + 80); a21.Store(lanes + 144); a31.Store(lanes + 208); }
        if (P.Count > 2) { a02.Store(lanes + 32); a12.Store(lanes + 96); a22.Store(lanes + 160); a32.Store(lanes + 224); }
        if (P.Count > 3) { a03.Store(lanes + 48); a13.Store(lanes + 112); a23.Store(lanes + 176); a33.Store(lanes + 240); }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Step256(Vector256<float> acc, Vector256<byte> aw, Vector256<sbyte> q, Vector256<sbyte> x, float dd)
    {
        // VNNI's vpdpbusd sums the four u8·s8 products of each int32 lane exactly, as maddubs + madd do here (|w|·x
        // pairs stay below 2^15, so maddubs never saturates): the same integers in one instruction
        var p = Vnni ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, aw, Avx2.Sign(x, q))
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(x, q)), Vector256.Create((short)1));
        return Fma.MultiplyAdd(Vector256.Create(dd), Avx.ConvertToVector256Single(p), acc);
    }

    /// <summary>4 rows × 2·pairs tokens with 256-bit vectors, as passes of 4 rows × 2 tokens (16 registers).</summary>
    static void LegacyTile256<T>(byte** rows, float* dws, int blocks, sbyte* xs, float* dxs, int nPad, int t0, int pairs, float* lanes) where T : struct, ILegacyBlock
    {
        for (int h = 0; h < 2 * pairs; h += 2)
        {
            var a0 = Vector256<float>.Zero; var b0 = a0; var a1 = a0; var b1 = a0;
            var a2 = a0; var b2 = a0; var a3 = a0; var b3 = a0;
            byte* w0 = rows[0], w1 = rows[1], w2 = rows[2], w3 = rows[3];
            for (int b = 0; b < blocks; b++)
            {
                sbyte* xb = xs + ((long)b * nPad + t0 + h) * 32;
                float* db = dxs + (long)b * nPad + t0 + h;
                var x0 = Vector256.Load(xb);
                var x1 = Vector256.Load(xb + 32);
                float dx0 = db[0], dx1 = db[1];

                var q = T.Unpack256(w0);
                var aw = Avx2.Abs(q);
                float dw = dws[b];
                a0 = Step256(a0, aw, q, x0, dw * dx0);
                b0 = Step256(b0, aw, q, x1, dw * dx1);

                q = T.Unpack256(w1);
                aw = Avx2.Abs(q);
                dw = dws[1 * blocks + b];
                a1 = Step256(a1, aw, q, x0, dw * dx0);
                b1 = Step256(b1, aw, q, x1, dw * dx1);

                q = T.Unpack256(w2);
                aw = Avx2.Abs(q);
                dw = dws[2 * blocks + b];
                a2 = Step256(a2, aw, q, x0, dw * dx0);
                b2 = Step256(b2, aw, q, x1, dw * dx1);

                q = T.Unpack256(w3);
                aw = Avx2.Abs(q);
                dw = dws[3 * blocks + b];
                a3 = Step256(a3, aw, q, x0, dw * dx0);
                b3 = Step256(b3, aw, q, x1, dw * dx1);

                w0 += T.Bytes; w1 += T.Bytes; w2 += T.Bytes; w3 += T.Bytes;
            }
            a0.Store(lanes + (0 * TileTokens + h) * 8); b0.Store(lanes + (0 * TileTokens + h + 1) * 8);
            a1.Store(lanes + (1 * TileTokens + h) * 8); b1.Store(lanes + (1 * TileTokens + h + 1) * 8);
            a2.Store(lanes + (2 * TileTokens + h) * 8); b2.Store(lanes + (2 * TileTokens + h + 1) * 8);
            a3.Store(lanes + (3 * TileTokens + h) * 8); b3.Store(lanes + (3 * TileTokens + h + 1) * 8);
        }
    }

    // ---------------------------------------------------------------- k-quant super-blocks vs Q8_K

    // A weight row's super-block unpacked once per row tile: 256 unsigned values, the madd multipliers
    // (for 32-value chunk k: 8 × sc[2k] then 8 × sc[2k+1]), 16 mins, d, dmin.
    const int KStride = 576, KScv = 256, KMn = 512, KD = 544;

    struct KJob
    {
        public byte* W;
        public long RowBytes;
        public int Out, Blocks, N, NPad;
        public sbyte* Xs;      // [block][pair][chunk 0..7][token 0..1][32] int8
        public short* Bsums;   // [block][pair][token 0..1][16]
        public float* Dx;      // [block][token]
        public float* Y, Bias;
        public int Width;
    }

    static bool KQuant<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool, int width)
        where T : struct, IBlockFormat, IKBlock
    {
        int inF = w.InFeatures, blocks = inF / 256;
        int nPad = (n + Tokens - 1) / Tokens * Tokens, pairs = nPad / 2;
        int qBytes = 292 * blocks;
        long xsBytes = (long)blocks * nPad * 256, bsBytes = (long)blocks * nPad * 32, dxBytes = (long)blocks * nPad * 4;
        byte[] rented = ArrayPool<byte>.Shared.Rent(checked((int)(xsBytes + bsBytes + dxBytes + qBytes + 64)));
        try
        {
            fixed (byte* buf = rented)
            {
                byte* xs = (byte*)(((nint)buf + 63) & ~(nint)63);
                short* bs = (short*)(xs + xsBytes);
                float* dx = (float*)((byte*)bs + bsBytes);
                byte* q = (byte*)(dx + (long)blocks * nPad);
                for (int t = 0; t < nPad; t++)
                {
                    if (t < n) ActivationQuant.QuantizeQ8_K(x + (long)t * inF, q, inF);
                    else new Span<byte>(q, qBytes).Clear();
                    int p = t >> 1, h = t & 1;
                    for (int b = 0; b < blocks; b++)
                    {
                        byte* src = q + 292 * b;
                        dx[(long)b * nPad + t] = *(float*)src;
                        byte* dst = xs + ((long)b * pairs + p) * 512 + h * 32;
                        for (int k = 0; k < 8; k++) Buffer.MemoryCopy(src + 4 + 32 * k, dst + 64 * k, 32, 32);
                        Buffer.MemoryCopy(src + 260, bs + (((long)b * pairs + p) * 2 + h) * 16, 32, 32);
                    }
                }
                var job = new KJob
                {
                    W = w.Data, RowBytes = w.RowBytes, Out = w.OutFeatures, Blocks = blocks, N = n, NPad = nPad,
                    Xs = (sbyte*)xs, Bsums = bs, Dx = dx, Y = y, Bias = bias, Width = width,
                };
                pool.Run((w.OutFeatures + Rows - 1) / Rows, &KTiles<T>, &job);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
        return true;
    }

    static void KTiles<T>(void* ctx, int start, int end) where T : struct, IKBlock
    {
        ref KJob j = ref *(KJob*)ctx;
        int stride = j.Blocks * KStride;
        byte[] rented = ArrayPool<byte>.Shared.Rent(Rows * stride + 64);
        float* sums = stackalloc float[Rows * 2 * Tokens];
        short* sc = stackalloc short[16];
        try
        {
            fixed (byte* raw = rented)
            {
                byte* scratch = (byte*)(((nint)raw + 63) & ~(nint)63);
                for (int tile = start; tile < end; tile++)
                {
                    int r0 = tile * Rows, nr = Math.Min(Rows, j.Out - r0);
                    for (int i = 0; i < nr; i++)
                    {
                        byte* row = j.W + (r0 + i) * j.RowBytes;
                        for (int b = 0; b < j.Blocks; b++)
                        {
                            byte* o = scratch + (long)i * stride + (long)b * KStride;
                            T.Unpack(row + b * T.Bytes, o, sc, (short*)(o + KMn), out float d, out float dmin, true);
                            ((float*)(o + KD))[0] = d;
                            ((float*)(o + KD))[1] = dmin;
                            // 8 copies of each group scale: 16 vector stores (128 scalar stores were
                            // 2.5× the kernel's own time at 4 tokens, Q4_K 2048×7168)
                            short* m = (short*)(o + KScv);
                            for (int g = 0; g < 16; g++) Vector128.Create(sc[g]).Store(m + 8 * g);
                        }
                    }
                    for (int t0 = 0; t0 < j.N;)
                    {
                        // 8 tokens per row pass on AVX-512 where the padded activations hold them, else 4
                        int tokens = j.Width == 512 && t0 + 2 * Tokens <= j.NPad ? 2 * Tokens : Tokens;
                        for (int i = 0; i < nr; i++)
                        {
                            byte* row = scratch + (long)i * stride;
                            if (tokens == 2 * Tokens) KRow512x8(row, j.Blocks, j.Xs, j.Bsums, j.Dx, j.NPad, t0).Store(sums + i * tokens);
                            else if (j.Width == 512) KRow512(row, j.Blocks, j.Xs, j.Bsums, j.Dx, j.NPad, t0).Store(sums + i * tokens);
                            else KRow256(row, j.Blocks, j.Xs, j.Bsums, j.Dx, j.NPad, t0).Store(sums + i * tokens);
                        }
                        int nt = Math.Min(tokens, j.N - t0);
                        for (int i = 0; i < nr; i++)
                        {
                            float b = j.Bias == null ? 0 : j.Bias[r0 + i];
                            for (int t = 0; t < nt; t++) j.Y[(long)(t0 + t) * j.Out + r0 + i] = sums[i * tokens + t] + b;
                        }
                        t0 += tokens;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// The 32 bytes at p in both halves of a 512-bit vector. Written as two loads rather than
    /// Avx512F.BroadcastVector256ToVector512(double*): in Release the JIT's containment of that broadcast
    /// under the byte/short reinterpretations below gave wrong sums (the tiled k-quant Gemm failed its
    /// bit-exactness test in Release only).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<double> Dup256(byte* p)
    {
        var v = Vector256.Load((double*)p);
        return Vector512.Create(v, v);
    }

    /// <summary>[Σi(a), Σi(b), Σi(c), Σi(e)] for four vectors of 8 int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<int> Sum4(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> e)
    {
        var h = Avx2.HorizontalAdd(Avx2.HorizontalAdd(a, b), Avx2.HorizontalAdd(c, e));
        return h.GetLower() + h.GetUpper();
    }

    /// <summary>
    /// The sequential float sum over super-blocks of one weight row against 4 tokens, per token exactly
    /// Int8Dot.DotQ8_K's sum += dx·(d·sumi − dmin·summ) (elementwise vector maths, no fusing).
    /// </summary>
    static Vector128<float> KRow512(byte* row, int blocks, sbyte* xs, short* bsums, float* dxs, int nPad, int t0)
    {
        int pairs = nPad / 2, p0 = t0 / 2;
        var sum = Vector128<float>.Zero;
        for (int b = 0; b < blocks; b++, row += KStride)
        {
            sbyte* x0 = xs + ((long)b * pairs + p0) * 512, x1 = x0 + 512;
            var acc0 = Vector512<int>.Zero;
            var acc1 = Vector512<int>.Zero;
            for (int k = 0; k < 8; k++)
            {
                var u = Dup256(row + 32 * k).AsByte();
                var s = Dup256(row + KScv + 32 * k).AsInt16();
                acc0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(x0 + 64 * k)), s);
                acc1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(x1 + 64 * k)), s);
            }
            var mn = Dup256(row + KMn).AsInt16();
            short* bs = bsums + ((long)b * pairs + p0) * 32;
            var m0 = Avx512BW.MultiplyAddAdjacent(mn, Vector512.Load(bs));
            var m1 = Avx512BW.MultiplyAddAdjacent(mn, Vector512.Load(bs + 32));
            var r0 = Sum4(acc0.GetLower(), acc0.GetUpper(), m0.GetLower(), m0.GetUpper()); // sumi t0, t1, summ t0, t1
            var r1 = Sum4(acc1.GetLower(), acc1.GetUpper(), m1.GetLower(), m1.GetUpper());
            var sumi = Sse2.UnpackLow(r0.AsInt64(), r1.AsInt64()).AsInt32();
            var summ = Sse2.UnpackHigh(r0.AsInt64(), r1.AsInt64()).AsInt32();
            sum = KCombine(sum, row, sumi, summ, dxs + (long)b * nPad + t0);
        }
        return sum;
    }

    /// <summary><see cref="KRow512"/> for 8 tokens (4 pairs): the weight chunks are broadcast once for 4 vectors.</summary>
    static Vector256<float> KRow512x8(byte* row, int blocks, sbyte* xs, short* bsums, float* dxs, int nPad, int t0)
    {
        int pairs = nPad / 2, p0 = t0 / 2;
        var sum = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++, row += KStride)
        {
            sbyte* x0 = xs + ((long)b * pairs + p0) * 512;
            var acc0 = Vector512<int>.Zero; var acc1 = acc0; var acc2 = acc0; var acc3 = acc0;
            for (int k = 0; k < 8; k++)
            {
                var u = Dup256(row + 32 * k).AsByte();
                var s = Dup256(row + KScv + 32 * k).AsInt16();
                sbyte* xk = x0 + 64 * k;
                acc0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(xk)), s);
                acc1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(xk + 512)), s);
                acc2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(xk + 1024)), s);
                acc3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, Vector512.Load(xk + 1536)), s);
            }
            var mn = Dup256(row + KMn).AsInt16();
            short* bs = bsums + ((long)b * pairs + p0) * 32;
            var m0 = Avx512BW.MultiplyAddAdjacent(mn, Vector512.Load(bs));
            var m1 = Avx512BW.MultiplyAddAdjacent(mn, Vector512.Load(bs + 32));
            var m2 = Avx512BW.MultiplyAddAdjacent(mn, Vector512.Load(bs + 64));
            var m3 = Avx512BW.MultiplyAddAdjacent(mn, Vector512.Load(bs + 96));
            var r0 = Sum4(acc0.GetLower(), acc0.GetUpper(), m0.GetLower(), m0.GetUpper());
            var r1 = Sum4(acc1.GetLower(), acc1.GetUpper(), m1.GetLower(), m1.GetUpper());
            var r2 = Sum4(acc2.GetLower(), acc2.GetUpper(), m2.GetLower(), m2.GetUpper());
            var r3 = Sum4(acc3.GetLower(), acc3.GetUpper(), m3.GetLower(), m3.GetUpper());
            var sumi = Vector256.Create(Sse2.UnpackLow(r0.AsInt64(), r1.AsInt64()), Sse2.UnpackLow(r2.AsInt64(), r3.AsInt64())).AsInt32();
            var summ = Vector256.Create(Sse2.UnpackHigh(r0.AsInt64(), r1.AsInt64()), Sse2.UnpackHigh(r2.AsInt64(), r3.AsInt64())).AsInt32();
            var d = Vector256.Create(((float*)(row + KD))[0]);
            var dmin = Vector256.Create(((float*)(row + KD))[1]);
            var fi = Avx.ConvertToVector256Single(sumi);
            var fm = Avx.ConvertToVector256Single(summ);
            sum = Avx.Add(sum, Avx.Multiply(Vector256.Load(dxs + (long)b * nPad + t0), Avx.Subtract(Avx.Multiply(d, fi), Avx.Multiply(dmin, fm))));
        }
        return sum;
    }

    static Vector128<float> KRow256(byte* row, int blocks, sbyte* xs, short* bsums, float* dxs, int nPad, int t0)
    {
        int pairs = nPad / 2, p0 = t0 / 2;
        var sum = Vector128<float>.Zero;
        for (int b = 0; b < blocks; b++, row += KStride)
        {
            sbyte* x0 = xs + ((long)b * pairs + p0) * 512, x1 = x0 + 512;
            var a0 = Vector256<int>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            for (int k = 0; k < 8; k++)
            {
                var u = Vector256.Load(row + 32 * k);
                var s = Vector256.Load((short*)(row + KScv) + 16 * k);
                a0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Vector256.Load(x0 + 64 * k)), s);
                a1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Vector256.Load(x0 + 64 * k + 32)), s);
                a2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Vector256.Load(x1 + 64 * k)), s);
                a3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, Vector256.Load(x1 + 64 * k + 32)), s);
            }
            var mn = Vector256.Load((short*)(row + KMn));
            short* bs = bsums + ((long)b * pairs + p0) * 32;
            var r0 = Sum4(a0, a1, Avx2.MultiplyAddAdjacent(mn, Vector256.Load(bs)), Avx2.MultiplyAddAdjacent(mn, Vector256.Load(bs + 16)));
            var r1 = Sum4(a2, a3, Avx2.MultiplyAddAdjacent(mn, Vector256.Load(bs + 32)), Avx2.MultiplyAddAdjacent(mn, Vector256.Load(bs + 48)));
            var sumi = Sse2.UnpackLow(r0.AsInt64(), r1.AsInt64()).AsInt32();
            var summ = Sse2.UnpackHigh(r0.AsInt64(), r1.AsInt64()).AsInt32();
            sum = KCombine(sum, row, sumi, summ, dxs + (long)b * nPad + t0);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<float> KCombine(Vector128<float> sum, byte* row, Vector128<int> sumi, Vector128<int> summ, float* dx)
    {
        var d = Vector128.Create(((float*)(row + KD))[0]);
        var dmin = Vector128.Create(((float*)(row + KD))[1]);
        var fi = Sse2.ConvertToVector128Single(sumi);
        var fm = Sse2.ConvertToVector128Single(summ);
        return Sse.Add(sum, Sse.Multiply(Vector128.Load(dx), Sse.Subtract(Sse.Multiply(d, fi), Sse.Multiply(dmin, fm))));
    }

    // ---------------------------------------------------------------- float activations

    /// <summary>
    /// Tiled float Gemm (float weights, or any weights with <see cref="ActivationMode.Float"/>): rows are
    /// decoded to float32 once per row tile, then 4 rows × 4 tokens are dotted together. Each (row, token)
    /// keeps FloatDot.Dot's structure (4 interleaved accumulators, then one, V.Sum, scalar tail; FP8 scale
    /// segments summed in order), so the bits equal one MatVec per token.
    /// </summary>
    public static bool TryFloat<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat
    {
        if (n < 2 || !Enabled) return false;
        var job = new FloatJob
        {
            W = w.Data, RowBytes = w.RowBytes, In = w.InFeatures, Out = w.OutFeatures, Blocks = w.InFeatures / T.BlockSize, N = n,
            X = x, Y = y, Bias = bias, Scale = w.ScaleInv, ScaleRows = w.ScaleBlockRows, ScaleCols = w.ScaleBlockCols,
            ScaleColumns = w.ScaleColumns,
        };
        int tiles = (w.OutFeatures + FloatGroupRows - 1) / FloatGroupRows;
        switch (pool.Path)
        {
            case KernelPath.V512: pool.Run(tiles, &FloatTiles<T, Vec512>, &job); return true;
            case KernelPath.V256: pool.Run(tiles, &FloatTiles<T, Vec256>, &job); return true;
            case KernelPath.V128: pool.Run(tiles, &FloatTiles<T, Vec128>, &job); return true;
            default: return false;
        }
    }

    struct FloatJob
    {
        public byte* W;
        public long RowBytes;
        public int In, Out, Blocks, N;
        public float* X, Y, Bias;
        public float* Scale;
        public int ScaleRows, ScaleCols, ScaleColumns;
    }

    /// <summary>Rows decoded together by <see cref="FloatTiles{T, V}"/>: each 4-token group of activations is read once for four 4-row tiles.</summary>
    const int FloatGroupRows = 4 * Rows;

    static void FloatTiles<T, V>(void* ctx, int start, int end) where T : struct, IBlockFormat where V : unmanaged, IVec<V>
    {
        ref FloatJob j = ref *(FloatJob*)ctx;
        bool direct = T.Type == DType.F32;
        float[]? rented = direct ? null : ArrayPool<float>.Shared.Rent(FloatGroupRows * j.In + 16);
        float** wg = stackalloc float*[FloatGroupRows];
        float** xr = stackalloc float*[Tokens];
        float* part = stackalloc float[Rows * Tokens];
        float* sums = stackalloc float[Rows * Tokens];
        V* accs = stackalloc V[4 * Rows * Tokens];
        var path = V.Count == 16 ? KernelPath.V512 : V.Count == 8 ? KernelPath.V256 : KernelPath.V128;
        try
        {
            fixed (float* scratch = rented)
            {
                for (int group = start; group < end; group++)
                {
                    int g0 = group * FloatGroupRows, ng = Math.Min(FloatGroupRows, j.Out - g0);
                    for (int i = 0; i < FloatGroupRows; i++)
                    {
                        int r = Math.Min(g0 + i, j.Out - 1);
                        if (direct) wg[i] = (float*)(j.W + r * j.RowBytes);
                        else if (i < ng)
                        {
                            wg[i] = scratch + (long)i * j.In;
                            T.Dequantize(j.W + r * j.RowBytes, wg[i], j.Blocks, path);
                        }
                        else wg[i] = wg[ng - 1];
                    }
                    for (int t0 = 0; t0 < j.N; t0 += Tokens)
                    {
                        int nt = Math.Min(Tokens, j.N - t0);
                        for (int t = 0; t < Tokens; t++) xr[t] = j.X + (long)Math.Min(t0 + t, j.N - 1) * j.In;
                        for (int r0 = g0; r0 < g0 + ng; r0 += Rows)
                        {
                            float** wr = wg + (r0 - g0);
                            int nr = Math.Min(Rows, j.Out - r0);
                            if (j.Scale == null)
                                TileDot<V>(wr, xr, 0, j.In, accs, sums);
                            else
                            {
                                // Σ over scale segments of scale·dot(segment), in order
                                new Span<float>(sums, Rows * Tokens).Clear();
                                for (int c = 0, k = 0; c < j.In; c += j.ScaleCols, k++)
                                {
                                    TileDot<V>(wr, xr, c, Math.Min(j.ScaleCols, j.In - c), accs, part);
                                    for (int i = 0; i < Rows; i++)
                                    {
                                        float sc = j.Scale[(Math.Min(r0 + i, j.Out - 1) / j.ScaleRows) * j.ScaleColumns + k];
                                        for (int t = 0; t < Tokens; t++) sums[i * Tokens + t] += sc * part[i * Tokens + t];
                                    }
                                }
                            }
                            for (int i = 0; i < nr; i++)
                            {
                                float b = j.Bias == null ? 0 : j.Bias[r0 + i];
                                for (int t = 0; t < nt; t++) j.Y[(long)(t0 + t) * j.Out + r0 + i] = sums[i * Tokens + t] + b;
                            }
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

    /// <summary>Floats of each row and token a <see cref="TileDot{V}"/> pass works through before the next pass: the
    /// 4 rows and 4 tokens of a chunk (48 KiB) stay near L1 across the four accumulator passes (1536x8960 F16, 64 tokens, one
    /// thread: 38.7 → 28.5 ms; chunks of 512–1024 measured no better).</summary>
    const int FloatChunk = 1536;

    /// <summary>
    /// out[i·4 + t] = FloatDot.Dot(w[i] + c0, x[t] + c0, len) for a 4 × 4 tile. FloatDot's 4 accumulators
    /// each see every 4th vector, so each is computed as its own pass with one register per (row, token);
    /// the passes go chunk by chunk along the row (<see cref="FloatChunk"/>), each accumulator carried from
    /// chunk to chunk in <paramref name="accs"/>, so it sees its vectors in the same order.
    /// </summary>
    static void TileDot<V>(float** w, float** x, int c0, int len, V* accs, float* result) where V : unmanaged, IVec<V>
    {
        int c = V.Count;
        int full = len / (4 * c);          // iterations of the 4-accumulator loop
        int single = (len - full * 4 * c) / c; // further vectors into accumulator 0
        float* w0 = w[0] + c0, w1 = w[1] + c0, w2 = w[2] + c0, w3 = w[3] + c0;
        float* x0 = x[0] + c0, x1 = x[1] + c0, x2 = x[2] + c0, x3 = x[3] + c0;
        for (int p = 0; p < 64; p++) accs[p] = V.Zero;
        int chunk = Math.Max(1, FloatChunk / (4 * c));
        for (int k0 = 0; k0 < full + single; k0 += chunk)
            for (int s = 0; s < 4; s++)
            {
                int k1 = Math.Min(k0 + chunk, full + (s == 0 ? single : 0));
                if (k1 <= k0) continue;
                V* o = accs + 16 * s;
                V a00 = o[0], a01 = o[1], a02 = o[2], a03 = o[3], a10 = o[4], a11 = o[5], a12 = o[6], a13 = o[7];
                V a20 = o[8], a21 = o[9], a22 = o[10], a23 = o[11], a30 = o[12], a31 = o[13], a32 = o[14], a33 = o[15];
                for (int k = k0; k < k1; k++)
                {
                    int i = k < full ? 4 * c * k + s * c : 4 * c * full + c * (k - full);
                    V xa = V.Load(x0 + i), xb = V.Load(x1 + i), xc = V.Load(x2 + i), xd = V.Load(x3 + i);
                    V wv = V.Load(w0 + i);
                    a00 = V.Fma(wv, xa, a00); a01 = V.Fma(wv, xb, a01); a02 = V.Fma(wv, xc, a02); a03 = V.Fma(wv, xd, a03);
                    wv = V.Load(w1 + i);
                    a10 = V.Fma(wv, xa, a10); a11 = V.Fma(wv, xb, a11); a12 = V.Fma(wv, xc, a12); a13 = V.Fma(wv, xd, a13);
                    wv = V.Load(w2 + i);
                    a20 = V.Fma(wv, xa, a20); a21 = V.Fma(wv, xb, a21); a22 = V.Fma(wv, xc, a22); a23 = V.Fma(wv, xd, a23);
                    wv = V.Load(w3 + i);
                    a30 = V.Fma(wv, xa, a30); a31 = V.Fma(wv, xb, a31); a32 = V.Fma(wv, xc, a32); a33 = V.Fma(wv, xd, a33);
                }
                o[0] = a00; o[1] = a01; o[2] = a02; o[3] = a03; o[4] = a10; o[5] = a11; o[6] = a12; o[7] = a13;
                o[8] = a20; o[9] = a21; o[10] = a22; o[11] = a23; o[12] = a30; o[13] = a31; o[14] = a32; o[15] = a33;
            }
        int tail = (full * 4 + single) * c;
        for (int p = 0; p < 16; p++)
        {
            float sum = V.Sum(V.Add(V.Add(accs[p], accs[16 + p]), V.Add(accs[32 + p], accs[48 + p])));
            float* wp = w[p >> 2] + c0, xp = x[p & 3] + c0;
            for (int i = tail; i < len; i++) sum += wp[i] * xp[i];
            result[p] = sum;
        }
    }
}
