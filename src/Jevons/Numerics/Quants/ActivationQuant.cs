using System.Runtime.Intrinsics;

namespace Jevons.Numerics.Quants;

/// <summary>
/// Quantisation of activation vectors for the integer dot products, as llama.cpp's CPU backend does it.
/// </summary>
public static unsafe class ActivationQuant
{
    /// <summary>Bytes needed for n activations in <paramref name="type"/> blocks (Q8_0 or Q8_K).</summary>
    public static int ByteCount(DType type, int n) => (int)type.ByteCount(n);

    /// <summary>
    /// Q8_0 blocks of 32 the way llama.cpp's x86 quantize_row_q8_0 does (AVX2 path):
    /// d = fp16(amax/127), q = round-half-even(x · (127/amax)). n must be a multiple of 32.
    /// </summary>
    public static void QuantizeQ8_0(float* x, byte* dst, int n)
    {
        if (Vector256.IsHardwareAccelerated)
        {
            QuantizeQ8_0Vector(x, dst, n);
            return;
        }
        QuantizeQ8_0Scalar(x, dst, n);
    }

    /// <summary>The scalar twin of the vector Q8_0 quantiser (same bits).</summary>
    internal static void QuantizeQ8_0Scalar(float* x, byte* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, dst += 34)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            *(Half*)dst = (Half)(amax / 127f);
            float id = amax != 0 ? 127f / amax : 0f;
            sbyte* q = (sbyte*)(dst + 2);
            for (int j = 0; j < 32; j++)
                q[j] = (sbyte)Math.Clamp((int)MathF.Round(x[j] * id), -128, 127);
        }
    }

    /// <summary>Q8_0 with 256-bit vectors: the same amax, the same scalar d and 1/d, round-half-even, clamp.</summary>
    internal static void QuantizeQ8_0Vector(float* x, byte* dst, int n)
    {
        var signMask = Vector256.Create(0x7FFFFFFF).AsSingle();
        for (int b = 0; b < n / 32; b++, x += 32, dst += 34)
        {
            var v0 = Vector256.Load(x); var v1 = Vector256.Load(x + 8); var v2 = Vector256.Load(x + 16); var v3 = Vector256.Load(x + 24);
            var m = Vector256.Max(Vector256.Max(v0 & signMask, v1 & signMask), Vector256.Max(v2 & signMask, v3 & signMask));
            var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
            float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
            *(Half*)dst = (Half)(amax / 127f);
            var id = Vector256.Create(amax != 0 ? 127f / amax : 0f);
            var i0 = Q(v0 * id); var i1 = Q(v1 * id); var i2 = Q(v2 * id); var i3 = Q(v3 * id);
            Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).AsSByte().Store((sbyte*)(dst + 2));
        }

        static Vector256<int> Q(Vector256<float> v) => Vector256.Clamp(Vector256.ConvertToInt32(Vector256.Round(v)), Vector256.Create(-128), Vector256.Create(127));
    }

    /// <summary>
    /// Q8_K blocks of 256 as llama.cpp's quantize_row_q8_K_ref: float d, 256 int8, 16 int16 sums of 16.
    /// n must be a multiple of 256.
    /// </summary>
    public static void QuantizeQ8_K(float* x, byte* dst, int n)
    {
        if (Vector256.IsHardwareAccelerated) QuantizeQ8_KVector(x, dst, n);
        else QuantizeQ8_KScalar(x, dst, n);
    }

    /// <summary>Q8_K with 256-bit vectors, the same bits as <see cref="QuantizeQ8_KScalar"/>: the signed value of
    /// largest magnitude (the first of equals), the same scalar scale, round-half-even, min 127, exact block sums.</summary>
    internal static void QuantizeQ8_KVector(float* x, byte* dst, int n)
    {
        var absMask = Vector256.Create(0x7FFFFFFF).AsSingle();
        for (int b = 0; b < n / 256; b++, x += 256, dst += 292)
        {
            var m = Vector256<float>.Zero;
            for (int j = 0; j < 256; j += 8) m = Vector256.Max(m, Vector256.Load(x + j) & absMask);
            var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
            float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
            sbyte* q = (sbyte*)(dst + 4);
            short* bsums = (short*)(dst + 260);
            if (!(amax > 0))
            {
                // zero (or NaN: the scalar path decides)
                QuantizeQ8_KScalar(x, dst, 256);
                continue;
            }
            float max = 0;
            for (int j = 0; j < 256; j++)
                if (MathF.Abs(x[j]) == amax) { max = x[j]; break; }
            float iscale = -127f / max;
            var vs = Vector256.Create(iscale);
            var top = Vector256.Create(127);
            for (int g = 0; g < 16; g++)
            {
                var a = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + 16 * g) * vs)), top);
                var c = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + 16 * g + 8) * vs)), top);
                var s16 = Vector256.Narrow(a, c);
                Vector128.Narrow(s16.GetLower(), s16.GetUpper()).Store(q + 16 * g);
                bsums[g] = (short)Vector256.Sum(a + c);
            }
            *(float*)dst = 1 / iscale;
        }
    }

    /// <summary>The scalar twin (llama.cpp's quantize_row_q8_K_ref).</summary>
    internal static void QuantizeQ8_KScalar(float* x, byte* dst, int n)
    {
        for (int b = 0; b < n / 256; b++, x += 256, dst += 292)
        {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            sbyte* q = (sbyte*)(dst + 4);
            short* bsums = (short*)(dst + 260);
            if (amax == 0)
            {
                *(float*)dst = 0;
                new Span<byte>(dst + 4, 288).Clear();
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) q[j] = (sbyte)Math.Min(127, NearestInt(iscale * x[j]));
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 0; i < 16; i++) s += q[16 * g + i];
                bsums[g] = (short)s;
            }
            *(float*)dst = 1 / iscale;
        }
    }

    /// <summary>Round half to even, as ggml's nearest_int.</summary>
    internal static int NearestInt(float v) => (int)MathF.Round(v);

    /// <summary>Quantises n activations into <paramref name="type"/> (Q8_0 or Q8_K) blocks.</summary>
    public static void Quantize(DType type, float* x, byte* dst, int n)
    {
        if (type == DType.Q8_0) QuantizeQ8_0(x, dst, n);
        else if (type == DType.Q8_K) QuantizeQ8_K(x, dst, n);
        else throw new ArgumentException($"{type.Name()} is not an activation block type");
    }
}
