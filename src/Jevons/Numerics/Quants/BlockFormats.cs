namespace Jevons.Numerics.Quants;

/// <summary>Something to run with the block type of a <see cref="DType"/> as a type argument.</summary>
internal interface IFormatAction
{
    void Run<T>() where T : struct, IBlockFormat;
}

/// <summary>The one place that maps a <see cref="DType"/> to its block type.</summary>
internal static class BlockFormats
{
    /// <summary>True for the weight types the matrix kernels read.</summary>
    public static bool IsSupported(DType t) => t is DType.F32 or DType.F16 or DType.BF16 or DType.F8_E4M3
        or DType.Q8_0 or DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1
        or DType.Q2_K or DType.Q3_K or DType.Q4_K or DType.Q5_K or DType.Q6_K;

    public static void Dispatch<TAction>(DType t, ref TAction action) where TAction : struct, IFormatAction
    {
        switch (t)
        {
            case DType.F32: action.Run<F32Format>(); break;
            case DType.F16: action.Run<F16Format>(); break;
            case DType.BF16: action.Run<BF16Format>(); break;
            case DType.F8_E4M3: action.Run<F8E4M3Format>(); break;
            case DType.Q8_0: action.Run<Q8_0Format>(); break;
            case DType.Q4_0: action.Run<Q4_0Format>(); break;
            case DType.Q4_1: action.Run<Q4_1Format>(); break;
            case DType.Q5_0: action.Run<Q5_0Format>(); break;
            case DType.Q5_1: action.Run<Q5_1Format>(); break;
            case DType.Q2_K: action.Run<Q2_KFormat>(); break;
            case DType.Q3_K: action.Run<Q3_KFormat>(); break;
            case DType.Q4_K: action.Run<Q4_KFormat>(); break;
            case DType.Q5_K: action.Run<Q5_KFormat>(); break;
            case DType.Q6_K: action.Run<Q6_KFormat>(); break;
            default: throw new NotSupportedException($"{t.Name()} is not a weight format the kernels read");
        }
    }
}
