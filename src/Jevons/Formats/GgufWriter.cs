using System.Text;
using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>
/// Writes GGUF v3 files that llama.cpp loads: metadata in insertion order, tensor infos with
/// offsets that are the running sum of alignment-padded sizes (llama.cpp checks exactly this),
/// a data section starting on the alignment, and every tensor (the last one too) zero-padded to the
/// alignment. Tensor data is streamed from callbacks at <see cref="Write"/> time, so multi-GB models
/// are written without being held in memory.
/// </summary>
/// <example>
/// <code>
/// var w = new GgufWriter();
/// w.Set("general.architecture", GgufValue.String("qwen2"));
/// w.AddTensor("output_norm.weight", DType.F32, [1536], s => s.Write(bytes));
/// w.Write("model.gguf");
/// </code>
/// </example>
public sealed unsafe class GgufWriter
{
    /// <summary>The version this writer produces.</summary>
    public const uint Version = 3;
    /// <summary>GGML_MAX_NAME is 64 including the terminating NUL.</summary>
    public const int MaxNameBytes = 63;

    readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    readonly Dictionary<string, int> _metadataIndex = new(StringComparer.Ordinal);
    readonly PendingTensors _tensors;

    /// <param name="alignment">Data alignment: a power of two; written as general.alignment when not 32.</param>
    public GgufWriter(uint alignment = GgufFile.DefaultAlignment)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two");
        Alignment = alignment;
        _tensors = new PendingTensors(Validate);
        if (alignment != GgufFile.DefaultAlignment)
            Set("general.alignment", GgufValue.UInt32(alignment));
    }

    public uint Alignment { get; }

    /// <summary>Metadata in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    public int TensorCount => _tensors.Count;

    /// <summary>Sets a metadata key; a key set twice keeps its first position and its last value.</summary>
    public void Set(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (key == "general.alignment" && !(value.Type == GgufType.UInt32 && (uint)value.Value == Alignment))
            throw new ArgumentException($"general.alignment must be the u32 {Alignment} given to the constructor", nameof(value));
        if (_metadataIndex.TryGetValue(key, out int i))
            _metadata[i] = new(key, value);
        else
        {
            _metadataIndex.Add(key, _metadata.Count);
            _metadata.Add(new(key, value));
        }
    }

    /// <summary>
    /// Adds a tensor whose data <paramref name="writeData"/> streams at <see cref="Write"/> time; it must
    /// write exactly the bytes that <paramref name="type"/> and <paramref name="shape"/> imply.
    /// </summary>
    /// <param name="shape">Outermost first, as <see cref="TensorView.Shape"/>: [out, in] for a weight. The writer stores GGUF's reversed ne.</param>
    public void AddTensor(string name, DType type, long[] shape, Action<Stream> writeData) => _tensors.Add(name, type, shape, writeData);

    /// <summary>Adds a tensor from bytes in memory (kept by reference until <see cref="Write"/>).</summary>
    public void AddTensor(string name, DType type, long[] shape, ReadOnlyMemory<byte> data) => _tensors.Add(name, type, shape, data);

    /// <summary>Adds a tensor copied from a view (e.g. another mapped file, which must stay open until <see cref="Write"/>).</summary>
    public void AddTensor(TensorView view, string? name = null) => _tensors.Add(view, name);

    long Validate(string name, DType type, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
            throw new ArgumentException($"tensor name '{name}' is longer than {MaxNameBytes} bytes (llama.cpp's limit)", nameof(name));
        if (_tensors.Contains(name))
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        if ((int)type >= 100 || !DTypes.IsKnown((int)type))
            throw new ArgumentException($"tensor '{name}': {type.Name()} has no ggml type id", nameof(type));
        if (shape.Length is 0 or > GgufFile.MaxDimensions)
            throw new ArgumentException($"tensor '{name}': GGUF tensors have 1 to {GgufFile.MaxDimensions} dimensions, got {shape.Length}", nameof(shape));
        long elements = PendingTensors.ElementCount(name, shape);
        if (shape[^1] % type.BlockSize() != 0)
            throw new ArgumentException($"tensor '{name}': row length {shape[^1]} is not a multiple of the {type.Name()} block size {type.BlockSize()}", nameof(shape));
        return type.ByteCount(elements);
    }

    /// <summary>Size in bytes of the header (everything before the data section, padding included).</summary>
    public long HeaderLength => BuildHeader().Length;

    /// <summary>Total size of the file <see cref="Write"/> will produce.</summary>
    public long FileLength
    {
        get
        {
            long total = HeaderLength;
            foreach (var t in _tensors.All) total += GgufFile.AlignUp(t.ByteLength, Alignment);
            return total;
        }
    }

    /// <summary>Writes the file (via a temporary name, renamed on success).</summary>
    public void Write(string path, IProgress<WriteProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var header = BuildHeader();
        long total = header.Length;
        foreach (var t in _tensors.All) total += GgufFile.AlignUp(t.ByteLength, Alignment);

        FileOutput.WriteAtomically(path, file =>
        {
            file.Write(header);
            var data = new TensorDataStream(file, total, progress);
            long offset = header.Length;
            foreach (var t in _tensors.All)
            {
                data.Begin(offset);
                t.WriteTo(data);
                long padded = GgufFile.AlignUp(t.ByteLength, Alignment);
                FileOutput.Pad(file, padded - t.ByteLength);
                offset += padded;
                data.Begin(offset);
                data.Report();
            }
            progress?.Report(new WriteProgress(total, total));
        });
    }

    byte[] BuildHeader()
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }

        long offset = 0;
        foreach (var t in _tensors.All)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Shape.Length);
            for (int d = t.Shape.Length - 1; d >= 0; d--) w.Write(t.Shape[d]); // ne0 first
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset += GgufFile.AlignUp(t.ByteLength, Alignment);
        }
        w.Flush();
        FileOutput.Pad(ms, GgufFile.AlignUp(ms.Length, Alignment) - ms.Length);
        return ms.ToArray();
    }

    static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    static void WriteValue(BinaryWriter w, GgufValue v)
    {
        switch (v.Value)
        {
            case byte x: w.Write(x); break;
            case sbyte x: w.Write(x); break;
            case ushort x: w.Write(x); break;
            case short x: w.Write(x); break;
            case uint x: w.Write(x); break;
            case int x: w.Write(x); break;
            case float x: w.Write(x); break;
            case bool x: w.Write((byte)(x ? 1 : 0)); break;
            case string x: WriteString(w, x); break;
            case ulong x: w.Write(x); break;
            case long x: w.Write(x); break;
            case double x: w.Write(x); break;
            default: WriteArray(w, v); break;
        }
    }

    static void WriteArray(BinaryWriter w, GgufValue v)
    {
        w.Write((uint)v.ElementType);
        w.Write((ulong)v.Length);
        switch (v.Value)
        {
            case string[] a:
                foreach (var s in a) WriteString(w, s);
                break;
            case bool[] a:
                foreach (var b in a) w.Write((byte)(b ? 1 : 0));
                break;
            case GgufValue[] a:
                foreach (var inner in a) WriteArray(w, inner);
                break;
            case byte[] a: w.Write(a); break;
            case sbyte[] a: w.Write(AsBytes(a)); break;
            case ushort[] a: w.Write(AsBytes(a)); break;
            case short[] a: w.Write(AsBytes(a)); break;
            case uint[] a: w.Write(AsBytes(a)); break;
            case int[] a: w.Write(AsBytes(a)); break;
            case float[] a: w.Write(AsBytes(a)); break;
            case ulong[] a: w.Write(AsBytes(a)); break;
            case long[] a: w.Write(AsBytes(a)); break;
            case double[] a: w.Write(AsBytes(a)); break;
            default: throw new InvalidOperationException($"unsupported GGUF value {v.TypeName}");
        }
    }

    static ReadOnlySpan<byte> AsBytes<T>(T[] a) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan());
}
