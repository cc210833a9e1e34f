using Jevons.Formats;

namespace Jevons.Models;

public enum ModelFormat { Gguf, HuggingFace }

/// <summary>Options that travel from the CLI / server into a model: no globals.</summary>
public sealed record ModelOptions
{
    /// <summary>Worker threads for the kernels (default: all cores).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Most rows (tokens of all sequences) one forward pass over the weights takes; bigger steps run in chunks.</summary>
    public int MaxStepTokens { get; init; } = 256;
}

/// <summary>
/// An opened model: its weights, its config (config.json or GGUF metadata) and which format they
/// came in. An architecture reads every setting through <see cref="Int"/>/<see cref="Float"/>/...
/// with both spellings of a key side by side (the one table mapping HF and GGUF keys).
/// </summary>
public sealed class ModelSource : IDisposable
{
    public ModelSource(string path, ModelFormat format, string architecture, IWeightSource weights, IConfigSource config)
    {
        Path = path;
        Format = format;
        Architecture = architecture;
        Weights = weights;
        Config = config;
    }

    public string Path { get; }
    public ModelFormat Format { get; }
    /// <summary>GGUF general.architecture ("qwen2") or HF architectures[0] ("Qwen2ForCausalLM").</summary>
    public string Architecture { get; }
    public IWeightSource Weights { get; }
    public IConfigSource Config { get; }

    /// <summary>GGUF key prefix: the value of general.architecture.</summary>
    string GgufKey(string suffix) => suffix.StartsWith("general.", StringComparison.Ordinal) ? suffix : Architecture + "." + suffix;

    string Key(string hfKey, string? ggufKey) => Format == ModelFormat.Gguf ? (ggufKey is null ? "" : GgufKey(ggufKey)) : hfKey;

    public long? Int(string hfKey, string? ggufKey) { var k = Key(hfKey, ggufKey); return k.Length == 0 ? null : Config.GetInt(k); }
    public double? Float(string hfKey, string? ggufKey) { var k = Key(hfKey, ggufKey); return k.Length == 0 ? null : Config.GetFloat(k); }
    public bool? Bool(string hfKey, string? ggufKey) { var k = Key(hfKey, ggufKey); return k.Length == 0 ? null : Config.GetBool(k); }
    public string? String(string hfKey, string? ggufKey) { var k = Key(hfKey, ggufKey); return k.Length == 0 ? null : Config.GetString(k); }

    public long RequireInt(string hfKey, string? ggufKey) =>
        Int(hfKey, ggufKey) ?? JevonsException.Throw<long>($"required field '{Key(hfKey, ggufKey)}' is missing", Config.File);

    public double RequireFloat(string hfKey, string? ggufKey) =>
        Float(hfKey, ggufKey) ?? JevonsException.Throw<double>($"required field '{Key(hfKey, ggufKey)}' is missing", Config.File);

    public void Dispose() => Weights.Dispose();
}
