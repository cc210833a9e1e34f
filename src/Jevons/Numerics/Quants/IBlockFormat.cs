using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Quants;

/// <summary>
/// A stored weight format as a block type: how many elements a block holds, how many bytes it takes,
/// how it decodes, and how it dots with activations. One generic driver (Numerics/Kernels' MatMul) serves
/// every format through this interface. Plain float types (F32, F16, BF16, F8) are blocks of one.
/// </summary>
public unsafe interface IBlockFormat
{
    static abstract DType Type { get; }

    /// <summary>Elements per block.</summary>
    static abstract int BlockSize { get; }

    /// <summary>Bytes per block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>Decodes <paramref name="blocks"/> whole blocks into float32 (the GGUF formula, bit-exact).</summary>
    static abstract void Dequantize(byte* src, float* dst, int blocks, KernelPath path);

    /// <summary>
    /// True for plain float types whose <see cref="Dot"/> reads the weights directly. For the others the
    /// driver decodes a row once into scratch and dots the float32 copy.
    /// </summary>
    static abstract bool IsFloat { get; }

    /// <summary>Σ w·x over n elements (plain float types only).</summary>
    static abstract float Dot(byte* w, float* x, int n, KernelPath path);

    /// <summary>The block type this format's integer dot takes its activations in (Q8_0 or Q8_K), or F32 for none.</summary>
    static abstract DType ActivationType { get; }

    /// <summary>Σ w·x over <paramref name="blocks"/> blocks with x quantised to <see cref="ActivationType"/> blocks.</summary>
    static abstract float DotInt8(byte* w, byte* xq, int blocks, KernelPath path);
}
