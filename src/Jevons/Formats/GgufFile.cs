using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>Where one tensor lies in a GGUF file.</summary>
/// <param name="Name">Tensor name ("blk.0.attn_q.weight").</param>
/// <param name="Type">Stored type (ggml type id).</param>
/// <param name="Shape">Outermost first, i.e. GGUF's ne reversed: [out, in] for a weight.</param>
/// <param name="Offset">Byte offset of the data, relative to the start of the data section.</param>
/// <param name="ByteLength">Bytes of data, as implied by shape and type.</param>
public sealed record GgufTensorInfo(string Name, DType Type, long[] Shape, long Offset, long ByteLength);

/// <summary>
/// A GGUF (v2 or v3) file, memory-mapped once: header, typed metadata, tensor infos and views of
/// the tensor data. Opening reads only the header; tensor bytes are touched when a kernel reads a
/// view. Every inconsistency (bad magic, unsupported version, truncation, unknown type, sizes that
/// disagree, duplicate names, absurd counts) is a one-line <see cref="JevonsException"/> that names
/// the file, the offset and the key or tensor. Dispose unmaps the file; views must not outlive it.
/// </summary>
public sealed unsafe class GgufFile : MappedTensorFile
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;
    public const uint DefaultAlignment = 32;
    /// <summary>GGML_MAX_DIMS: llama.cpp rejects tensors with more dimensions.</summary>
    public const int MaxDimensions = 4;
    const int MaxArrayNesting = 16;
    /// <summary>Sane absolute caps on header counts (DeepSeek-V3 has ~1,800 tensors and ~50 keys).</summary>
    public const int MaxTensors = 1 << 20, MaxMetadataEntries = 1 << 16;
    /// <summary>Most elements one metadata array may hold (vocabularies and merges are ~10^5).</summary>
    public const int MaxArrayElements = 1 << 24;
    /// <summary>Most arrays one array of arrays may hold (no model uses nested arrays at all).</summary>
    public const int MaxNestedArrays = 1 << 16;
    /// <summary>Capacity reserved up front for any count read from the file; lists grow past it as entries actually parse.</summary>
    const int InitialCapacity = 1024;

    readonly List<GgufTensorInfo> _infos;

    GgufFile(MappedFile file, uint version, uint alignment, long dataOffset, GgufMetadata metadata,
        List<GgufTensorInfo> infos, List<TensorView> views, Dictionary<string, TensorView> byName)
        : base(file, views, byName)
    {
        Version = version;
        Alignment = alignment;
        DataOffset = dataOffset;
        Metadata = metadata;
        _infos = infos;
    }

    /// <summary>GGUF format version: 2 or 3.</summary>
    public uint Version { get; }

    /// <summary>general.alignment, or 32 when absent.</summary>
    public uint Alignment { get; }

    /// <summary>Absolute byte offset of the data section.</summary>
    public long DataOffset { get; }

    /// <summary>All metadata in file order; also the model's <see cref="IConfigSource"/>.</summary>
    public GgufMetadata Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> TensorInfos => _infos;

    public override string ToString() => $"{Path} (GGUF v{Version}, {_infos.Count} tensors, {Metadata.Count} keys)";

    /// <summary>Maps and parses <paramref name="path"/>; reads the header only.</summary>
    public static GgufFile Open(string path) => Open(path, Parse);

    static GgufFile Parse(MappedFile file)
    {
        string path = file.Path;
        var cur = new HeaderCursor(file);

        if (file.Length < 4)
            JevonsException.Throw($"truncated file: {file.Length} bytes is too short for a GGUF header", path, offset: 0);
        uint magic = cur.Read<uint>("magic");
        if (magic != Magic)
            JevonsException.Throw($"not a GGUF file: bad magic 0x{magic:X8} (expected \"GGUF\")", path, offset: 0);

        uint version = cur.Read<uint>("version");
        if (version == 1)
            JevonsException.Throw("GGUF version 1 is not supported (it predates August 2023); re-convert the model with a current llama.cpp", path, offset: 4);
        if (version is not (2 or 3))
        {
            uint swapped = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(version);
            JevonsException.Throw(swapped is 2 or 3
                ? $"big-endian GGUF (version {swapped}) is not supported"
                : $"unsupported GGUF version {version} (supported: 2, 3)", path, offset: 4);
        }

        long tensorCountOffset = cur.Position;
        ulong tensorCount = cur.Read<ulong>("tensor count");
        long kvCountOffset = cur.Position;
        ulong kvCount = cur.Read<ulong>("metadata count");

        // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes; bound the count by the
        // file size before allocating anything for it.
        if (kvCount > (ulong)(cur.Remaining / 13))
            JevonsException.Throw($"truncated file: header declares {kvCount} metadata entries but only {cur.Remaining} bytes remain", path, offset: kvCountOffset);
        if (kvCount > MaxMetadataEntries)
            JevonsException.Throw($"header declares {kvCount} metadata entries, more than the {MaxMetadataEntries} this reader accepts", path, offset: kvCountOffset);

        var metadata = new GgufMetadata(path, (int)Math.Min(kvCount, InitialCapacity));
        for (ulong i = 0; i < kvCount; i++)
        {
            long keyOffset = cur.Position;
            string key = ReadString(ref cur, $"metadata key {i}", MaxNameBytes);
            long typeOffset = cur.Position;
            uint typeId = cur.Read<uint>($"type of metadata key '{key}'");
            if (typeId > (uint)GgufType.Float64)
                JevonsException.Throw($"metadata key '{key}' has unknown value type {typeId}", path, offset: typeOffset);
            var value = ReadValue(ref cur, (GgufType)typeId, key, path, 0);
            if (!metadata.TryAdd(key, value))
                JevonsException.Throw($"duplicate metadata key '{key}'", path, offset: keyOffset);
        }

        uint alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out var alignValue))
        {
            long a = 0;
            if (alignValue.IsArray || !alignValue.TryGetInt64(out a) || a <= 0 || a > 1 << 30 || (a & (a - 1)) != 0)
                JevonsException.Throw($"general.alignment must be a power of two, got {alignValue.TypeName} {alignValue}", path);
            alignment = (uint)a;
        }

        // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
        if (tensorCount > (ulong)(cur.Remaining / 24))
            JevonsException.Throw($"truncated file: header declares {tensorCount} tensors but only {cur.Remaining} bytes remain for their infos", path, offset: tensorCountOffset);
        if (tensorCount > MaxTensors)
            JevonsException.Throw($"header declares {tensorCount} tensors, more than the {MaxTensors} this reader accepts", path, offset: tensorCountOffset);

        int n = (int)tensorCount;
        int capacity = Math.Min(n, InitialCapacity);
        var infos = new List<GgufTensorInfo>(capacity);
        var names = new HashSet<string>(capacity, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            long infoOffset = cur.Position;
            var info = ReadTensorInfo(ref cur, i, path, alignment);
            if (!names.Add(info.Name))
                JevonsException.Throw("duplicate tensor name", path, info.Name, infoOffset);
            infos.Add(info);
        }

        long dataOffset = AlignUp(cur.Position, alignment);
        CheckDataRanges(infos, dataOffset, file.Length, path);

        // Every count is now backed by parsed entries.
        var views = new List<TensorView>(n);
        var byName = new Dictionary<string, TensorView>(n, StringComparer.Ordinal);
        foreach (var info in infos)
        {
            var view = new TensorView(info.Name, info.Type, info.Shape, file.Pointer + dataOffset + info.Offset, info.ByteLength, path);
            views.Add(view);
            byName.Add(info.Name, view);
        }
        return new GgufFile(file, version, alignment, dataOffset, metadata, infos, views, byName);
    }

    static GgufTensorInfo ReadTensorInfo(ref HeaderCursor cur, int index, string path, uint alignment)
    {
        string name = ReadString(ref cur, $"name of tensor {index}", MaxNameBytes);
        long dimsOffset = cur.Position;
        uint dims = cur.Read<uint>("dimension count");
        if (dims > MaxDimensions)
            JevonsException.Throw($"has {dims} dimensions; GGUF allows at most {MaxDimensions}", path, name, dimsOffset);

        var shape = new long[dims];
        long elements = 1;
        for (int d = 0; d < dims; d++)
        {
            long dimOffset = cur.Position;
            long ne = cur.Read<long>($"dimensions of tensor '{name}'");
            if (ne < 0)
                JevonsException.Throw($"dimension {d} is negative ({ne})", path, name, dimOffset);
            shape[dims - 1 - d] = ne; // ne0 (contiguous) is last in Shape
            if (ne != 0 && elements > long.MaxValue / ne)
                JevonsException.Throw("element count overflows 64 bits", path, name, dimOffset);
            elements *= ne;
        }

        long typeOffset = cur.Position;
        uint typeId = cur.Read<uint>($"type of tensor '{name}'");
        var type = GgmlType(typeId, path, name, typeOffset);
        long rowLength = dims == 0 ? 1 : shape[^1];
        if (rowLength % type.BlockSize() != 0)
            JevonsException.Throw($"row length {rowLength} is not a multiple of the {type.Name()} block size {type.BlockSize()}", path, name, typeOffset);
        long bytes = elements / type.BlockSize();
        if (bytes > long.MaxValue / type.BlockBytes())
            JevonsException.Throw("byte size overflows 64 bits", path, name, typeOffset);
        bytes *= type.BlockBytes();

        long offsetOffset = cur.Position;
        ulong offset = cur.Read<ulong>($"data offset of tensor '{name}'");
        if (offset > long.MaxValue / 2)
            JevonsException.Throw($"data offset {offset} is absurd", path, name, offsetOffset);
        if (offset % alignment != 0)
            JevonsException.Throw($"data offset {offset} is not a multiple of the alignment {alignment}", path, name, offsetOffset);
        return new GgufTensorInfo(name, type, shape, (long)offset, bytes);
    }

    /// <summary>Every tensor's bytes lie inside the file and no two tensors overlap.</summary>
    static void CheckDataRanges(List<GgufTensorInfo> infos, long dataOffset, long fileLength, string path)
    {
        int n = infos.Count;
        if (n == 0) return;
        var starts = new long[n];
        var order = new int[n];
        for (int i = 0; i < n; i++)
        {
            starts[i] = infos[i].Offset;
            order[i] = i;
        }
        Array.Sort(starts, order);

        // Offsets are below long.MaxValue / 2 and the data section starts inside the file, so only
        // the byte length can overflow a sum: compare against what remains instead of adding.
        long dataLength = fileLength - dataOffset;
        for (int k = 0; k < n; k++)
        {
            var t = infos[order[k]];
            if (dataLength < 0 || t.Offset > dataLength || t.ByteLength > dataLength - t.Offset)
                JevonsException.Throw($"truncated file: data of {t.ByteLength} bytes ({t.Type.Name()} {FormatShape(t.Shape)}) at offset {t.Offset} of the data section (which starts at byte {dataOffset}) extends past the end of the file ({fileLength} bytes)",
                    path, t.Name, dataOffset + t.Offset);
            if (k + 1 < n)
            {
                var next = infos[order[k + 1]];
                if (t.ByteLength > next.Offset - t.Offset)
                    JevonsException.Throw($"data of {t.ByteLength} bytes ({t.Type.Name()} {FormatShape(t.Shape)}) overlaps tensor '{next.Name}' at offset {dataOffset + next.Offset}: its size disagrees with its shape and type, or the offsets are corrupt",
                        path, t.Name, dataOffset + t.Offset);
            }
        }
    }

    static DType GgmlType(uint id, string path, string tensor, long offset)
    {
        if (id < 100 && DTypes.IsKnown((int)id)) return (DType)id;
        string? known = GgmlTypeName(id);
        return JevonsException.Throw<DType>(known is null
            ? $"unknown ggml type id {id}"
            : $"ggml type {known} (id {id}) is not supported", path, tensor, offset);
    }

    /// <summary>Names of ggml types this engine does not implement, for messages.</summary>
    static string? GgmlTypeName(uint id) => id switch
    {
        4 => "Q4_2 (removed)",
        5 => "Q4_3 (removed)",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        29 => "IQ1_M",
        31 => "Q4_0_4_4 (removed)",
        32 => "Q4_0_4_8 (removed)",
        33 => "Q4_0_8_8 (removed)",
        34 => "TQ1_0",
        35 => "TQ2_0",
        36 => "IQ4_NL_4_4 (removed)",
        37 => "IQ4_NL_4_8 (removed)",
        38 => "IQ4_NL_8_8 (removed)",
        39 => "MXFP4",
        _ => null,
    };

    internal static long AlignUp(long position, long alignment) => (position + alignment - 1) / alignment * alignment;

    /// <summary>Longest string value (chat templates are tens of KB) and longest key or tensor name.</summary>
    public const int MaxStringBytes = 16 << 20, MaxNameBytes = 1 << 16;

    static string ReadString(ref HeaderCursor cur, string what, int max = MaxStringBytes)
    {
        ulong length = cur.Read<ulong>($"length of {what}");
        if (length > (ulong)cur.Remaining)
            JevonsException.Throw($"truncated file: {what} declares {length} bytes but only {cur.Remaining} remain", cur.File, offset: cur.Position - 8);
        if (length > (ulong)max)
            JevonsException.Throw($"{what} declares {length} bytes, more than the {max} this reader accepts", cur.File, offset: cur.Position - 8);
        return cur.ReadUtf8((long)length, what);
    }

    static GgufValue ReadValue(ref HeaderCursor cur, GgufType type, string key, string path, int depth)
    {
        string what = $"value of metadata key '{key}'";
        switch (type)
        {
            case GgufType.UInt8: return GgufValue.UInt8(cur.Read<byte>(what));
            case GgufType.Int8: return GgufValue.Int8(cur.Read<sbyte>(what));
            case GgufType.UInt16: return GgufValue.UInt16(cur.Read<ushort>(what));
            case GgufType.Int16: return GgufValue.Int16(cur.Read<short>(what));
            case GgufType.UInt32: return GgufValue.UInt32(cur.Read<uint>(what));
            case GgufType.Int32: return GgufValue.Int32(cur.Read<int>(what));
            case GgufType.Float32: return GgufValue.Float32(cur.Read<float>(what));
            case GgufType.Bool: return GgufValue.Bool(cur.Read<byte>(what) != 0);
            case GgufType.String: return GgufValue.String(ReadString(ref cur, what));
            case GgufType.UInt64: return GgufValue.UInt64(cur.Read<ulong>(what));
            case GgufType.Int64: return GgufValue.Int64(cur.Read<long>(what));
            case GgufType.Float64: return GgufValue.Float64(cur.Read<double>(what));
            case GgufType.Array: return ReadArray(ref cur, key, path, depth);
            default: throw new InvalidOperationException("unreachable: type checked by caller");
        }
    }

    static GgufValue ReadArray(ref HeaderCursor cur, string key, string path, int depth)
    {
        if (depth >= MaxArrayNesting)
            JevonsException.Throw($"metadata key '{key}' nests arrays more than {MaxArrayNesting} deep", path, offset: cur.Position);
        long typeOffset = cur.Position;
        uint elementId = cur.Read<uint>($"array type of metadata key '{key}'");
        if (elementId > (uint)GgufType.Float64)
            JevonsException.Throw($"metadata key '{key}' is an array of unknown value type {elementId}", path, offset: typeOffset);
        var element = (GgufType)elementId;
        long countOffset = cur.Position;
        ulong count = cur.Read<ulong>($"array length of metadata key '{key}'");

        // Strings take at least 8 bytes (their length), nested arrays 12 (type + length).
        int minSize = element switch { GgufType.String => 8, GgufType.Array => 12, _ => GgufValue.FixedSize(element) };
        if (count > (ulong)(cur.Remaining / minSize))
            JevonsException.Throw($"truncated file: array of metadata key '{key}' declares {count} elements (at least {count * (ulong)minSize} bytes) but only {cur.Remaining} bytes remain",
                path, offset: countOffset);
        if (count > MaxArrayElements)
            JevonsException.Throw($"array of metadata key '{key}' declares {count} elements, more than the {MaxArrayElements} this reader accepts", path, offset: countOffset);

        if (element == GgufType.Array && count > MaxNestedArrays)
            JevonsException.Throw($"array of metadata key '{key}' declares {count} nested arrays, more than the {MaxNestedArrays} this reader accepts", path, offset: countOffset);

        long c = (long)count;
        string what = $"array of metadata key '{key}'";
        object values = element switch
        {
            GgufType.UInt8 => cur.ReadArray<byte>(c, what),
            GgufType.Int8 => cur.ReadArray<sbyte>(c, what),
            GgufType.UInt16 => cur.ReadArray<ushort>(c, what),
            GgufType.Int16 => cur.ReadArray<short>(c, what),
            GgufType.UInt32 => cur.ReadArray<uint>(c, what),
            GgufType.Int32 => cur.ReadArray<int>(c, what),
            GgufType.Float32 => cur.ReadArray<float>(c, what),
            GgufType.UInt64 => cur.ReadArray<ulong>(c, what),
            GgufType.Int64 => cur.ReadArray<long>(c, what),
            GgufType.Float64 => cur.ReadArray<double>(c, what),
            GgufType.Bool => ReadBools(ref cur, c, what),
            GgufType.String => ReadStrings(ref cur, c, key),
            _ => ReadNested(ref cur, c, key, path, depth),
        };
        return GgufValue.Create(GgufType.Array, element, values);
    }

    static bool[] ReadBools(ref HeaderCursor cur, long count, string what)
    {
        var bytes = cur.ReadArray<byte>(count, what);
        var result = new bool[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) result[i] = bytes[i] != 0;
        return result;
    }

    static string[] ReadStrings(ref HeaderCursor cur, long count, string key)
    {
        // Each element has passed the bound of 8 bytes per string, and the count is capped.
        var result = new string[count];
        for (long i = 0; i < count; i++)
        {
            // Vocabularies hold ~150k strings: build the message only when an element is bad.
            if (cur.Remaining < 8 || cur.Peek<ulong>() > (ulong)Math.Min(cur.Remaining - 8, MaxStringBytes))
                ReadString(ref cur, $"element {i} of metadata key '{key}'");
            ulong length = cur.Read<ulong>("string length");
            result[i] = cur.ReadUtf8((long)length, "string");
        }
        return result;
    }

    static GgufValue[] ReadNested(ref HeaderCursor cur, long count, string key, string path, int depth)
    {
        var result = new GgufValue[count];
        for (long i = 0; i < count; i++)
            result[i] = ReadArray(ref cur, key, path, depth + 1);
        return result;
    }
}
