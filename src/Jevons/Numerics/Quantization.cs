namespace Jevons.Numerics;

/// <summary>
/// Decoding of every stored element/block type into float32. Reference (scalar) implementation;
/// the matrix kernels decode inside their loops and are tested against this.
/// </summary>
public static class Quantization
{
    /// <summary>The 256-entry FP8 E4M3 (e4m3fn) decode table.</summary>
    public static readonly float[] F8E4M3Table = BuildF8Table();

    static float[] BuildF8Table()
    {
        var t = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int sign = b >> 7, e = (b >> 3) & 0xF, m = b & 7;
            float v;
            if (e == 15 && m == 7) v = float.NaN;
            else if (e == 0) v = m / 8f * MathF.Pow(2, -6);
            else v = (1 + m / 8f) * MathF.Pow(2, e - 7);
            t[b] = sign == 1 ? -v : v;
        }
        return t;
    }

    public static float Bf16ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Decodes <paramref name="dst"/>.Length values from <paramref name="src"/> (whole blocks).</summary>
    public static void Dequantize(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        switch (type)
        {
            case DType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src)[..n].CopyTo(dst);
                return;
            case DType.F16:
            {
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < n; i++) dst[i] = (float)h[i];
                return;
            }
            case DType.BF16:
            {
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < n; i++) dst[i] = Bf16ToFloat(h[i]);
                return;
            }
            case DType.F8_E4M3:
                for (int i = 0; i < n; i++) dst[i] = F8E4M3Table[src[i]];
                return;
            case DType.Q8_0:
                for (int b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice(b * 34, 34);
                    float d = (float)System.Runtime.InteropServices.MemoryMarshal.Read<Half>(blk);
                    for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (sbyte)blk[2 + j];
                }
                return;
            default:
                throw new NotSupportedException($"dequantize {type.Name()} is not implemented");
        }
    }
}
