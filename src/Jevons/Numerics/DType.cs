namespace Jevons.Numerics;

/// <summary>
/// Element and block types. Values below 100 are the ggml type ids used in GGUF files,
/// so a GGUF tensor type casts straight to this enum; the rest are safetensors-only types.
/// </summary>
public enum DType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,

    /// <summary>FP8 E4M3 ("float8_e4m3fn"): no infinities, 0x7F/0xFF are NaN, max 448.</summary>
    F8_E4M3 = 100,
    U8 = 101,
    Bool = 102,
}

/// <summary>The type-traits table: block size and bytes per block for every <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Elements per block (1 for plain element types).</summary>
    public static int BlockSize(this DType t) => t switch
    {
        DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1 or DType.Q8_0 or DType.Q8_1 => 32,
        DType.Q2_K or DType.Q3_K or DType.Q4_K or DType.Q5_K or DType.Q6_K or DType.Q8_K => 256,
        _ => 1,
    };

    /// <summary>Bytes per block (bytes per element for plain element types).</summary>
    public static int BlockBytes(this DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.I8 or DType.U8 or DType.Bool or DType.F8_E4M3 => 1,
        DType.Q4_0 => 18,
        DType.Q4_1 => 20,
        DType.Q5_0 => 22,
        DType.Q5_1 => 24,
        DType.Q8_0 => 34,
        DType.Q8_1 => 36,
        DType.Q2_K => 84,
        DType.Q3_K => 110,
        DType.Q4_K => 144,
        DType.Q5_K => 176,
        DType.Q6_K => 210,
        DType.Q8_K => 292,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>True for the types this engine knows the layout of.</summary>
    public static bool IsKnown(int ggmlOrOwnId) => Enum.IsDefined(typeof(DType), ggmlOrOwnId);

    /// <summary>Bytes for <paramref name="elements"/> values; elements must be a multiple of the block size.</summary>
    public static long ByteCount(this DType t, long elements)
    {
        int bs = t.BlockSize();
        if (elements % bs != 0)
            throw new ArgumentException($"{elements} elements is not a multiple of the {t} block size {bs}");
        return elements / bs * t.BlockBytes();
    }

    /// <summary>Bits per weight, for reports.</summary>
    public static double BitsPerWeight(this DType t) => 8.0 * t.BlockBytes() / t.BlockSize();

    /// <summary>True for floating or quantised types a weight matrix can be stored in.</summary>
    public static bool IsWeightType(this DType t) => t switch
    {
        DType.I8 or DType.I16 or DType.I32 or DType.I64 or DType.U8 or DType.Bool or DType.F64 or DType.Q8_1 or DType.Q8_K => false,
        _ => true,
    };

    /// <summary>The name as the file formats spell it.</summary>
    public static string Name(this DType t) => t switch
    {
        DType.F8_E4M3 => "F8_E4M3",
        DType.Bool => "BOOL",
        _ => t.ToString(),
    };
}
