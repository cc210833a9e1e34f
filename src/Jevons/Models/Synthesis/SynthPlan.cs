using System.Text.Json.Nodes;
using Jevons.Formats;

namespace Jevons.Models.Synthesis;

/// <summary>A named model shape `jevons synth` can write; each architecture file keeps one list of them.</summary>
public interface ISynthPreset
{
    string Name { get; }
    /// <summary>One line for `jevons synth --list`.</summary>
    string Summary { get; }
    /// <summary>The model's metadata, config and tensor lists (cheap: no weights).</summary>
    SynthPlan Plan();
}

/// <summary>
/// Everything but the weights of a random-weight model: GGUF metadata of the architecture (the writer adds
/// general.file_type and tokenizer.ggml.*), the HF config.json (the writer adds the token ids, torch_dtype and
/// quantization_config), both tensor lists, and the synthetic vocabulary's size and pre-tokenizer.
/// </summary>
public sealed class SynthPlan
{
    public required string Preset { get; init; }
    /// <summary>general.architecture.</summary>
    public required string Architecture { get; init; }
    public required int VocabSize { get; init; }
    /// <summary>tokenizer.ggml.pre of the synthetic vocabulary.</summary>
    public required string PreTokenizer { get; init; }
    public required IReadOnlyList<KeyValuePair<string, GgufValue>> GgufMetadata { get; init; }
    /// <summary>config.json of the HF layout; null when the architecture is synthesized as GGUF only.</summary>
    public JsonObject? HfConfig { get; init; }
    /// <summary>Whether the architecture reads the native FP8 layout (F8_E4M3 + weight_scale_inv).</summary>
    public bool HfFp8 { get; init; }
    /// <summary>GGUF tensors in llama.cpp names and order (experts stacked).</summary>
    public required IReadOnlyList<SynthTensor> GgufTensors { get; init; }
    /// <summary>HF tensors (one per expert); empty when <see cref="HfConfig"/> is null.</summary>
    public required IReadOnlyList<SynthTensor> HfTensors { get; init; }

    /// <summary>Parameter count (computed tensors such as rope factors excluded).</summary>
    public long Parameters => GgufTensors.Where(t => t.Kind != SynthKind.Fixed).Sum(t => t.ElementCount);
}

/// <summary>Every synth preset: one line per architecture.</summary>
public static class SynthPresets
{
    public static IReadOnlyList<ISynthPreset> All { get; } = [.. LlamaSynthPreset.All, .. DeepSeekSynthPreset.All];

    public static ISynthPreset? Find(string name) => All.FirstOrDefault(p => p.Name == name);

    /// <summary>The preset, or a one-line error listing them all.</summary>
    public static ISynthPreset Require(string name) => Find(name)
        ?? JevonsException.Throw<ISynthPreset>($"unknown preset '{name}' (presets: {string.Join(", ", All.Select(p => p.Name))})");
}
