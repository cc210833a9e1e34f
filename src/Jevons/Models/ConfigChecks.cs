namespace Jevons.Models;

/// <summary>
/// Range checks for config values, run by each architecture's config reader before anything is
/// allocated or looped over. Config values come from files: a corrupt num_hidden_layers of
/// 2^31−1 must be one message naming the key, not minutes of looping or a GiB array. Bounds are
/// sane absolute caps well above every real model (DeepSeek-V3: hidden 7168, 61 layers, 256
/// experts, 128 heads; Llama-3.1-405B: 126 layers, hidden 16384, FFN 53248).
/// </summary>
internal static class ConfigChecks
{
    public const int MaxLayers = 1024;
    /// <summary>Hidden size, FFN width, head counts and dims, LoRA ranks, and products such as heads × head_dim.</summary>
    public const int MaxDimension = 1 << 20;
    public const int MaxExperts = 1 << 16;
    public const int MaxContext = 1 << 24;
    /// <summary>The fewest tensors a decoder layer has (two norms, attention, FFN): bounds layers by the files.</summary>
    public const int MinTensorsPerLayer = 5;

    /// <summary>The key as the file spells it: config.json key, or "&lt;arch&gt;." + GGUF key.</summary>
    public static string KeyName(ModelSource src, string hfKey, string? ggufKey) =>
        src.Format == ModelFormat.Gguf
            ? ggufKey is null ? "" : ggufKey.StartsWith("general.", StringComparison.Ordinal) ? ggufKey : src.Architecture + "." + ggufKey
            : hfKey;

    /// <summary>An integer config value in [min, max], as an int (a checked cast: nothing truncates).</summary>
    public static int Int(ModelSource src, string key, long value, long min = 1, long max = MaxDimension)
    {
        if (value < min || value > max)
            JevonsException.Throw($"'{key}' = {value} is out of range: expected {(min == 1 && max == MaxDimension ? "a positive size" : "a value")} in [{min}, {max}]", src.Config.File);
        return (int)value;
    }

    /// <summary>A float config value that must be finite and strictly positive (rope_theta, rms_norm_eps, scaling factors).</summary>
    public static double Positive(ModelSource src, string key, double value, double max = double.MaxValue)
    {
        if (!double.IsFinite(value) || value <= 0 || value > max)
            JevonsException.Throw($"'{key}' = {Text(value)} is out of range: expected a finite number > 0{(max < double.MaxValue ? $" and <= {Text(max)}" : "")}", src.Config.File);
        return value;
    }

    /// <summary>A float config value that only has to be finite (yarn betas, log multipliers).</summary>
    public static double Finite(ModelSource src, string key, double value)
    {
        if (!double.IsFinite(value))
            JevonsException.Throw($"'{key}' = {Text(value)} is not a finite number", src.Config.File);
        return value;
    }

    /// <summary>
    /// The layer count: in range, and backed by the files (each layer has at least
    /// <see cref="MinTensorsPerLayer"/> tensors), checked before a layer array is allocated.
    /// A config-only source (no tensors at all: reading a config to size a KV cache) skips the second check.
    /// </summary>
    public static int Layers(ModelSource src, string key, long value)
    {
        int layers = Int(src, key, value, 1, MaxLayers);
        int tensors = src.Weights.TensorNames.Count();
        if (tensors > 0 && (long)layers * MinTensorsPerLayer > tensors)
            JevonsException.Throw($"'{key}' = {layers} layers, but the files hold only {tensors} tensors (a layer has at least {MinTensorsPerLayer})", src.Config.File);
        return layers;
    }

    /// <summary>a × b within <see cref="MaxDimension"/> (q rows = heads × head_dim, and the like).</summary>
    public static void Product(ModelSource src, string what, long a, long b)
    {
        if (a * b > MaxDimension)
            JevonsException.Throw($"{what} = {a} x {b} = {a * b} is larger than the {MaxDimension} this engine accepts", src.Config.File);
    }

    static string Text(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
