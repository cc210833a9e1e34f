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
}
