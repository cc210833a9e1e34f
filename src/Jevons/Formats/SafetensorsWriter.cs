using System.Text.Encodings.Web;
using System.Text.Json;
using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>
/// Writes safetensors files as the reference library does: compact JSON header with
/// <c>__metadata__</c> first (format = pt by default), tensors in name order with contiguous
/// data_offsets and no gaps, header padded with spaces to a multiple of 8. Tensor data is streamed
/// from callbacks at <see cref="Write"/> time. <see cref="WriteIndex"/> writes the
/// <c>model.safetensors.index.json</c> of a sharded checkpoint.
/// </summary>
public sealed unsafe class SafetensorsWriter
{
    readonly PendingTensors _tensors;

    public SafetensorsWriter() => _tensors = new PendingTensors(Validate);

    /// <summary>The header's <c>__metadata__</c> (string values); starts as {"format": "pt"}.</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };

    public int TensorCount => _tensors.Count;

    /// <summary>Total bytes of tensor data added so far.</summary>
    public long DataLength
    {
        get
        {
            long total = 0;
            foreach (var t in _tensors.All) total += t.ByteLength;
            return total;
        }
    }

    /// <summary>Adds a tensor whose data <paramref name="writeData"/> streams at <see cref="Write"/> time (exactly shape × dtype bytes).</summary>
    /// <param name="shape">Outermost first, as PyTorch and <see cref="TensorView.Shape"/> have it.</param>
    public void AddTensor(string name, DType type, long[] shape, Action<Stream> writeData) => _tensors.Add(name, type, shape, writeData);

    /// <summary>Adds a tensor from bytes in memory (kept by reference until <see cref="Write"/>).</summary>
    public void AddTensor(string name, DType type, long[] shape, ReadOnlyMemory<byte> data) => _tensors.Add(name, type, shape, data);

    /// <summary>Adds a tensor copied from a view, whose file must stay open until <see cref="Write"/>.</summary>
    public void AddTensor(TensorView view, string? name = null) => _tensors.Add(view, name);

    long Validate(string name, DType type, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name == "__metadata__" || _tensors.Contains(name))
            throw new ArgumentException($"tensor name '{name}' is reserved or already added", nameof(name));
        if (SafetensorsFile.DTypeName(type) is null)
            throw new ArgumentException($"tensor '{name}': safetensors cannot store {type.Name()}", nameof(type));
        return type.ByteCount(PendingTensors.ElementCount(name, shape));
    }

    /// <summary>Writes the file (via a temporary name, renamed on success).</summary>
    public void Write(string path, IProgress<WriteProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var ordered = _tensors.All.ToArray();
        Array.Sort(ordered, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        var header = BuildHeader(ordered);
        long total = 8 + header.Length + DataLength;

        FileOutput.WriteAtomically(path, file =>
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            file.Write(length);
            file.Write(header);
            var data = new TensorDataStream(file, total, progress);
            long offset = 8 + header.Length;
            foreach (var t in ordered)
            {
                data.Begin(offset);
                t.WriteTo(data);
                offset += t.ByteLength;
            }
            progress?.Report(new WriteProgress(total, total));
        });
    }

    static readonly JsonWriterOptions CompactJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    byte[] BuildHeader(PendingTensor[] ordered)
    {
        using var ms = new MemoryStream();
        using (var json = new Utf8JsonWriter(ms, CompactJson))
        {
            json.WriteStartObject();
            if (Metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in Metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in ordered)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", SafetensorsFile.DTypeName(t.Type));
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        while (ms.Length % 8 != 0) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    /// <summary>
    /// Writes a sharded checkpoint's index as transformers does:
    /// <c>{"metadata": {"total_size": N}, "weight_map": {tensor: shard file name}}</c>, tensors in name order.
    /// </summary>
    public static void WriteIndex(string path, IEnumerable<KeyValuePair<string, string>> weightMap, long totalSize)
    {
        ArgumentNullException.ThrowIfNull(weightMap);
        var entries = new List<KeyValuePair<string, string>>(weightMap);
        entries.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        FileOutput.WriteAtomically(path, stream =>
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (tensor, file) in entries) json.WriteString(tensor, file);
            json.WriteEndObject();
            json.WriteEndObject();
            json.Flush();
            stream.Write("\n"u8);
        });
    }
}
