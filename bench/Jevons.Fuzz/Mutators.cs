using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Jevons.Fuzz;

/// <summary>Values that break readers: zero, one, sign and width boundaries, sizes that look plausible but are huge.</summary>
static class Interesting
{
    public static readonly ulong[] U64 =
    [
        0, 1, 2, 3, 7, 8, 12, 13, 24, 31, 32, 33, 255, 256, 4096, 65535, 65536, 300_000_000, 2_000_000_000,
        int.MaxValue, (ulong)int.MaxValue + 1, uint.MaxValue, (ulong)uint.MaxValue + 1, 1UL << 40, 1UL << 53,
        long.MaxValue / 2, long.MaxValue / 2 + 1, long.MaxValue, (ulong)long.MaxValue + 1, ulong.MaxValue, ulong.MaxValue - 7,
    ];

    public static readonly uint[] U32 = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 16, 31, 32, 99, 100, 255, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFE];

    public static readonly float[] F32 = [0f, -0f, -1f, 1e-45f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, 3e38f, 1e-30f];

    public static ulong Near(Random r, ulong v) => r.Next(6) switch
    {
        0 => v + 1,
        1 => v - 1,
        2 => v * 2,
        3 => v * 1000 + 1,
        4 => v + (ulong)r.Next(1, 64),
        _ => v ^ (1UL << r.Next(64)),
    };
}

/// <summary>Byte-level mutations every format shares.</summary>
static class Bytes
{
    public static byte[] Mutate(byte[] data, Random r, int headerEnd)
    {
        int limit = Math.Max(1, Math.Min(data.Length, r.Next(4) == 0 ? data.Length : headerEnd));
        switch (r.Next(5))
        {
            case 0: // bit flips
            {
                var d = (byte[])data.Clone();
                for (int k = r.Next(1, 4); k > 0 && d.Length > 0; k--) d[r.Next(limit)] ^= (byte)(1 << r.Next(8));
                return d;
            }
            case 1: // truncation
                return data[..r.Next(Math.Min(data.Length, limit + 16))];
            case 2: // random bytes
            {
                var d = (byte[])data.Clone();
                int at = r.Next(limit);
                for (int k = r.Next(1, 9); k > 0 && at < d.Length; k--, at++) d[at] = (byte)r.Next(256);
                return d;
            }
            case 3: // insert
            {
                int at = r.Next(limit);
                var extra = new byte[r.Next(1, 9)];
                r.NextBytes(extra);
                return [.. data.AsSpan(0, at), .. extra, .. data.AsSpan(at)];
            }
            default: // delete
            {
                if (data.Length < 2) return data;
                int at = r.Next(limit), n = Math.Min(r.Next(1, 9), data.Length - at);
                return [.. data.AsSpan(0, at), .. data.AsSpan(at + n)];
            }
        }
    }
}

/// <summary>
/// Structure-aware GGUF mutations: the seed's header is walked once to find every field (counts,
/// string lengths, value and tensor types, dims, offsets, scalars, the data section); a case rewrites
/// one or a few of them with boundary values, or flips bits, truncates, inserts or deletes bytes,
/// or writes NaN / Inf into the weights.
/// </summary>
public sealed class GgufMutator
{
    public enum Field { Magic, Version, Count, Length, ValueType, ArrayType, Scalar32, Scalar64, Float32, NDims, Dim, TensorType, Offset, Text }

    public readonly record struct Site(int Offset, int Size, Field Kind);

    readonly byte[] _seed;
    readonly List<Site> _sites = new();
    readonly int _headerEnd;
    readonly int _dataStart;

    public GgufMutator(byte[] seed)
    {
        _seed = seed;
        int p = 0;
        try
        {
            Add(ref p, 4, Field.Magic);
            Add(ref p, 4, Field.Version);
            ulong tensors = U64(p); Add(ref p, 8, Field.Count);
            ulong kvs = U64(p); Add(ref p, 8, Field.Count);
            uint alignment = 32;
            for (ulong i = 0; i < kvs; i++)
            {
                string key = String(ref p);
                uint type = U32(p); Add(ref p, 4, Field.ValueType);
                if (key == "general.alignment" && type == 4) alignment = U32(p);
                Value(ref p, type, 0);
            }
            for (ulong i = 0; i < tensors; i++)
            {
                String(ref p);
                uint dims = U32(p); Add(ref p, 4, Field.NDims);
                for (uint d = 0; d < dims; d++) Add(ref p, 8, Field.Dim);
                Add(ref p, 4, Field.TensorType);
                Add(ref p, 8, Field.Offset);
            }
            _headerEnd = p;
            _dataStart = (int)((p + alignment - 1) / alignment * alignment);
        }
        catch (IndexOutOfRangeException)
        {
            _headerEnd = Math.Min(seed.Length, 4096);
            _dataStart = _headerEnd;
        }
        catch (ArgumentOutOfRangeException)
        {
            _headerEnd = Math.Min(seed.Length, 4096);
            _dataStart = _headerEnd;
        }
    }

    public IReadOnlyList<Site> Sites => _sites;

    ulong U64(int p) => BinaryPrimitives.ReadUInt64LittleEndian(_seed.AsSpan(p, 8));
    uint U32(int p) => BinaryPrimitives.ReadUInt32LittleEndian(_seed.AsSpan(p, 4));

    void Add(ref int p, int size, Field kind)
    {
        if (p + size > _seed.Length) throw new IndexOutOfRangeException();
        _sites.Add(new Site(p, size, kind));
        p += size;
    }

    string String(ref int p)
    {
        int len = checked((int)U64(p));
        Add(ref p, 8, Field.Length);
        var s = Encoding.UTF8.GetString(_seed, p, len);
        if (len > 0) _sites.Add(new Site(p, len, Field.Text));
        p += len;
        return s;
    }

    void Value(ref int p, uint type, int depth)
    {
        switch (type)
        {
            case 0 or 1 or 7: Add(ref p, 1, Field.Scalar32); break;
            case 2 or 3: Add(ref p, 2, Field.Scalar32); break;
            case 4 or 5: Add(ref p, 4, Field.Scalar32); break;
            case 6: Add(ref p, 4, Field.Float32); break;
            case 8: String(ref p); break;
            case 10 or 11: Add(ref p, 8, Field.Scalar64); break;
            case 12: Add(ref p, 8, Field.Scalar64); break;
            case 9:
            {
                uint element = U32(p); Add(ref p, 4, Field.ArrayType);
                ulong count = U64(p); Add(ref p, 8, Field.Count);
                // Long arrays (vocabularies): record only the first elements as sites, skip the rest quickly.
                for (ulong i = 0; i < count; i++)
                {
                    if (i < 8) { Value(ref p, element, depth + 1); continue; }
                    int fixedSize = element switch { 0 or 1 or 7 => 1, 2 or 3 => 2, 4 or 5 or 6 => 4, 10 or 11 or 12 => 8, _ => 0 };
                    if (fixedSize > 0) { p += checked((int)(count - i) * fixedSize); break; }
                    if (element == 8) { p += 8 + checked((int)U64(p)); continue; }
                    Value(ref p, element, depth + 1);
                }
                break;
            }
            default: throw new IndexOutOfRangeException();
        }
    }

    public byte[] Mutate(Random r)
    {
        var d = (byte[])_seed.Clone();
        int steps = r.Next(10) < 7 ? 1 : r.Next(2, 4);
        for (int s = 0; s < steps; s++)
        {
            int op = r.Next(100);
            if (op < 60 && _sites.Count > 0) MutateSite(d, _sites[r.Next(_sites.Count)], r);
            else if (op < 70 && _dataStart < d.Length - 4) // non-finite weights
            {
                int at = _dataStart + r.Next(d.Length - _dataStart - 4) / 4 * 4;
                BinaryPrimitives.WriteSingleLittleEndian(d.AsSpan(at), r.Next(2) == 0 ? float.NaN : float.PositiveInfinity);
            }
            else d = Bytes.Mutate(d, r, _headerEnd);
        }
        return d;
    }

    static void MutateSite(byte[] d, Site site, Random r)
    {
        if (site.Offset + site.Size > d.Length) return;
        var span = d.AsSpan(site.Offset, site.Size);
        switch (site.Kind)
        {
            case Field.Count or Field.Length or Field.Dim or Field.Offset or Field.Scalar64:
                if (site.Size != 8) goto default;
                ulong old = BinaryPrimitives.ReadUInt64LittleEndian(span);
                BinaryPrimitives.WriteUInt64LittleEndian(span, r.Next(3) == 0 ? Interesting.Near(r, old) : Interesting.U64[r.Next(Interesting.U64.Length)]);
                break;
            case Field.Float32:
                BinaryPrimitives.WriteSingleLittleEndian(span, Interesting.F32[r.Next(Interesting.F32.Length)]);
                break;
            case Field.Text:
                // Invalid UTF-8, control bytes, or a one-letter change of a key / tensor name.
                int at = r.Next(span.Length);
                span[at] = r.Next(3) switch { 0 => 0xFF, 1 => (byte)r.Next(32), _ => (byte)('a' + r.Next(26)) };
                break;
            default:
                if (site.Size == 4)
                {
                    uint v = BinaryPrimitives.ReadUInt32LittleEndian(span);
                    BinaryPrimitives.WriteUInt32LittleEndian(span, r.Next(3) == 0 ? (uint)Interesting.Near(r, v) : Interesting.U32[r.Next(Interesting.U32.Length)]);
                }
                else if (site.Size == 2) BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)Interesting.U32[r.Next(Interesting.U32.Length)]);
                else span[0] = (byte)Interesting.U32[r.Next(Interesting.U32.Length)];
                break;
        }
    }
}

/// <summary>
/// JSON mutations over the parsed tree: one node replaced by a boundary value or a value of the wrong
/// kind, deleted, wrapped, duplicated or tweaked; or byte-level damage to the text (invalid UTF-8 or a
/// lone surrogate escape inside a string, truncation, flips). Used for config.json, tokenizer.json,
/// tokenizer_config.json, generation_config.json, the index, and safetensors headers.
/// </summary>
public static class JsonMutator
{
    static readonly string[] Values =
    [
        "0", "-1", "1", "2", "2147483647", "2147483648", "-2147483648", "4294967296", "9007199254740993", "1e308", "-1e308",
        "1e-320", "0.5", "300000000", "2000000000", "\"5\"", "\"\"", "\"\\u0000\\u001b[31m\"", "\"\\ud800\"", "true", "false", "null",
        "[]", "{}", "[5]", "[[]]", "{\"a\":1}", "\"NaN\"", "[0,1,2]", "\"(a+)+$\"", "\"(\"", "-0", "1.5e3",
    ];

    /// <summary>How mutants (and the compact seeds) are written: non-ASCII text raw, as in real files.</summary>
    public static readonly JsonSerializerOptions WriteOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Mutate(byte[] json, Random r)
    {
        if (r.Next(5) == 0) return MutateText(json, r);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException)
        {
            return MutateText(json, r);
        }
        catch (InvalidOperationException)
        {
            return MutateText(json, r);
        }
        if (root is null) return MutateText(json, r);
        try
        {
            for (int k = r.Next(10) < 7 ? 1 : r.Next(2, 4); k > 0; k--) MutateTree(ref root, r);
            return root is null ? "null"u8.ToArray() : Encoding.UTF8.GetBytes(root.ToJsonString(JsonMutator.WriteOptions));
        }
        catch (Exception e) when (e is InvalidOperationException or JsonException or ArgumentException)
        {
            return MutateText(json, r); // the mutation produced a tree System.Text.Json will not write
        }
    }

    static void MutateTree(ref JsonNode? root, Random r)
    {
        // Reservoir-sample one node (with its parent) over the whole tree.
        JsonNode? picked = null;
        int seen = 0;
        var stack = new Stack<JsonNode>();
        if (root is not null) stack.Push(root);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (r.Next(++seen) == 0) picked = n;
            if (n is JsonObject o) foreach (var (_, v) in o) { if (v is not null) stack.Push(v); }
            else if (n is JsonArray a) foreach (var v in a) { if (v is not null) stack.Push(v); }
        }
        if (picked is null) return;
        var parent = picked.Parent;
        JsonNode? replacement = r.Next(8) switch
        {
            0 when picked is JsonValue v && v.TryGetValue(out double d) => JsonValue.Create(r.Next(4) switch { 0 => d + 1, 1 => -d, 2 => d * 1000, _ => Math.Floor(d / 2) }),
            1 => new JsonArray(picked.DeepClone()),
            2 when picked is JsonValue v2 && v2.TryGetValue(out string? s) => JsonValue.Create(r.Next(3) switch { 0 => "", 1 => s + s, _ => s.Length > 1 ? s[..(s.Length / 2)] : "x" }),
            3 => null, // delete
            _ => JsonNode.Parse(Values[r.Next(Values.Length)]),
        };
        bool delete = replacement is null && r.Next(2) == 0;
        switch (parent)
        {
            case null:
                root = replacement;
                break;
            case JsonObject o:
            {
                string name = picked.GetPropertyName();
                if (delete) o.Remove(name);
                else if (r.Next(10) == 0) { o.Remove(name); o[name + "_"] = replacement; }
                else o[name] = replacement;
                break;
            }
            case JsonArray a:
            {
                int i = picked.GetElementIndex();
                if (delete) a.RemoveAt(i);
                else if (r.Next(10) == 0) a.Insert(i, picked.DeepClone());
                else a[i] = replacement;
                break;
            }
        }
    }

    /// <summary>Damage to the text: invalid UTF-8 or a lone surrogate escape in a string, control bytes, or generic byte mutations.</summary>
    public static byte[] MutateText(byte[] json, Random r)
    {
        var quotes = new List<int>();
        for (int i = 0; i < json.Length; i++) if (json[i] == (byte)'"') quotes.Add(i);
        if (quotes.Count == 0 || r.Next(4) == 0) return Bytes.Mutate(json, r, json.Length);
        int at = quotes[r.Next(quotes.Count)] + 1;
        byte[] insert = r.Next(5) switch
        {
            0 => [0xFF],
            1 => [0xC3],
            2 => [0xED, 0xA0, 0x80], // UTF-8-encoded surrogate
            3 => "\\ud800"u8.ToArray(),
            _ => "\\udc00x"u8.ToArray(),
        };
        return [.. json.AsSpan(0, at), .. insert, .. json.AsSpan(at)];
    }
}

/// <summary>
/// Safetensors mutations: the 8-byte header length, the header JSON (offsets, dtypes, shapes, names,
/// __metadata__, bad UTF-8, huge numbers) through <see cref="JsonMutator"/> plus targeted entry edits,
/// and the payload (truncation, NaN / Inf values).
/// </summary>
public static class SafetensorsMutator
{
    static readonly string[] DTypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F4", "Q4_0", "", "f32"];

    public static byte[] Mutate(byte[] file, Random r)
    {
        if (file.Length < 8) return Bytes.Mutate(file, r, file.Length);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (n > (ulong)(file.Length - 8)) return Bytes.Mutate(file, r, file.Length);
        var header = file.AsSpan(8, (int)n).ToArray();
        var payload = file.AsSpan(8 + (int)n).ToArray();
        int op = r.Next(100);
        if (op < 10) // header length
        {
            var d = (byte[])file.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(d, r.Next(2) == 0 ? Interesting.Near(r, n) : Interesting.U64[r.Next(Interesting.U64.Length)]);
            return d;
        }
        if (op < 20) // payload: truncate, or non-finite values
        {
            if (r.Next(2) == 0) return file[..(8 + (int)n + r.Next(payload.Length + 1))];
            var d = (byte[])file.Clone();
            if (payload.Length >= 4)
            {
                int at = 8 + (int)n + r.Next(payload.Length - 3);
                d[at] = 0xFF; d[at + 1] = 0xFF; // NaN in F32 (bytes 2-3) and BF16
                if (at + 3 < d.Length) { d[at + 2] = 0xFF; d[at + 3] = 0x7F; }
            }
            return d;
        }
        if (op < 55) header = Entry(header, r);
        else header = JsonMutator.Mutate(header, r);
        var result = new byte[8 + header.Length + payload.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)header.Length);
        header.CopyTo(result, 8);
        payload.CopyTo(result, 8 + header.Length);
        return result;
    }

    /// <summary>One targeted edit of a tensor entry: data_offsets, dtype, shape, or its name.</summary>
    static byte[] Entry(byte[] header, Random r)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(header) as JsonObject ?? throw new JsonException();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return JsonMutator.Mutate(header, r);
        }
        var names = root.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        if (names.Count == 0) return JsonMutator.Mutate(header, r);
        string name = names[r.Next(names.Count)];
        if (root[name] is not JsonObject e) return JsonMutator.Mutate(header, r);
        long[] Longs(string k) => e[k] is JsonArray a ? a.Select(x => x is JsonValue v && v.TryGetValue(out long l) ? l : 0).ToArray() : [];
        JsonNode Big() => JsonNode.Parse(r.Next(4) switch { 0 => "9223372036854775807", 1 => "18446744073709551615", 2 => "1e30", _ => "-1" })!;
        switch (r.Next(5))
        {
            case 0:
            {
                var o = Longs("data_offsets");
                if (o.Length != 2) break;
                var a = new JsonArray();
                switch (r.Next(5))
                {
                    case 0: a.Add(o[1]); a.Add(o[0]); break;
                    case 1: a.Add(o[0]); a.Add(o[1] + r.Next(-8, 9)); break;
                    case 2: a.Add(o[0] + r.Next(-8, 9)); a.Add(o[1]); break;
                    case 3: a.Add(o[0]); a.Add(Big()); break;
                    default: a.Add(0); a.Add(o[1] - o[0]); break; // overlaps the first tensor
                }
                e["data_offsets"] = a;
                break;
            }
            case 1:
                e["dtype"] = DTypes[r.Next(DTypes.Length)];
                break;
            case 2:
            {
                var s = Longs("shape");
                var a = new JsonArray();
                foreach (var d in s) a.Add(d);
                switch (r.Next(5))
                {
                    case 0: a.Add(r.Next(2) == 0 ? 0 : 1); break;
                    case 1 when a.Count > 0: a.RemoveAt(a.Count - 1); break;
                    case 2 when a.Count > 0: a[r.Next(a.Count)] = Big(); break;
                    case 3 when a.Count > 0: a[r.Next(a.Count)] = 0; break;
                    default: a.Add(1L << 40); a.Add(1L << 40); break;
                }
                e["shape"] = a;
                break;
            }
            case 3:
            {
                root.Remove(name);
                string other = names[r.Next(names.Count)];
                root[r.Next(2) == 0 ? other + "x" : name.Replace('.', '\u001b')] = e;
                break;
            }
            default:
                e.Remove(r.Next(3) switch { 0 => "dtype", 1 => "shape", _ => "data_offsets" });
                break;
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString(JsonMutator.WriteOptions));
    }
}
