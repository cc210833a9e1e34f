using System.Runtime.InteropServices;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics;

/// <summary>
/// Decoding of every stored element/block type into float32, and row quantisers for writing files.
/// The matrix kernels decode inside their loops through the same block types (Numerics/Quants).
/// </summary>
public static unsafe class Quantization
{
    /// <summary>The 256-entry FP8 E4M3 (e4m3fn) decode table.</summary>
    public static float[] F8E4M3Table => FloatBits.F8E4M3Table;

    public static float Bf16ToFloat(ushort bits) => FloatBits.Bf16ToFloat(bits);

    /// <summary>float32 → bfloat16, round to nearest even, NaN kept quiet (as ggml's GGML_FP32_TO_BF16).</summary>
    public static ushort FloatToBf16(float v)
    {
        uint u = BitConverter.SingleToUInt32Bits(v);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>float32 → FP8 E4M3 (e4m3fn), round to nearest even, saturating at ±448; NaN → 0x7F.</summary>
    public static byte FloatToF8E4M3(float v)
    {
        if (float.IsNaN(v)) return 0x7F;
        int sign = v < 0 || (v == 0 && float.IsNegative(v)) ? 0x80 : 0;
        float a = MathF.Abs(v);
        if (a >= 448f) return (byte)(sign | 0x7E);
        if (a < 0.015625f) // below 2^-6: subnormal steps of 2^-9
        {
            int m = (int)MathF.Round(a * 512f);
            return (byte)(sign | m); // m == 8 is the smallest normal, 0x08
        }
        int e = MathF.ILogB(a);
        float frac = a / MathF.ScaleB(1f, e); // [1, 2)
        int mant = (int)MathF.Round((frac - 1f) * 8f);
        if (mant == 8) { mant = 0; e++; }
        int code = ((e + 7) << 3) | mant;
        if (code > 0x7E) code = 0x7E;
        return (byte)(sign | code);
    }

    /// <summary>Decodes <paramref name="dst"/>.Length values from <paramref name="src"/> (whole blocks). Every <see cref="DType"/>.</summary>
    public static void Dequantize(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        if (n == 0) return;
        long need = type.ByteCount(n);
        if (src.Length < need)
            throw new ArgumentException($"dequantize {type.Name()}: {n} values need {need} bytes, got {src.Length}");
        fixed (byte* s = src)
        fixed (float* d = dst)
        {
            if (BlockFormats.IsSupported(type))
            {
                var action = new DequantizeAction { Src = s, Dst = d, Blocks = n / type.BlockSize(), Path = KernelDispatch.Default };
                BlockFormats.Dispatch(type, ref action);
                return;
            }
            switch (type)
            {
                case DType.F64: for (int i = 0; i < n; i++) d[i] = (float)((double*)s)[i]; return;
                case DType.I8: for (int i = 0; i < n; i++) d[i] = ((sbyte*)s)[i]; return;
                case DType.U8:
                case DType.Bool: for (int i = 0; i < n; i++) d[i] = s[i]; return;
                case DType.I16: for (int i = 0; i < n; i++) d[i] = ((short*)s)[i]; return;
                case DType.I32: for (int i = 0; i < n; i++) d[i] = ((int*)s)[i]; return;
                case DType.I64: for (int i = 0; i < n; i++) d[i] = ((long*)s)[i]; return;
                case DType.Q8_1:
                    for (int b = 0; b < n / 32; b++)
                    {
                        float scale = (float)*(Half*)(s + 36 * b);
                        for (int j = 0; j < 32; j++) d[32 * b + j] = ((sbyte*)s)[36 * b + 4 + j] * scale;
                    }
                    return;
                case DType.Q8_K:
                    for (int b = 0; b < n / 256; b++)
                    {
                        float scale = *(float*)(s + 292 * b);
                        for (int j = 0; j < 256; j++) d[256 * b + j] = ((sbyte*)s)[292 * b + 4 + j] * scale;
                    }
                    return;
                default:
                    throw new NotSupportedException($"dequantize {type.Name()} is not implemented");
            }
        }
    }

    struct DequantizeAction : IFormatAction
    {
        public byte* Src;
        public float* Dst;
        public int Blocks;
        public KernelPath Path;
        public void Run<T>() where T : struct, IBlockFormat => T.Dequantize(Src, Dst, Blocks, Path);
    }

    /// <summary>True when <see cref="QuantizeRow"/> can write <paramref name="type"/>.</summary>
    public static bool CanQuantize(DType type) => type is DType.F32 or DType.F16 or DType.BF16 or DType.F8_E4M3
        or DType.Q8_0 or DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1
        or DType.Q2_K or DType.Q3_K or DType.Q4_K or DType.Q5_K or DType.Q6_K;

    /// <summary>
    /// Quantises one row (any whole number of blocks) into <paramref name="type"/>, as llama.cpp's
    /// reference quantisers (quantize_row_*_ref, what llama-quantize writes without an imatrix) do.
    /// </summary>
    public static void QuantizeRow(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        int n = src.Length;
        if (!CanQuantize(type)) throw new NotSupportedException($"quantize to {type.Name()} is not implemented");
        long need = type.ByteCount(n);
        if (dst.Length < need)
            throw new ArgumentException($"quantize {type.Name()}: {n} values need {need} bytes, got {dst.Length}");
        fixed (float* x = src)
        fixed (byte* y = dst)
        {
            switch (type)
            {
                case DType.F32: Buffer.MemoryCopy(x, y, need, need); break;
                case DType.F16: for (int i = 0; i < n; i++) ((Half*)y)[i] = (Half)x[i]; break;
                case DType.BF16: for (int i = 0; i < n; i++) ((ushort*)y)[i] = FloatToBf16(x[i]); break;
                case DType.F8_E4M3: for (int i = 0; i < n; i++) y[i] = FloatToF8E4M3(x[i]); break;
                case DType.Q8_0: ReferenceQuantizer.Q8_0(x, y, n); break;
                case DType.Q4_0: ReferenceQuantizer.Q4_0(x, y, n); break;
                case DType.Q4_1: ReferenceQuantizer.Q4_1(x, y, n); break;
                case DType.Q5_0: ReferenceQuantizer.Q5_0(x, y, n); break;
                case DType.Q5_1: ReferenceQuantizer.Q5_1(x, y, n); break;
                case DType.Q2_K: ReferenceQuantizer.Q2_K(x, y, n); break;
                case DType.Q3_K: ReferenceQuantizer.Q3_K(x, y, n); break;
                case DType.Q4_K: ReferenceQuantizer.Q4_K(x, y, n); break;
                case DType.Q5_K: ReferenceQuantizer.Q5_K(x, y, n); break;
                case DType.Q6_K: ReferenceQuantizer.Q6_K(x, y, n); break;
            }
        }
    }

    /// <summary>
    /// Quantises activations to Q8_0 (llama.cpp CPU semantics: d = fp16(amax/127), q = round-half-even(x·127/amax))
    /// or Q8_K blocks, for the integer dot products.
    /// </summary>
    public static void QuantizeActivations(DType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        long need = type.ByteCount(x.Length);
        if (dst.Length < need) throw new ArgumentException($"{type.Name()} activations: need {need} bytes, got {dst.Length}");
        fixed (float* px = x)
        fixed (byte* pd = dst)
            ActivationQuant.Quantize(type, px, pd, x.Length);
    }
}
