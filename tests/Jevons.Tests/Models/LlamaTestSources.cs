using System.Runtime.InteropServices;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;

namespace Jevons.Tests.Models;

/// <summary>
/// A weight + config source for dense-model tests: wraps another source, hiding or replacing tensors
/// and config keys, or holds in-memory tensors and a key/value config (the HF layout test).
/// </summary>
sealed unsafe class LlamaTestSource : IWeightSource, IConfigSource
{
    readonly IWeightSource? innerWeights;
    readonly IConfigSource? innerConfig;
    readonly Dictionary<string, TensorView?> tensors = new();
    readonly Dictionary<string, object?> config = new();
    readonly List<nint> buffers = [];

    public LlamaTestSource(string path, IWeightSource? weights = null, IConfigSource? cfg = null)
    {
        Path = path;
        innerWeights = weights;
        innerConfig = cfg;
    }

    /// <summary>A source that wraps <paramref name="src"/>'s weights and config (to hide or override entries).</summary>
    public static LlamaTestSource Wrap(ModelSource src) => new(src.Path, src.Weights, src.Config);

    public ModelSource ToModelSource(ModelFormat format, string architecture) => new(Path, format, architecture, this, this);

    public LlamaTestSource Hide(string tensor) { tensors[tensor] = null; return this; }

    public LlamaTestSource Set(string key, object? value) { config[key] = value; return this; }

    /// <summary>Adds a tensor whose data is a native copy of <paramref name="values"/> stored as F32.</summary>
    public LlamaTestSource Add(string name, long[] shape, ReadOnlySpan<float> values)
    {
        var p = (byte*)NativeMemory.AlignedAlloc((nuint)(values.Length * 4 + 64), 64);
        buffers.Add((nint)p);
        MemoryMarshal.AsBytes(values).CopyTo(new Span<byte>(p, values.Length * 4));
        tensors[name] = new TensorView(name, DType.F32, shape, p, values.Length * 4L, Path);
        return this;
    }

    /// <summary>Replaces a tensor by a view with a different shape over the same bytes.</summary>
    public LlamaTestSource Reshape(string name, long[] shape)
    {
        var t = innerWeights!.Get(name);
        tensors[name] = new TensorView(name, t.Type, shape, t.Data, t.ByteLength, t.File);
        return this;
    }

    /// <summary>Serves <paramref name="from"/>'s tensor under the name <paramref name="name"/>.</summary>
    public LlamaTestSource Alias(string name, string from)
    {
        var t = innerWeights!.Get(from);
        tensors[name] = new TensorView(name, t.Type, t.Shape, t.Data, t.ByteLength, t.File);
        return this;
    }

    public string Path { get; }
    public string File => Path;

    public IEnumerable<string> TensorNames =>
        (innerWeights?.TensorNames ?? []).Where(n => !tensors.ContainsKey(n)).Concat(tensors.Where(kv => kv.Value is not null).Select(kv => kv.Key));

    public bool Contains(string name) => TryGet(name) is not null;
    public TensorView Get(string name) => TryGet(name) ?? throw new JevonsException("tensor not found", Path, name);
    public TensorView? TryGet(string name) => tensors.TryGetValue(name, out var t) ? t : innerWeights?.TryGet(name);

    T? Value<T>(string key, Func<IConfigSource, string, T?> inner, Func<object, T?> convert)
    {
        if (config.TryGetValue(key, out var v)) return v is null ? default : convert(v);
        return innerConfig is null ? default : inner(innerConfig, key);
    }

    public bool Has(string key) => config.TryGetValue(key, out var v) ? v is not null : innerConfig?.Has(key) ?? false;
    public long? GetInt(string key) => Value(key, (c, k) => c.GetInt(k), v => v is string or double or float ? null : Convert.ToInt64(v));
    public double? GetFloat(string key) => Value(key, (c, k) => c.GetFloat(k), v => v is string ? null : Convert.ToDouble(v));
    public string? GetString(string key) => Value(key, (c, k) => c.GetString(k), v => v as string);
    public bool? GetBool(string key) => Value(key, (c, k) => c.GetBool(k), v => v is bool b ? b : null);
    public long[]? GetIntArray(string key) => Value(key, (c, k) => c.GetIntArray(k), v => v as long[]);
    public double[]? GetFloatArray(string key) => Value(key, (c, k) => c.GetFloatArray(k), v => v as double[]);
    public string[]? GetStringArray(string key) => Value(key, (c, k) => c.GetStringArray(k), v => v as string[]);

    public void Dispose()
    {
        innerWeights?.Dispose();
        foreach (var p in buffers) NativeMemory.AlignedFree((void*)p);
        buffers.Clear();
    }
}
