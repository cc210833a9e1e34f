using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Jevons.Numerics.Quants;

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

    /// <summary>Runs the tiled int8 Gemm when this format/path has one; false leaves the work to the caller.</summary>
    public static bool TryInt8<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool) where T : struct, IBlockFormat
    {
        if (n < 2) return false;
        int width = Width(pool.Path);
        if (width == 0) return false;
        if (typeof(T) == typeof(Q8_0Format)) return Legacy<Q8_0Format>(w, x, y, bias, n, pool, width);
        if (typeof(T) == typeof(Q4_0Format)) return Legacy<Q4_0Format>(w, x, y, bias, n, pool, width);
        if (typeof(T) == typeof(Q5_0Format)) return Legacy<Q5_0Format>(w, x, y, bias, n, pool, width);
        return false;
    }

    /// <summary>512 for AVX-512BW, 256 for AVX2+FMA, 0 where the tiled kernels do not apply.</summary>
    static int Width(KernelPath path)
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
        public sbyte* Xs;      // [block][token] 32 int8 (tokens padded to NPad with zeros)
        public float* Dx;      // [block][token] activation scales
        public float* Y, Bias;
        public int Width;
    }

    static bool Legacy<T>(Linear w, float* x, float* y, float* bias, int n, WorkerPool pool, int width)
        where T : struct, IBlockFormat, ILegacyBlock
    {
        int inF = w.InFeatures, blocks = inF / 32;
        int nPad = (n + Tokens - 1) / Tokens * Tokens;
        int qBytes = 34 * blocks;
        long xsBytes = (long)blocks * nPad * 32, dxBytes = (long)blocks * nPad * 4;
        byte[] rented = ArrayPool<byte>.Shared.Rent(checked((int)(xsBytes + dxBytes + qBytes + 64)));
        try
        {
            fixed (byte* buf = rented)
            {
                byte* xs = (byte*)(((nint)buf + 63) & ~(nint)63);
                float* dx = (float*)(xs + xsBytes);
                byte* q = (byte*)(dx + (long)blocks * nPad);
                for (int t = 0; t < nPad; t++)
                {
                    if (t < n) ActivationQuant.QuantizeQ8_0(x + (long)t * inF, q, inF);
                    else new Span<byte>(q, qBytes).Clear();
                    for (int b = 0; b < blocks; b++)
                    {
                        Buffer.MemoryCopy(q + 34 * b + 2, xs + ((long)b * nPad + t) * 32, 32, 32);
                        dx[(long)b * nPad + t] = (float)*(Half*)(q + 34 * b);
                    }
                }
                var job = new LegacyJob
                {
                    W = w.Data, RowBytes = w.RowBytes, Out = w.OutFeatures, Blocks = blocks, N = n, NPad = nPad,
                    Xs = (sbyte*)xs, Dx = dx, Y = y, Bias = bias, Width = width,
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

    static void LegacyTiles<T>(void* ctx, int start, int end) where T : struct, ILegacyBlock
    {
        ref LegacyJob j = ref *(LegacyJob*)ctx;
        float* lanes = stackalloc float[Rows * Tokens * 8];
        byte** rows = stackalloc byte*[Rows];
        for (int tile = start; tile < end; tile++)
        {
            int r0 = tile * Rows, nr = Math.Min(Rows, j.Out - r0);
            for (int i = 0; i < Rows; i++) rows[i] = j.W + Math.Min(r0 + i, j.Out - 1) * j.RowBytes;
            for (int t0 = 0; t0 < j.N; t0 += Tokens)
            {
                if (j.Width == 512) LegacyTile512<T>(rows, j.Blocks, j.Xs, j.Dx, j.NPad, t0, lanes);
                else LegacyTile256<T>(rows, j.Blocks, j.Xs, j.Dx, j.NPad, t0, lanes);
                int nt = Math.Min(Tokens, j.N - t0);
                for (int i = 0; i < nr; i++)
                {
                    float b = j.Bias == null ? 0 : j.Bias[r0 + i];
                    for (int t = 0; t < nt; t++)
                        j.Y[(long)(t0 + t) * j.Out + r0 + i] = (Int8Dot.HSum8(lanes + (i * Tokens + t) * 8) + 0f) + b;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Step512(Vector512<float> acc, Vector512<byte> aw, Vector512<sbyte> neg, Vector512<sbyte> x, Vector512<sbyte> nx,
        Vector512<float> dw, Vector512<float> dx)
    {
        // sign(x, w)·|w| summed in 4s: the exact int32 lanes of ggml's mul_sum_i8_pairs_float
        var s = Vector512.ConditionalSelect(neg, nx, x);
        var p = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(aw, s), Vector512.Create((short)1));
        return Avx512F.FusedMultiplyAdd(dw * dx, Avx512F.ConvertToVector512Single(p), acc);
    }

    /// <summary>4 rows × 4 tokens; a 512-bit vector holds one block of two tokens (8 lanes each).</summary>
    static void LegacyTile512<T>(byte** rows, int blocks, sbyte* xs, float* dxs, int nPad, int t0, float* lanes) where T : struct, ILegacyBlock
    {
        var a00 = Vector512<float>.Zero; var a01 = a00; var a10 = a00; var a11 = a00;
        var a20 = a00; var a21 = a00; var a30 = a00; var a31 = a00;
        byte* w0 = rows[0], w1 = rows[1], w2 = rows[2], w3 = rows[3];
        for (int b = 0; b < blocks; b++)
        {
            sbyte* xb = xs + ((long)b * nPad + t0) * 32;
            float* db = dxs + (long)b * nPad + t0;
            var x0 = Vector512.Load(xb);
            var x1 = Vector512.Load(xb + 64);
            var nx0 = -x0;
            var nx1 = -x1;
            var d0 = Vector512.Create(Vector256.Create(db[0]), Vector256.Create(db[1]));
            var d1 = Vector512.Create(Vector256.Create(db[2]), Vector256.Create(db[3]));

            var q = T.Unpack256(w0);
            var aw = Vector512.Create(Avx2.Abs(q), Avx2.Abs(q));
            var ng = Vector512.LessThan(Vector512.Create(q, q), Vector512<sbyte>.Zero);
            var dw = Vector512.Create(T.Scale(w0));
            a00 = Step512(a00, aw, ng, x0, nx0, dw, d0);
            a01 = Step512(a01, aw, ng, x1, nx1, dw, d1);

            q = T.Unpack256(w1);
            aw = Vector512.Create(Avx2.Abs(q), Avx2.Abs(q));
            ng = Vector512.LessThan(Vector512.Create(q, q), Vector512<sbyte>.Zero);
            dw = Vector512.Create(T.Scale(w1));
            a10 = Step512(a10, aw, ng, x0, nx0, dw, d0);
            a11 = Step512(a11, aw, ng, x1, nx1, dw, d1);

            q = T.Unpack256(w2);
            aw = Vector512.Create(Avx2.Abs(q), Avx2.Abs(q));
            ng = Vector512.LessThan(Vector512.Create(q, q), Vector512<sbyte>.Zero);
            dw = Vector512.Create(T.Scale(w2));
            a20 = Step512(a20, aw, ng, x0, nx0, dw, d0);
            a21 = Step512(a21, aw, ng, x1, nx1, dw, d1);

            q = T.Unpack256(w3);
            aw = Vector512.Create(Avx2.Abs(q), Avx2.Abs(q));
            ng = Vector512.LessThan(Vector512.Create(q, q), Vector512<sbyte>.Zero);
            dw = Vector512.Create(T.Scale(w3));
            a30 = Step512(a30, aw, ng, x0, nx0, dw, d0);
            a31 = Step512(a31, aw, ng, x1, nx1, dw, d1);

            w0 += T.Bytes; w1 += T.Bytes; w2 += T.Bytes; w3 += T.Bytes;
        }
        // lanes[(row·4 + token)·8 + k]
        a00.Store(lanes + 0); a01.Store(lanes + 16);
        a10.Store(lanes + 32); a11.Store(lanes + 48);
        a20.Store(lanes + 64); a21.Store(lanes + 80);
        a30.Store(lanes + 96); a31.Store(lanes + 112);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Step256(Vector256<float> acc, Vector256<byte> aw, Vector256<sbyte> q, Vector256<sbyte> x, float dd)
    {
        var p = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(x, q)), Vector256.Create((short)1));
        return Fma.MultiplyAdd(Vector256.Create(dd), Avx.ConvertToVector256Single(p), acc);
    }

    /// <summary>4 rows × 4 tokens with 256-bit vectors, done as two passes of 4 rows × 2 tokens (16 registers).</summary>
    static void LegacyTile256<T>(byte** rows, int blocks, sbyte* xs, float* dxs, int nPad, int t0, float* lanes) where T : struct, ILegacyBlock
    {
        for (int h = 0; h < Tokens; h += 2)
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
                float dw = T.Scale(w0);
                a0 = Step256(a0, aw, q, x0, dw * dx0);
                b0 = Step256(b0, aw, q, x1, dw * dx1);

                q = T.Unpack256(w1);
                aw = Avx2.Abs(q);
                dw = T.Scale(w1);
                a1 = Step256(a1, aw, q, x0, dw * dx0);
                b1 = Step256(b1, aw, q, x1, dw * dx1);

                q = T.Unpack256(w2);
                aw = Avx2.Abs(q);
                dw = T.Scale(w2);
                a2 = Step256(a2, aw, q, x0, dw * dx0);
                b2 = Step256(b2, aw, q, x1, dw * dx1);

                q = T.Unpack256(w3);
                aw = Avx2.Abs(q);
                dw = T.Scale(w3);
                a3 = Step256(a3, aw, q, x0, dw * dx0);
                b3 = Step256(b3, aw, q, x1, dw * dx1);

                w0 += T.Bytes; w1 += T.Bytes; w2 += T.Bytes; w3 += T.Bytes;
            }
            a0.Store(lanes + (0 * Tokens + h) * 8); b0.Store(lanes + (0 * Tokens + h + 1) * 8);
            a1.Store(lanes + (1 * Tokens + h) * 8); b1.Store(lanes + (1 * Tokens + h + 1) * 8);
            a2.Store(lanes + (2 * Tokens + h) * 8); b2.Store(lanes + (2 * Tokens + h + 1) * 8);
            a3.Store(lanes + (3 * Tokens + h) * 8); b3.Store(lanes + (3 * Tokens + h + 1) * 8);
        }
    }
}
