using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>
/// Named tensors from one or more memory-mapped files (a GGUF file, a safetensors file or a
/// sharded safetensors checkpoint). Tensors are views over the mappings; disposing the source
/// unmaps them, so views must not outlive it.
/// </summary>
public interface IWeightSource : IDisposable
{
    /// <summary>The path the source was opened from (file or directory), for messages.</summary>
    string Path { get; }

    IEnumerable<string> TensorNames { get; }

    bool Contains(string name);

    /// <summary>The tensor, or a <see cref="JevonsException"/> naming the file and tensor when missing.</summary>
    TensorView Get(string name);

    TensorView? TryGet(string name);
}

/// <summary>
/// Model hyper-parameters from config.json (keys with dots address nested objects:
/// "rope_scaling.factor") or GGUF metadata (full keys: "deepseek2.attention.kv_lora_rank").
/// </summary>
public interface IConfigSource
{
    /// <summary>The file the values come from, for messages.</summary>
    string File { get; }

    bool Has(string key);
    long? GetInt(string key);
    double? GetFloat(string key);
    string? GetString(string key);
    bool? GetBool(string key);
    long[]? GetIntArray(string key);
    double[]? GetFloatArray(string key);
    string[]? GetStringArray(string key);
}
