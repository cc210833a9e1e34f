using System.Text;
using Jevons.Formats;

namespace Jevons.Tests.Tokenization;

/// <summary>An in-memory IConfigSource (GGUF-style full keys) for tokenizer tests.</summary>
internal sealed class MetadataSource(string file, Dictionary<string, object> values) : IConfigSource
{
    public string File { get; } = file;
    public Dictionary<string, object> Values { get; } = values;
    public bool Has(string key) => Values.ContainsKey(key);
    public long? GetInt(string key) => Values.TryGetValue(key, out var v) ? Convert.ToInt64(v) : null;
    public double? GetFloat(string key) => Values.TryGetValue(key, out var v) ? Convert.ToDouble(v) : null;
    public string? GetString(string key) => Values.TryGetValue(key, out var v) ? v as string : null;
    public bool? GetBool(string key) => Values.TryGetValue(key, out var v) ? v as bool? : null;
    public long[]? GetIntArray(string key) => Values.TryGetValue(key, out var v) && v is Array a ? a.Cast<object>().Select(Convert.ToInt64).ToArray() : null;
    public double[]? GetFloatArray(string key) => Values.TryGetValue(key, out var v) && v is Array a ? a.Cast<object>().Select(Convert.ToDouble).ToArray() : null;
    public string[]? GetStringArray(string key) => Values.TryGetValue(key, out var v) ? v as string[] : null;

    /// <summary>
    /// Reads only the metadata of a GGUF v2/v3 file (enough for the tokenizer tests, independent
    /// of the engine's own GGUF reader).
    /// </summary>
    public static MetadataSource ReadGguf(string path)
    {
        using var r = new BinaryReader(System.IO.File.OpenRead(path), Encoding.UTF8);
        if (r.ReadUInt32() != 0x46554747) throw new InvalidDataException("not GGUF");
        r.ReadUInt32();
        r.ReadUInt64();
        ulong kvs = r.ReadUInt64();
        var values = new Dictionary<string, object>();
        for (ulong i = 0; i < kvs; i++)
        {
            var key = Str(r);
            values[key] = Value(r, r.ReadUInt32());
        }
        return new MetadataSource(path, values);
    }

    static string Str(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes((int)r.ReadUInt64()));

    static object Value(BinaryReader r, uint type) => type switch
    {
        0 => r.ReadByte(), 1 => r.ReadSByte(), 2 => r.ReadUInt16(), 3 => r.ReadInt16(), 4 => r.ReadUInt32(), 5 => r.ReadInt32(),
        6 => r.ReadSingle(), 7 => r.ReadByte() != 0, 8 => Str(r), 10 => r.ReadUInt64(), 11 => r.ReadInt64(), 12 => r.ReadDouble(),
        9 => Array(r),
        _ => throw new InvalidDataException($"metadata type {type}"),
    };

    static object Array(BinaryReader r)
    {
        uint type = r.ReadUInt32();
        long n = (long)r.ReadUInt64();
        if (type == 8) { var s = new string[n]; for (long i = 0; i < n; i++) s[i] = Str(r); return s; }
        var a = new object[n];
        for (long i = 0; i < n; i++) a[i] = Value(r, type);
        return a;
    }
}
