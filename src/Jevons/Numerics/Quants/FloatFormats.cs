using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Quants;

/// <summary>IEEE float32 weights.</summary>
public unsafe struct F32Format : IBlockFormat
{
    public static DType Type => DType.F32;
    public static int BlockSize => 1;
    public static int BlockBytes => 4;
    public static bool IsFloat => true;
    public static DType ActivationType => DType.F32;
    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path) => Buffer.MemoryCopy(src, dst, blocks * 4L, blocks * 4L);
    public static float Dot(byte* w, float* x, int n, KernelPath path) => FloatDot.Dot<F32Elements>(w, x, n, path);
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => throw new NotSupportedException("F32 has no integer dot");
}

/// <summary>IEEE half weights.</summary>
public unsafe struct F16Format : IBlockFormat
{
    public static DType Type => DType.F16;
    public static int BlockSize => 1;
    public static int BlockBytes => 2;
    public static bool IsFloat => true;
    public static DType ActivationType => DType.F32;
    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path) => FloatDot.Decode<F16Elements>(src, dst, blocks, path);
    public static float Dot(byte* w, float* x, int n, KernelPath path) => FloatDot.Dot<F16Elements>(w, x, n, path);
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => throw new NotSupportedException("F16 has no integer dot");
}

/// <summary>bfloat16 weights (the top half of a float32).</summary>
public unsafe struct BF16Format : IBlockFormat
{
    public static DType Type => DType.BF16;
    public static int BlockSize => 1;
    public static int BlockBytes => 2;
    public static bool IsFloat => true;
    public static DType ActivationType => DType.F32;
    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path) => FloatDot.Decode<Bf16Elements>(src, dst, blocks, path);
    public static float Dot(byte* w, float* x, int n, KernelPath path) => FloatDot.Dot<Bf16Elements>(w, x, n, path);
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => throw new NotSupportedException("BF16 has no integer dot");
}

/// <summary>FP8 E4M3 (e4m3fn) weights; the 128x128 block scales are applied by the matrix driver.</summary>
public unsafe struct F8E4M3Format : IBlockFormat
{
    public static DType Type => DType.F8_E4M3;
    public static int BlockSize => 1;
    public static int BlockBytes => 1;
    public static bool IsFloat => true;
    public static DType ActivationType => DType.F32;
    public static void Dequantize(byte* src, float* dst, int blocks, KernelPath path) => FloatDot.Decode<F8Elements>(src, dst, blocks, path);
    public static float Dot(byte* w, float* x, int n, KernelPath path) => FloatDot.Dot<F8Elements>(w, x, n, path);
    public static float DotInt8(byte* w, byte* xq, int blocks, KernelPath path) => throw new NotSupportedException("F8_E4M3 has no integer dot");
}
