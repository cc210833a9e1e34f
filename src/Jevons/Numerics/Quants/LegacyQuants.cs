using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Quants;

internal static unsafe class BlockBits
{
    /// <summary>A 256-bit vector in both halves of a 512-bit one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<sbyte> Twice(Vector256<sbyte> q) => System.Runtime.Intrinsics.X86.Avx512F.InsertVector256(q.ToVector512Unsafe(), q, 1);

    /// <summary>The fp16 at p as float32, exact (same bits as (float)Half, which .NET does not inline).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16(byte* p) => HalfToFloat(*(ushort*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToFloat(ushort h) => FloatBits.HalfToFloat(h);

    /// <summary>32 bytes, byte j = 0x10 where bit j of qh is set (the fifth bit of Q5 values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> FifthBits(uint qh)
    {
        const ulong rep = 0x0101010101010101UL;
        var spread = Vector256.Create((qh & 0xFF) * rep, ((qh >> 8) & 0xFF) * rep, ((qh >> 16) & 0xFF) * rep, (qh >> 24) * rep).AsByte();
        var sel = Vector256.Create(0x8040201008040201UL).AsByte();
        return Vector256.Equals(spread & sel, sel) & Vector256.Create((byte)0x10);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Nibbles(byte* qs)
    {
        var v = Vector128.Load(qs);
        return Vector256.Create(v & Vector128.Create((byte)0x0F), Vector128.ShiftRightLogical(v, 4));
    }
}

/// <summary>Q8_0: fp16 d, 32 × int8; w = d·q.</summary>
public unsafe struct Q8_0Format : IBlockFormat, ILegacyBlock
{
    public static DType Type => DType.Q8_0;
    public static int BlockSize => 32;
    public static int BlockBytes => 34;
    public static int Bytes => 34;
    public static bool HasMin => false;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_0;
    public static float Scale(byte* b) => BlockBits.F16(b);
    public static float Min(byte* b) => 0;
    public static void Unpack(byte* b, sbyte* q) => Buffer.MemoryCopy(b + 2, q, 32, 32);
    public static Vector256<sbyte> Unpack256(byte* b) => Vector256.Load((sbyte*)(b + 2));

    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 34, dst += 32)
        {
            float d = BlockBits.F16(src);
            for (int j = 0; j < 32; j++) dst[j] = ((sbyte*)src)[2 + j] * d;
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static Vector512<sbyte> Unpack512Twice(byte* b) => System.Runtime.Intrinsics.X86.Avx512F.BroadcastVector256ToVector512((double*)(b + 2)).AsSByte();
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => Int8Dot.DotQ8_0<Q8_0Format>(w, xq, blocks, path);
}

/// <summary>Q4_0: fp16 d, 16 bytes of nibbles (low nibbles are elements 0..15); w = d·(q − 8).</summary>
public unsafe struct Q4_0Format : IBlockFormat, ILegacyBlock
{
    public static DType Type => DType.Q4_0;
    public static int BlockSize => 32;
    public static int BlockBytes => 18;
    public static int Bytes => 18;
    public static bool HasMin => false;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_0;
    public static float Scale(byte* b) => BlockBits.F16(b);
    public static float Min(byte* b) => 0;

    public static void Unpack(byte* b, sbyte* q)
    {
        for (int j = 0; j < 16; j++)
        {
            q[j] = (sbyte)((b[2 + j] & 0x0F) - 8);
            q[j + 16] = (sbyte)((b[2 + j] >> 4) - 8);
        }
    }

    public static Vector256<sbyte> Unpack256(byte* b) => BlockBits.Nibbles(b + 2).AsSByte() - Vector256.Create((sbyte)8);

    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 18, dst += 32)
        {
            float d = BlockBits.F16(src);
            for (int j = 0; j < 16; j++)
            {
                dst[j] = ((src[2 + j] & 0x0F) - 8) * d;
                dst[j + 16] = ((src[2 + j] >> 4) - 8) * d;
            }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static Vector512<sbyte> Unpack512Twice(byte* b) => BlockBits.Twice(Unpack256(b));
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => Int8Dot.DotQ8_0<Q4_0Format>(w, xq, blocks, path);
}

/// <summary>Q4_1: fp16 d, fp16 m, 16 bytes of nibbles; w = d·q + m.</summary>
public unsafe struct Q4_1Format : IBlockFormat, ILegacyBlock
{
    public static DType Type => DType.Q4_1;
    public static int BlockSize => 32;
    public static int BlockBytes => 20;
    public static int Bytes => 20;
    public static bool HasMin => true;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_0;
    public static float Scale(byte* b) => BlockBits.F16(b);
    public static float Min(byte* b) => BlockBits.F16(b + 2);

    public static void Unpack(byte* b, sbyte* q)
    {
        for (int j = 0; j < 16; j++)
        {
            q[j] = (sbyte)(b[4 + j] & 0x0F);
            q[j + 16] = (sbyte)(b[4 + j] >> 4);
        }
    }

    public static Vector256<sbyte> Unpack256(byte* b) => BlockBits.Nibbles(b + 4).AsSByte();

    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path)
    {
        for (int i = 0; i < blocks; i++, src += 20, dst += 32)
        {
            float d = BlockBits.F16(src), m = BlockBits.F16(src + 2);
            for (int j = 0; j < 16; j++)
            {
                dst[j] = (src[4 + j] & 0x0F) * d + m;
                dst[j + 16] = (src[4 + j] >> 4) * d + m;
            }
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static Vector512<sbyte> Unpack512Twice(byte* b) => BlockBits.Twice(Unpack256(b));
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => Int8Dot.DotQ8_0<Q4_1Format>(w, xq, blocks, path);
}

/// <summary>Q5_0: fp16 d, 4 bytes of fifth bits (bit j for element j), 16 bytes of nibbles; w = d·(q − 16).</summary>
public unsafe struct Q5_0Format : IBlockFormat, ILegacyBlock
{
    public static DType Type => DType.Q5_0;
    public static int BlockSize => 32;
    public static int BlockBytes => 22;
    public static int Bytes => 22;
    public static bool HasMin => false;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_0;
    public static float Scale(byte* b) => BlockBits.F16(b);
    public static float Min(byte* b) => 0;

    public static void Unpack(byte* b, sbyte* q)
    {
        uint qh = *(uint*)(b + 2);
        for (int j = 0; j < 16; j++)
        {
            q[j] = (sbyte)(((b[6 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10)) - 16);
            q[j + 16] = (sbyte)(((b[6 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10)) - 16);
        }
    }

    public static Vector256<sbyte> Unpack256(byte* b) =>
        (BlockBits.Nibbles(b + 6) | BlockBits.FifthBits(*(uint*)(b + 2))).AsSByte() - Vector256.Create((sbyte)16);

    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path)
    {
        sbyte* q = stackalloc sbyte[32];
        for (int i = 0; i < blocks; i++, src += 22, dst += 32)
        {
            float d = BlockBits.F16(src);
            Unpack(src, q);
            for (int j = 0; j < 32; j++) dst[j] = q[j] * d;
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static Vector512<sbyte> Unpack512Twice(byte* b) => BlockBits.Twice(Unpack256(b));
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => Int8Dot.DotQ8_0<Q5_0Format>(w, xq, blocks, path);
}

/// <summary>Q5_1: fp16 d, fp16 m, 4 bytes of fifth bits, 16 bytes of nibbles; w = d·q + m.</summary>
public unsafe struct Q5_1Format : IBlockFormat, ILegacyBlock
{
    public static DType Type => DType.Q5_1;
    public static int BlockSize => 32;
    public static int BlockBytes => 24;
    public static int Bytes => 24;
    public static bool HasMin => true;
    public static bool IsFloat => false;
    public static DType ActivationType => DType.Q8_0;
    public static float Scale(byte* b) => BlockBits.F16(b);
    public static float Min(byte* b) => BlockBits.F16(b + 2);

    public static void Unpack(byte* b, sbyte* q)
    {
        uint qh = *(uint*)(b + 4);
        for (int j = 0; j < 16; j++)
        {
            q[j] = (sbyte)((b[8 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10));
            q[j + 16] = (sbyte)((b[8 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10));
        }
    }

    public static Vector256<sbyte> Unpack256(byte* b) => (BlockBits.Nibbles(b + 8) | BlockBits.FifthBits(*(uint*)(b + 4))).AsSByte();

    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path)
    {
        sbyte* q = stackalloc sbyte[32];
        for (int i = 0; i < blocks; i++, src += 24, dst += 32)
        {
            float d = BlockBits.F16(src), m = BlockBits.F16(src + 2);
            Unpack(src, q);
            for (int j = 0; j < 32; j++) dst[j] = q[j] * d + m;
        }
    }

    public static float Dot(byte* w, float* x, int n, KernelPath path) => throw new NotSupportedException();
    public static Vector512<sbyte> Unpack512Twice(byte* b) => BlockBits.Twice(Unpack256(b));
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => Int8Dot.DotQ8_0<Q5_1Format>(w, xq, blocks, path);
}
