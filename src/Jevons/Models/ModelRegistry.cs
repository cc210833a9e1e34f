namespace Jevons.Models;

/// <summary>One supported architecture: the names files give it and the factory that builds it.</summary>
public sealed record ArchitectureEntry(string Family, string[] Names, Func<ModelSource, ModelOptions, Model> Create);

/// <summary>The architectures Jevons runs: one line each.</summary>
public static class ModelRegistry
{
    public static IReadOnlyList<ArchitectureEntry> Architectures { get; } =
    [
        new("Llama (R1-Distill-Llama)", ["llama", "LlamaForCausalLM"], Llama.Create),
        new("Qwen2 (R1-Distill-Qwen)", ["qwen2", "Qwen2ForCausalLM"], Llama.Create),
        new("DeepSeek-V2/V3/R1 (MLA + DeepSeekMoE)", ["deepseek2", "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"], DeepSeek.Create),
    ];

    public static ArchitectureEntry? Find(string architecture) =>
        Architectures.FirstOrDefault(a => a.Names.Contains(architecture, StringComparer.Ordinal));

    /// <summary>Builds the model for an opened source, or a one-line error naming the unknown architecture.</summary>
    public static Model Create(ModelSource source, ModelOptions options)
    {
        var entry = Find(source.Architecture)
            ?? JevonsException.Throw<ArchitectureEntry>(
                $"unknown architecture '{source.Architecture}' (supported: {string.Join(", ", Architectures.SelectMany(a => a.Names))})",
                source.Config.File);
        return entry.Create(source, options);
    }
}
