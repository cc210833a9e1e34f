using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Jevons.Formats;

/// <summary>
/// The key/value metadata of a GGUF file, in file order. As an <see cref="IConfigSource"/> it
/// answers typed questions with full keys ("qwen2.attention.head_count"): integers of any width
/// for <see cref="GetInt"/>, floats or integers for <see cref="GetFloat"/>, and a scalar where an
/// array is asked for reads as a one-element array (feed_forward_length may be either). A value of
/// the wrong type is a <see cref="JevonsException"/> naming the file and key, never a silent default.
/// </summary>
public sealed class GgufMetadata : IConfigSource, IReadOnlyDictionary<string, GgufValue>
{
    readonly Dictionary<string, GgufValue> _values;
    readonly List<string> _keys;

    internal GgufMetadata(string file, int capacity)
    {
        File = file;
        _values = new Dictionary<string, GgufValue>(capacity, StringComparer.Ordinal);
        _keys = new List<string>(capacity);
    }

    /// <summary>The GGUF file the metadata came from.</summary>
    public string File { get; }

    /// <summary>Keys in file order.</summary>
    public IReadOnlyList<string> Keys => _keys;

    public int Count => _keys.Count;

    public GgufValue this[string key] => _values.TryGetValue(key, out var v) ? v
        : JevonsException.Throw<GgufValue>($"metadata key '{key}' is missing", File);

    /// <summary>Adds a key; false when it is already present.</summary>
    internal bool TryAdd(string key, GgufValue value)
    {
        if (!_values.TryAdd(key, value)) return false;
        _keys.Add(key);
        return true;
    }

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out GgufValue value) => _values.TryGetValue(key, out value);

    public bool ContainsKey(string key) => _values.ContainsKey(key);

    public bool Has(string key) => _values.ContainsKey(key);

    public long? GetInt(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.IsArray || !GgufValue.IsIntegerType(v.Type)) WrongType(key, v, "an integer");
        if (!v.TryGetInt64(out long result))
            JevonsException.Throw($"metadata key '{key}' value {v} does not fit a signed 64-bit integer", File);
        return result;
    }

    public double? GetFloat(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.IsArray || !v.TryGetDouble(out double result)) return WrongType<double?>(key, v, "a number");
        return result;
    }

    public string? GetString(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        return v.Value as string ?? WrongType<string>(key, v, "a string");
    }

    public bool? GetBool(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        return v.Value is bool b ? b : WrongType<bool?>(key, v, "a bool");
    }

    public long[]? GetIntArray(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (!v.IsArray) return [GetInt(key)!.Value];
        if (!GgufValue.IsIntegerType(v.ElementType)) WrongType(key, v, "an integer array");
        var source = (Array)v.Value;
        var result = new long[source.Length];
        for (int i = 0; i < result.Length; i++)
            if (!GgufValue.TryInt(source.GetValue(i)!, out result[i]))
                JevonsException.Throw($"metadata key '{key}' element {i} does not fit a signed 64-bit integer", File);
        return result;
    }

    public double[]? GetFloatArray(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (!v.IsArray) return [GetFloat(key)!.Value];
        switch (v.Value)
        {
            case float[] f:
            {
                var result = new double[f.Length];
                for (int i = 0; i < f.Length; i++) result[i] = f[i];
                return result;
            }
            case double[] d:
                return (double[])d.Clone();
        }
        if (!GgufValue.IsIntegerType(v.ElementType)) WrongType(key, v, "a numeric array");
        var source = (Array)v.Value;
        var converted = new double[source.Length];
        for (int i = 0; i < converted.Length; i++)
            GgufValue.TryFloat(source.GetValue(i)!, out converted[i]);
        return converted;
    }

    public string[]? GetStringArray(string key)
    {
        if (!_values.TryGetValue(key, out var v)) return null;
        if (v.Value is string s) return [s];
        return v.Value is string[] a ? (string[])a.Clone() : WrongType<string[]>(key, v, "a string array");
    }

    [DoesNotReturn]
    void WrongType(string key, GgufValue v, string expected) => WrongType<object>(key, v, expected);

    [DoesNotReturn]
    T WrongType<T>(string key, GgufValue v, string expected) =>
        JevonsException.Throw<T>($"metadata key '{key}' is {v.TypeName}, expected {expected}", File);

    IEnumerable<string> IReadOnlyDictionary<string, GgufValue>.Keys => _keys;

    IEnumerable<GgufValue> IReadOnlyDictionary<string, GgufValue>.Values
    {
        get
        {
            foreach (var k in _keys) yield return _values[k];
        }
    }

    public IEnumerator<KeyValuePair<string, GgufValue>> GetEnumerator()
    {
        foreach (var k in _keys) yield return new(k, _values[k]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
