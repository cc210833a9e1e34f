using System.Text.Json;
using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>
/// One safetensors file, memory-mapped once: an 8-byte little-endian header length N, N bytes of
/// JSON (<c>{"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets": [begin, end]}}</c>,
/// offsets relative to the end of the header), then the raw little-endian data. Opening parses the
/// header only, straight from the mapping; tensors are views. Header problems (absurd or truncated
/// length, invalid JSON, unknown dtype, offsets out of range or disagreeing with shape × dtype,
/// overlapping tensors) are one-line <see cref="JevonsException"/>s naming the file and tensor.
/// </summary>
public sealed unsafe class SafetensorsFile : MappedTensorFile
{
    /// <summary>The reference implementation refuses headers above 100 MB; so do we.</summary>
    public const long MaxHeaderLength = 100_000_000;

    SafetensorsFile(MappedFile file, long headerLength, Dictionary<string, string> metadata, List<TensorView> views, Dictionary<string, TensorView> byName)
        : base(file, views, byName)
    {
        HeaderLength = headerLength;
        Metadata = metadata;
    }

    /// <summary>Bytes of JSON header (N); the data starts at 8 + N.</summary>
    public long HeaderLength { get; }

    /// <summary>Absolute offset of the data section.</summary>
    public long DataOffset => 8 + HeaderLength;

    /// <summary>The header's <c>__metadata__</c> (e.g. format = pt); empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public override string ToString() => $"{Path} (safetensors, {Tensors.Count} tensors)";

    /// <summary>Maps and parses <paramref name="path"/>; reads the header only.</summary>
    public static SafetensorsFile Open(string path) => Open(path, Parse);

    /// <summary>The <see cref="DType"/> for a safetensors dtype string, or null when unsupported.</summary>
    public static DType? ParseDType(string name) => name switch
    {
        "F64" => DType.F64,
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        "F8_E4M3" => DType.F8_E4M3,
        "I64" => DType.I64,
        "I32" => DType.I32,
        "I16" => DType.I16,
        "I8" => DType.I8,
        "U8" => DType.U8,
        "BOOL" => DType.Bool,
        _ => null,
    };

    /// <summary>The safetensors dtype string for <paramref name="type"/>, or null when safetensors has none (block-quantised types).</summary>
    public static string? DTypeName(DType type) => type switch
    {
        DType.F64 or DType.F32 or DType.F16 or DType.BF16 or DType.F8_E4M3 or DType.I64 or DType.I32 or DType.I16
            or DType.I8 or DType.U8 or DType.Bool => type.Name(),
        _ => null,
    };

    readonly record struct Entry(string Name, DType Type, long[] Shape, long Begin, long End, long HeaderPosition);

    static SafetensorsFile Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 8)
            JevonsException.Throw($"truncated file: {file.Length} bytes is too short for a safetensors header", path, offset: 0);
        var cur = new HeaderCursor(file);
        ulong n = cur.Read<ulong>("header length");
        if (n > MaxHeaderLength)
            JevonsException.Throw($"header length {n} is absurd (limit {MaxHeaderLength}); not a safetensors file, or a corrupt one", path, offset: 0);
        if ((long)n > cur.Remaining)
            JevonsException.Throw($"truncated file: header declares {n} bytes of JSON but only {cur.Remaining} follow", path, offset: 0);
        long headerLength = (long)n;
        long dataLength = file.Length - 8 - headerLength;

        var json = cur.Span(headerLength);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<Entry>();
        try
        {
            JsonText.CheckStrings(json, path, new JsonReaderOptions { MaxDepth = 8 }, baseOffset: 8);
            ReadHeader(json, path, metadata, entries);
        }
        catch (JsonException e)
        {
            throw new JevonsException($"invalid JSON header: {e.Message}", path, offset: 8 + (e.BytePositionInLine ?? 0), inner: e);
        }

        var views = new List<TensorView>(entries.Count);
        var byName = new Dictionary<string, TensorView>(entries.Count, StringComparer.Ordinal);
        foreach (var t in entries)
        {
            long elements = 1;
            foreach (var d in t.Shape)
            {
                if (d != 0 && elements > long.MaxValue / d / 8)
                    JevonsException.Throw("shape overflows 64 bits", path, t.Name, 8 + t.HeaderPosition);
                elements *= d;
            }
            long bytes = t.Type.ByteCount(elements);
            if (t.Begin > t.End)
                JevonsException.Throw($"data_offsets [{t.Begin}, {t.End}] are reversed", path, t.Name, 8 + t.HeaderPosition);
            if (t.End > dataLength)
                JevonsException.Throw($"truncated file: data_offsets [{t.Begin}, {t.End}] extend past the end of the data section ({dataLength} bytes)", path, t.Name, 8 + headerLength + t.Begin);
            if (t.End - t.Begin != bytes)
                JevonsException.Throw($"data_offsets [{t.Begin}, {t.End}] hold {t.End - t.Begin} bytes but {t.Type.Name()} {FormatShape(t.Shape)} needs {bytes}", path, t.Name, 8 + headerLength + t.Begin);
            var view = new TensorView(t.Name, t.Type, t.Shape, file.Pointer + 8 + headerLength + t.Begin, bytes, path);
            if (!byName.TryAdd(t.Name, view))
                JevonsException.Throw("duplicate tensor name in the header", path, t.Name, 8 + t.HeaderPosition);
            views.Add(view);
        }
        CheckOverlaps(entries, path, headerLength);
        return new SafetensorsFile(file, headerLength, metadata, views, byName);
    }

    static void CheckOverlaps(List<Entry> entries, string path, long headerLength)
    {
        int n = entries.Count;
        var begins = new long[n];
        var order = new int[n];
        for (int i = 0; i < n; i++)
        {
            begins[i] = entries[i].Begin;
            order[i] = i;
        }
        Array.Sort(begins, order);
        for (int k = 0; k + 1 < n; k++)
        {
            var a = entries[order[k]];
            var b = entries[order[k + 1]];
            if (a.End > b.Begin && a.End > a.Begin && b.End > b.Begin)
                JevonsException.Throw($"data_offsets [{a.Begin}, {a.End}] overlap tensor '{b.Name}' [{b.Begin}, {b.End}]", path, a.Name, 8 + headerLength + a.Begin);
        }
    }

    static void ReadHeader(ReadOnlySpan<byte> json, string path, Dictionary<string, string> metadata, List<Entry> entries)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            JevonsException.Throw("invalid JSON header: expected an object", path, offset: 8);

        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            long position = reader.TokenStartIndex;
            string name = reader.GetString()!;
            Next(ref reader);
            if (reader.TokenType != JsonTokenType.StartObject)
                JevonsException.Throw($"header entry '{name}' is not an object", path, offset: 8 + position);
            if (name == "__metadata__")
                ReadMetadata(ref reader, metadata);
            else
                entries.Add(ReadEntry(ref reader, name, path, position));
        }
        // Only padding (spaces) may follow the object.
        if (reader.Read())
            JevonsException.Throw("invalid JSON header: content after the top-level object", path, offset: 8 + reader.TokenStartIndex);
    }

    static void Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
            throw new JsonException("unexpected end of the header");
    }

    static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata)
    {
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject) return;
            string key = reader.GetString()!;
            Next(ref reader);
            // Values are strings per the spec; anything else is kept as its raw JSON text.
            metadata[key] = reader.TokenType == JsonTokenType.String
                ? reader.GetString()!
                : JsonElement.ParseValue(ref reader).GetRawText();
        }
    }

    static Entry ReadEntry(ref Utf8JsonReader reader, string name, string path, long position)
    {
        string? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            string property = reader.GetString()!;
            Next(ref reader);
            switch (property)
            {
                case "dtype":
                    if (reader.TokenType != JsonTokenType.String)
                        JevonsException.Throw("dtype is not a string", path, name, 8 + reader.TokenStartIndex);
                    dtype = reader.GetString();
                    break;
                case "shape":
                    shape = ReadInts(ref reader, "shape", name, path);
                    break;
                case "data_offsets":
                    offsets = ReadInts(ref reader, "data_offsets", name, path);
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }
        if (dtype is null || shape is null || offsets is null)
            JevonsException.Throw($"header entry lacks {(dtype is null ? "dtype" : shape is null ? "shape" : "data_offsets")}", path, name, 8 + position);
        if (offsets.Length != 2)
            JevonsException.Throw($"data_offsets has {offsets.Length} values, expected 2", path, name, 8 + position);
        var type = ParseDType(dtype) ?? JevonsException.Throw<DType>($"unsupported dtype '{dtype}'", path, name, 8 + position);
        return new Entry(name, type, shape, offsets[0], offsets[1], position);
    }

    static long[] ReadInts(ref Utf8JsonReader reader, string what, string tensor, string path)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            JevonsException.Throw($"{what} is not an array", path, tensor, 8 + reader.TokenStartIndex);
        var values = new List<long>(4);
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray) return values.ToArray();
            long v = -1;
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out v) || v < 0)
                JevonsException.Throw($"{what} holds something other than a non-negative integer", path, tensor, 8 + reader.TokenStartIndex);
            values.Add(v);
        }
    }
}
