using System.Runtime.CompilerServices;

namespace Jevons.Numerics.Simd;

/// <summary>
/// Scalar decoding of the small float formats (fp16, bf16, FP8 E4M3): the bottom of Numerics, below the block
/// formats (Numerics/Quants) and the drivers (Numerics/Kernels), which both read weights through it.
/// </summary>
internal static class FloatBits
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

    /// <summary>fp16 bits to float32, exact: normals by moving the exponent (bias 15 → 127), subnormals as
    /// an integer times 2^-24, Inf/NaN with their payload (same bits as (float)Half, which .NET does not inline).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToFloat(ushort h)
    {
        uint em = h & 0x7FFFu, sign = (uint)(h & 0x8000) << 16;
        float f;
        if (em - 0x0400u < 0x7800u) f = BitConverter.UInt32BitsToSingle((em << 13) + 0x38000000u);
        else if (em < 0x0400u) f = (int)em * 5.9604645E-08f; // 2^-24
        else f = BitConverter.UInt32BitsToSingle((em << 13) | 0x7F800000u);
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(f) | sign);
    }

    /// <summary>bf16 bits to float32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bf16ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}
