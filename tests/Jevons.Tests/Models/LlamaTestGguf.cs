using System.Runtime.InteropServices;
using System.Text;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;

namespace Jevons.Tests.Models;

/// <summary>
/// A minimal GGUF reader for the dense-model tests, used until the formats helper's GgufFile lands.
/// Copies the file to native memory (tiny golden files only).
/// </summary>
sealed unsafe class LlamaTestGguf : IWeightSource, IConfigSource
{
    readonly byte* data;
    readonly Dictionary<string, object> meta = new();
    readonly Dictionary<string, TensorView> tensors = new();

    public static ModelSource Open(string path)
    {
        var g = new LlamaTestGguf(path);
        return new ModelSource(path, ModelFormat.Gguf, (string)g.meta["general.architecture"], g, g);
    }

    LlamaTestGguf(string path)
    {
        Path = path;
        var bytes = System.IO.File.ReadAllBytes(path);
        data = (byte*)NativeMemory.AlignedAlloc((nuint)bytes.Length, 64);
        bytes.CopyTo(new Span<byte>(data, bytes.Length));
        var r = new BinaryReader(new MemoryStream(bytes));
        if (r.ReadUInt32() != 0x46554747) throw new InvalidDataException("not GGUF");
        r.ReadUInt32();
        long nt = r.ReadInt64(), nkv = r.ReadInt64();
        for (long i = 0; i < nkv; i++)
        {
            var key = Str(r);
            meta[key] = Value(r, r.ReadUInt32());
        }
        var infos = new List<(string, long[], DType, long)>();
        for (long i = 0; i < nt; i++)
        {
            var name = Str(r);
            int nd = r.ReadInt32();
            var ne = new long[nd];
            for (int d = 0; d < nd; d++) ne[d] = r.ReadInt64();
            var type = (DType)r.ReadInt32();
            long off = r.ReadInt64();
            infos.Add((name, ne.Reverse().ToArray(), type, off));
        }
        long align = meta.TryGetValue("general.alignment", out var a) ? Convert.ToInt64(a) : 32;
        long start = (r.BaseStream.Position + align - 1) / align * align;
        foreach (var (name, shape, type, off) in infos)
        {
            long n = shape.Aggregate(1L, (x, y) => x * y);
            tensors[name] = new TensorView(name, type, shape, data + start + off, type.ByteCount(n), path);
        }
    }

    static string Str(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes(checked((int)r.ReadInt64())));

    static object Value(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(),
        1 => r.ReadSByte(),
        2 => r.ReadUInt16(),
        3 => r.ReadInt16(),
        4 => r.ReadUInt32(),
        5 => r.ReadInt32(),
        6 => r.ReadSingle(),
        7 => r.ReadByte() != 0,
        8 => Str(r),
        9 => Array(r),
        10 => r.ReadUInt64(),
        11 => r.ReadInt64(),
        12 => r.ReadDouble(),
        _ => throw new InvalidDataException($"type {type}"),
    };

    static object[] Array(BinaryReader r)
    {
        uint t = r.ReadUInt32();
        long n = r.ReadInt64();
        var a = new object[n];
        for (long i = 0; i < n; i++) a[i] = Value(r, t);
        return a;
    }

    public string Path { get; }
    public string File => Path;
    public IEnumerable<string> TensorNames => tensors.Keys;
    public bool Contains(string name) => tensors.ContainsKey(name);
    public TensorView Get(string name) => TryGet(name) ?? throw new JevonsException("missing", Path, name);
    public TensorView? TryGet(string name) => tensors.GetValueOrDefault(name);

    public bool Has(string key) => meta.ContainsKey(key);
    public long? GetInt(string key) => meta.TryGetValue(key, out var v) && v is not (string or object[] or float or double) ? Convert.ToInt64(v) : null;
    public double? GetFloat(string key) => meta.TryGetValue(key, out var v) && v is not (string or object[]) ? Convert.ToDouble(v) : null;
    public string? GetString(string key) => meta.GetValueOrDefault(key) as string;
    public bool? GetBool(string key) => meta.TryGetValue(key, out var v) && v is bool b ? b : null;
    public long[]? GetIntArray(string key) => meta.GetValueOrDefault(key) is object[] a ? a.Select(Convert.ToInt64).ToArray() : null;
    public double[]? GetFloatArray(string key) => meta.GetValueOrDefault(key) is object[] a ? a.Select(Convert.ToDouble).ToArray() : null;
    public string[]? GetStringArray(string key) => meta.GetValueOrDefault(key) is object[] a ? a.Cast<string>().ToArray() : null;

    public void Dispose() { }
    // The native copy is kept for the process lifetime: views handed out must stay valid.
}
