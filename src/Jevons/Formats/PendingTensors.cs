using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>A tensor added to a writer: its data is streamed by <see cref="WriteData"/> when the file is written.</summary>
internal sealed record PendingTensor(string Name, DType Type, long[] Shape, long ByteLength, Action<Stream> WriteData)
{
    /// <summary>Runs the data callback into <paramref name="data"/> (counting from its last Begin) and checks it wrote exactly <see cref="ByteLength"/> bytes.</summary>
    public void WriteTo(TensorDataStream data)
    {
        WriteData(data);
        if (data.Written != ByteLength)
            throw new InvalidOperationException($"tensor '{Name}': the data callback wrote {data.Written} bytes, {Type.Name()} [{string.Join(", ", Shape)}] needs {ByteLength}");
    }
}

/// <summary>
/// The tensors added to a writer (<see cref="GgufWriter"/>, <see cref="SafetensorsWriter"/>) in the
/// order added, behind the writers' three AddTensor overloads (data callback, bytes in memory, a
/// view). <paramref name="validate"/> is the format's check of name, type and shape: it throws an
/// <see cref="ArgumentException"/> or returns the tensor's size in bytes.
/// </summary>
internal sealed unsafe class PendingTensors(Func<string, DType, long[], long> validate)
{
    readonly List<PendingTensor> _tensors = [];
    readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public int Count => _tensors.Count;

    /// <summary>In the order added.</summary>
    public IReadOnlyList<PendingTensor> All => _tensors;

    public bool Contains(string name) => _names.Contains(name);

    public void Add(string name, DType type, long[] shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long bytes = validate(name, type, shape);
        _names.Add(name);
        _tensors.Add(new PendingTensor(name, type, (long[])shape.Clone(), bytes, writeData));
    }

    /// <summary>Bytes in memory, kept by reference until the file is written.</summary>
    public void Add(string name, DType type, long[] shape, ReadOnlyMemory<byte> data)
    {
        long bytes = validate(name, type, shape);
        if (data.Length != bytes)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes given, {type.Name()} [{string.Join(", ", shape)}] needs {bytes}", nameof(data));
        Add(name, type, shape, s => s.Write(data.Span));
    }

    /// <summary>A copy of a view, whose file must stay open until the file is written.</summary>
    public void Add(TensorView view, string? name)
    {
        ArgumentNullException.ThrowIfNull(view);
        byte* data = view.Data;
        long length = view.ByteLength;
        Add(name ?? view.Name, view.Type, view.Shape, s => FileOutput.CopyFrom(s, data, length));
    }

    /// <summary>The element count of <paramref name="shape"/>; a negative dimension is an <see cref="ArgumentException"/>, overflow an <see cref="OverflowException"/>.</summary>
    public static long ElementCount(string name, long[] shape)
    {
        long elements = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': negative dimension {d}", nameof(shape));
            elements = checked(elements * d);
        }
        return elements;
    }
}
