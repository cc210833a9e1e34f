using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace Jevons.Formats;

/// <summary>
/// A JSON configuration file (config.json, generation_config.json, tokenizer_config.json) as an
/// <see cref="IConfigSource"/>. Dotted keys walk nested objects ("rope_scaling.factor"); a key
/// that literally contains dots is found too. JSON null reads as absent (q_lora_rank: null means
/// "no q_lora"). An integral float (4096.0) reads as an integer, and a single value reads as a
/// one-element array (eos_token_id may be 1 or [1, 107]). A value of the wrong kind is a
/// <see cref="JevonsException"/> naming the file and key, never a silent default.
/// </summary>
public sealed class JsonConfig : IConfigSource
{
    /// <summary>Config files are a few KB; refuse to read an absurd one into memory.</summary>
    public const long MaxFileBytes = 64L << 20;

    static readonly JsonDocumentOptions Options = new() { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip };

    JsonConfig(string file, JsonElement root)
    {
        File = file;
        Root = root;
    }

    public string File { get; }

    /// <summary>The whole document (an object).</summary>
    public JsonElement Root { get; }

    /// <summary>Reads and parses <paramref name="path"/>; a missing file or invalid JSON is a <see cref="JevonsException"/>.</summary>
    public static JsonConfig Load(string path)
    {
        if (!System.IO.File.Exists(path))
            JevonsException.Throw("file not found", path);
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxFileBytes)
                JevonsException.Throw($"is {length} bytes; a JSON config file is at most {MaxFileBytes}", path);
            bytes = System.IO.File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JevonsException("cannot read: " + e.Message, path, inner: e);
        }
        return Parse(bytes, path);
    }

    /// <summary>Like <see cref="Load"/>, but null when the file does not exist (generation_config.json is optional).</summary>
    public static JsonConfig? LoadIfExists(string path) => System.IO.File.Exists(path) ? Load(path) : null;

    /// <summary>Parses JSON text; <paramref name="file"/> names it in messages.</summary>
    public static JsonConfig Parse(ReadOnlyMemory<byte> utf8Json, string file)
    {
        try
        {
            using var doc = JsonDocument.Parse(utf8Json, Options);
            JsonText.CheckStrings(utf8Json.Span, file, new JsonReaderOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                JevonsException.Throw($"expected a JSON object, found {doc.RootElement.ValueKind}", file);
            return new JsonConfig(file, doc.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new JevonsException($"invalid JSON: {e.Message}", file, inner: e);
        }
    }

    /// <inheritdoc cref="Parse(ReadOnlyMemory{byte}, string)"/>
    public static JsonConfig Parse(string json, string file) => Parse(System.Text.Encoding.UTF8.GetBytes(json), file);

    /// <summary>The raw element at <paramref name="key"/>, or null when absent or JSON null.</summary>
    public JsonElement? GetRaw(string key) => TryResolve(Root, key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public bool Has(string key) => GetRaw(key) is not null;

    public long? GetInt(string key) => GetRaw(key) is { } v ? ToInt(v, key) : null;

    public double? GetFloat(string key) => GetRaw(key) is { } v ? ToFloat(v, key) : null;

    public string? GetString(string key) => GetRaw(key) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : WrongType<string>(key, v, "a string")
        : null;

    public bool? GetBool(string key) => GetRaw(key) is { } v
        ? v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => WrongType<bool?>(key, v, "true or false") }
        : null;

    public long[]? GetIntArray(string key)
    {
        if (GetRaw(key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) return [ToInt(v, key)];
        var result = new long[v.GetArrayLength()];
        int i = 0;
        foreach (var e in v.EnumerateArray()) result[i++] = ToInt(e, key);
        return result;
    }

    public double[]? GetFloatArray(string key)
    {
        if (GetRaw(key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) return [ToFloat(v, key)];
        var result = new double[v.GetArrayLength()];
        int i = 0;
        foreach (var e in v.EnumerateArray()) result[i++] = ToFloat(e, key);
        return result;
    }

    public string[]? GetStringArray(string key)
    {
        if (GetRaw(key) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array) return WrongType<string[]>(key, v, "an array of strings");
        var result = new string[v.GetArrayLength()];
        int i = 0;
        foreach (var e in v.EnumerateArray())
            result[i++] = e.ValueKind == JsonValueKind.String ? e.GetString()! : WrongType<string>(key, e, "an array of strings");
        return result;
    }

    long ToInt(JsonElement v, string key)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt64(out long l)) return l;
            double d = v.GetDouble();
            if (d == Math.Floor(d) && d >= long.MinValue && d < 9.2e18) return (long)d;
        }
        return WrongType<long>(key, v, "an integer");
    }

    double ToFloat(JsonElement v, string key) =>
        v.ValueKind == JsonValueKind.Number ? v.GetDouble() : WrongType<double>(key, v, "a number");

    [DoesNotReturn]
    T WrongType<T>(string key, JsonElement v, string expected)
    {
        var text = v.GetRawText();
        if (text.Length > 40) text = text[..40] + "...";
        return JevonsException.Throw<T>($"'{key}' is {text}, expected {expected}", File);
    }

    /// <summary>Finds <paramref name="key"/> as a property, or as a dotted path through nested objects.</summary>
    static bool TryResolve(JsonElement obj, string key, out JsonElement value)
    {
        value = default;
        if (obj.ValueKind != JsonValueKind.Object) return false;
        if (obj.TryGetProperty(key, out value)) return true;
        for (int dot = key.IndexOf('.'); dot >= 0; dot = key.IndexOf('.', dot + 1))
            if (obj.TryGetProperty(key.AsSpan(0, dot), out var child) && TryResolve(child, key[(dot + 1)..], out value))
                return true;
        return false;
    }
}
