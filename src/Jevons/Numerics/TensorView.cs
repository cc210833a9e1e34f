namespace Jevons.Numerics;

/// <summary>
/// A tensor as it lies in a memory-mapped file: name, dtype, shape and a pointer. Never a copy.
/// <see cref="Shape"/> is outermost first (row-major, as PyTorch and safetensors write it):
/// a weight matrix is [out, in]. GGUF's ne order is the reverse; the GGUF reader flips it.
/// </summary>
public sealed unsafe class TensorView
{
    public TensorView(string name, DType type, long[] shape, byte* data, long byteLength, string file)
    {
        Name = name;
        Type = type;
        Shape = shape;
        Data = data;
        ByteLength = byteLength;
        File = file;
    }

    public string Name { get; }
    public DType Type { get; }
    /// <summary>Outermost dimension first; the last is contiguous.</summary>
    public long[] Shape { get; }
    public byte* Data { get; }
    public long ByteLength { get; }
    /// <summary>The file the tensor lives in (for error messages).</summary>
    public string File { get; }

    public int Rank => Shape.Length;
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape) n *= d;
            return n;
        }
    }

    /// <summary>Size of the last (contiguous) dimension.</summary>
    public long Columns => Shape.Length == 0 ? 1 : Shape[^1];
    /// <summary>Product of all dimensions but the last.</summary>
    public long Rows => Shape.Length == 0 ? 1 : ElementCount / Shape[^1];

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>The raw bytes; only for tensors under 2 GiB (take row spans of bigger ones).</summary>
    public ReadOnlySpan<byte> Bytes => new(Data, checked((int)ByteLength));

    /// <summary>Reads a small F32/F16/BF16 tensor (norm weights, biases) into a new float array.</summary>
    public float[] ToFloatArray()
    {
        var n = checked((int)ElementCount);
        var result = new float[n];
        switch (Type)
        {
            case DType.F32:
                new ReadOnlySpan<float>(Data, n).CopyTo(result);
                break;
            case DType.F16:
                for (int i = 0; i < n; i++) result[i] = (float)((Half*)Data)[i];
                break;
            case DType.BF16:
                for (int i = 0; i < n; i++) result[i] = BitConverter.Int32BitsToSingle(((ushort*)Data)[i] << 16);
                break;
            default:
                // Quantised small tensors (rare): go through the row dequantiser.
                Quantization.Dequantize(Type, new ReadOnlySpan<byte>(Data, checked((int)ByteLength)), result);
                break;
        }
        return result;
    }

    public override string ToString() => $"{Name} {Type.Name()} {ShapeText}";
}
