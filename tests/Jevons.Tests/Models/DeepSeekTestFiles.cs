using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;

namespace Jevons.Tests.Models;

/// <summary>
/// Minimal in-test readers (whole file in native memory) for the DeepSeek golden files, so the model can be
/// tested against the contracts independently of the formats code. Not a substitute for Jevons.Formats.
/// </summary>
static unsafe class DeepSeekTestFiles
{
    /// <summary>Tensors held in native memory, with an optional name → view map added by tests.</summary>
    public sealed class MemoryWeights : IWeightSource
    {
        readonly List<IntPtr> _blocks = [];
        public readonly Dictionary<string, TensorView> Tensors = new(StringComparer.Ordinal);
        public MemoryWeights(string path) => Path = path;
        public string Path { get; }
        public IEnumerable<string> TensorNames => Tensors.Keys;
        public bool Contains(string name) => Tensors.ContainsKey(name);
        public TensorView Get(string name) => TryGet(name) ?? throw new JevonsException("missing tensor", Path, name);
        public TensorView? TryGet(string name) => Tensors.GetValueOrDefault(name);

        public byte* Alloc(long bytes)
        {
            var p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
            _blocks.Add((IntPtr)p);
            return p;
        }

        /// <summary>Adds a float32 tensor copied from <paramref name="values"/>.</summary>
        public void AddF32(string name, long[] shape, ReadOnlySpan<float> values)
        {
            var p = Alloc(values.Length * 4L);
            values.CopyTo(new Span<float>(p, values.Length));
            Tensors[name] = new TensorView(name, DType.F32, shape, p, values.Length * 4L, Path);
        }

        public void Dispose()
        {
            foreach (var b in _blocks) NativeMemory.AlignedFree((void*)b);
            _blocks.Clear();
        }
    }

    sealed class JsonConfigSource(string file, JsonElement root) : IConfigSource
    {
        public string File { get; } = file;
        JsonElement? Find(string key)
        {
            var e = root;
            foreach (var part in key.Split('.'))
            {
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(part, out e)) return null;
            }
            return e.ValueKind == JsonValueKind.Null ? null : e;
        }
        public bool Has(string key) => Find(key) is not null;
        public long? GetInt(string key) => Find(key) is { ValueKind: JsonValueKind.Number } e ? (long)e.GetDouble() : null;
        public double? GetFloat(string key) => Find(key) is { ValueKind: JsonValueKind.Number } e ? e.GetDouble() : null;
        public string? GetString(string key) => Find(key) is { ValueKind: JsonValueKind.String } e ? e.GetString() : null;
        public bool? GetBool(string key) => Find(key) is { ValueKind: JsonValueKind.True or JsonValueKind.False } e ? e.GetBoolean() : null;
        public long[]? GetIntArray(string key) => Find(key) is { ValueKind: JsonValueKind.Array } e ? e.EnumerateArray().Select(x => (long)x.GetDouble()).ToArray() : null;
        public double[]? GetFloatArray(string key) => Find(key) is { ValueKind: JsonValueKind.Array } e ? e.EnumerateArray().Select(x => x.GetDouble()).ToArray() : null;
        public string[]? GetStringArray(string key) => Find(key) is { ValueKind: JsonValueKind.Array } e ? e.EnumerateArray().Select(x => x.GetString()!).ToArray() : null;
    }

    sealed class DictConfigSource(string file, Dictionary<string, object> values) : IConfigSource
    {
        public string File { get; } = file;
        public readonly Dictionary<string, object> Values = values;
        public bool Has(string key) => Values.ContainsKey(key);
        public long? GetInt(string key) => Values.TryGetValue(key, out var v) && v is IConvertible c && v is not string && v is not bool ? Convert.ToInt64(c) : null;
        public double? GetFloat(string key) => Values.TryGetValue(key, out var v) && v is IConvertible c && v is not string && v is not bool ? Convert.ToDouble(c) : null;
        public string? GetString(string key) => Values.TryGetValue(key, out var v) ? v as string : null;
        public bool? GetBool(string key) => Values.TryGetValue(key, out var v) && v is bool b ? b : null;
        public long[]? GetIntArray(string key) => null;
        public double[]? GetFloatArray(string key) => null;
        public string[]? GetStringArray(string key) => Values.TryGetValue(key, out var v) ? v as string[] : null;
    }

    /// <summary>config.json + model.safetensors from a golden folder.</summary>
    public static ModelSource OpenHf(string dir, Action<MemoryWeights>? edit = null, Func<string, string>? editConfig = null)
    {
        var configPath = Path.Combine(dir, "config.json");
        var json = File.ReadAllText(configPath);
        if (editConfig is not null) json = editConfig(json);
        var root = JsonDocument.Parse(json).RootElement.Clone();
        var weights = new MemoryWeights(dir);
        foreach (var file in Directory.GetFiles(dir, "*.safetensors").Order())
        {
            var bytes = File.ReadAllBytes(file);
            long headerLen = BitConverter.ToInt64(bytes, 0);
            var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLen)).RootElement;
            long dataStart = 8 + headerLen;
            var block = weights.Alloc(bytes.Length);
            bytes.CopyTo(new Span<byte>(block, bytes.Length));
            foreach (var p in header.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                var dtype = p.Value.GetProperty("dtype").GetString() switch
                {
                    "F32" => DType.F32, "BF16" => DType.BF16, "F16" => DType.F16, "F8_E4M3" => DType.F8_E4M3,
                    var other => throw new NotSupportedException(other),
                };
                var shape = p.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                weights.Tensors[p.Name] = new TensorView(p.Name, dtype, shape, block + dataStart + off[0], off[1] - off[0], file);
            }
        }
        edit?.Invoke(weights);
        var arch = root.GetProperty("architectures")[0].GetString()!;
        return new ModelSource(dir, ModelFormat.HuggingFace, arch, weights, new JsonConfigSource(configPath, root));
    }

    /// <summary>A GGUF v3 file (metadata scalars and string arrays; tensors reversed to [outer..inner]).</summary>
    public static ModelSource OpenGguf(string path, Action<MemoryWeights, Dictionary<string, object>>? edit = null)
    {
        var bytes = File.ReadAllBytes(path);
        var weights = new MemoryWeights(path);
        var block = weights.Alloc(bytes.Length);
        bytes.CopyTo(new Span<byte>(block, bytes.Length));
        using var r = new BinaryReader(new MemoryStream(bytes));
        if (r.ReadUInt32() != 0x46554747) throw new InvalidDataException("not GGUF");
        r.ReadUInt32();
        long nTensors = r.ReadInt64(), nKv = r.ReadInt64();
        string Str() => Encoding.UTF8.GetString(r.ReadBytes((int)r.ReadUInt64()));
        object Value(uint type) => type switch
        {
            0 => r.ReadByte(), 1 => r.ReadSByte(), 2 => r.ReadUInt16(), 3 => r.ReadInt16(), 4 => r.ReadUInt32(), 5 => r.ReadInt32(),
            6 => r.ReadSingle(), 7 => r.ReadByte() != 0, 8 => Str(), 10 => r.ReadUInt64(), 11 => r.ReadInt64(), 12 => r.ReadDouble(),
            9 => ReadArray(), _ => throw new InvalidDataException($"gguf type {type}"),
        };
        object ReadArray()
        {
            uint t = r.ReadUInt32();
            long n = r.ReadInt64();
            var items = new object[n];
            for (long i = 0; i < n; i++) items[i] = Value(t);
            return t == 8 ? items.Cast<string>().ToArray() : items;
        }
        var meta = new Dictionary<string, object>();
        for (long i = 0; i < nKv; i++)
        {
            var key = Str();
            meta[key] = Value(r.ReadUInt32());
        }
        var infos = new List<(string Name, long[] Shape, DType Type, long Offset)>();
        for (long i = 0; i < nTensors; i++)
        {
            var name = Str();
            int dims = (int)r.ReadUInt32();
            var ne = new long[dims];
            for (int d = 0; d < dims; d++) ne[d] = r.ReadInt64();
            Array.Reverse(ne);
            infos.Add((name, ne, (DType)r.ReadUInt32(), r.ReadInt64()));
        }
        long align = meta.TryGetValue("general.alignment", out var a) ? Convert.ToInt64(a) : 32;
        long dataStart = (r.BaseStream.Position + align - 1) / align * align;
        foreach (var (name, shape, type, offset) in infos)
        {
            long elements = shape.Aggregate(1L, (x, y) => x * y);
            weights.Tensors[name] = new TensorView(name, type, shape, block + dataStart + offset, type.ByteCount(elements), path);
        }
        edit?.Invoke(weights, meta);
        return new ModelSource(path, ModelFormat.Gguf, (string)meta["general.architecture"], weights, new DictConfigSource(path, meta));
    }
}
