using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Models.Synthesis;
using Jevons.Numerics;

namespace Jevons.Fuzz;

public enum SeedKind { Gguf, HuggingFace }

/// <summary>A valid model as bytes: one .gguf file, or the files of a Hugging Face directory.</summary>
public sealed record Seed(string Name, SeedKind Kind, IReadOnlyDictionary<string, byte[]> Files)
{
    /// <summary>The file a GGUF case mutates; for HF seeds the safetensors / JSON files are picked per case.</summary>
    public const string GgufFileName = "model.gguf";
}

/// <summary>
/// Seed models for the mutators: tiny random-weight models synthesized in-process (a few tens of KB,
/// so a case loads, tokenizes and runs a forward step in milliseconds), plus, when a golden
/// directory is given, the small llama.cpp goldens.
/// </summary>
public static class Seeds
{
    static readonly LlamaSynthPreset TinyQwen2 = new("fuzz-qwen2", "fuzz seed", "qwen2", 32, 2, 2, 1, 32, 300, 256, 10000, 1e-6f,
        QkvBias: true, TiedEmbeddings: false, RopeScaling.None);
    static readonly LlamaSynthPreset TinyLlama = new("fuzz-llama", "fuzz seed", "llama", 32, 1, 2, 2, 32, 300, 256, 500000, 1e-5f,
        QkvBias: false, TiedEmbeddings: true, new RopeScaling(RopeScalingKind.Llama3, 8, 1, 4, 128));
    static readonly DeepSeekSynthPreset TinyV2 = new("fuzz-v2", "fuzz seed", V3: false, VocabSize: 300, HiddenSize: 32, Layers: 2, Heads: 2,
        QLoraRank: 0, KvLoraRank: 16, QkNopeHeadDim: 8, QkRopeHeadDim: 4, VHeadDim: 8, IntermediateSize: 32, MoeIntermediateSize: 8,
        RoutedExperts: 4, SharedExperts: 1, ExpertsPerToken: 2, FirstKDenseReplace: 1, Groups: 1, TopKGroups: 1, NormTopKProb: false,
        RoutedScalingFactor: 1f, RopeTheta: 10000, YarnFactor: 4, YarnOriginalContext: 64, YarnMScale: 0.707, ContextLength: 256);
    static readonly DeepSeekSynthPreset TinyV3 = TinyV2 with
    {
        Name = "fuzz-v3", V3 = true, QLoraRank = 16, RoutedExperts = 8, ExpertsPerToken = 2, Groups = 4, TopKGroups = 2,
        NormTopKProb = true, RoutedScalingFactor = 2.5f, YarnMScale = 1.0,
    };

    /// <summary>GGUF seeds (F32 and Q8_0) of the three architectures.</summary>
    public static IReadOnlyList<Seed> Gguf(string? goldenDir = null)
    {
        var seeds = new List<Seed>
        {
            Write("qwen2-f32", TinyQwen2, SeedKind.Gguf, DType.F32),
            Write("qwen2-q8_0", TinyQwen2, SeedKind.Gguf, DType.Q8_0),
            Write("llama-f32", TinyLlama, SeedKind.Gguf, DType.F32),
            Write("deepseek2-v2-f32", TinyV2, SeedKind.Gguf, DType.F32),
            Write("deepseek2-v3-f32", TinyV3, SeedKind.Gguf, DType.F32),
        };
        if (goldenDir is not null && Directory.Exists(Path.Combine(goldenDir, "llamacpp")))
            foreach (var f in Directory.GetFiles(Path.Combine(goldenDir, "llamacpp"), "*.gguf").Order(StringComparer.Ordinal))
                if (new FileInfo(f).Length <= 4 << 20)
                    seeds.Add(new Seed("golden-" + Path.GetFileNameWithoutExtension(f), SeedKind.Gguf,
                        new Dictionary<string, byte[]> { [Seed.GgufFileName] = File.ReadAllBytes(f) }));
        return seeds;
    }

    /// <summary>Hugging Face seeds: config.json, safetensors (one sharded through an index), tokenizer files.</summary>
    public static IReadOnlyList<Seed> HuggingFace(string? goldenDir = null)
    {
        var seeds = new List<Seed>
        {
            Write("hf-qwen2-f32", TinyQwen2, SeedKind.HuggingFace, DType.F32),
            Write("hf-llama-bf16-sharded", TinyLlama, SeedKind.HuggingFace, DType.BF16, maxShardBytes: 8 << 10),
            Write("hf-v3-bf16", TinyV3, SeedKind.HuggingFace, DType.BF16),
        };
        if (goldenDir is not null && Directory.Exists(Path.Combine(goldenDir, "hf")))
            foreach (var dir in Directory.GetDirectories(Path.Combine(goldenDir, "hf")).Order(StringComparer.Ordinal))
            {
                var files = Directory.GetFiles(dir);
                if (files.Sum(f => new FileInfo(f).Length) > 4 << 20) continue;
                seeds.Add(new Seed("golden-" + Path.GetFileName(dir), SeedKind.HuggingFace,
                    files.ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes)));
            }
        return seeds;
    }

    static Seed Write(string name, ISynthPreset preset, SeedKind kind, DType type, long maxShardBytes = 5_000_000_000)
    {
        var dir = Directory.CreateTempSubdirectory("jevons-fuzz-seed-").FullName;
        try
        {
            var synth = new Synthesis(preset.Plan(), seed: 7);
            var options = new SynthWriteOptions { Threads = 1, MaxShardBytes = maxShardBytes };
            if (kind == SeedKind.Gguf) synth.WriteGguf(Path.Combine(dir, Seed.GgufFileName), type, options);
            else synth.WriteHuggingFace(dir, type, options);
            if (kind == SeedKind.HuggingFace)
                File.WriteAllText(Path.Combine(dir, "generation_config.json"), "{\"bos_token_id\": 0, \"eos_token_id\": [1, 2], \"do_sample\": true}");
            // JSON compact, as the JSON mutator writes it: a mutant then differs from its seed only where it was mutated.
            var files = Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f),
                f => f.EndsWith(".json", StringComparison.Ordinal)
                    ? System.Text.Encoding.UTF8.GetBytes(System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllBytes(f))!.ToJsonString(JsonMutator.WriteOptions))
                    : File.ReadAllBytes(f));
            return new Seed(name, kind, files);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
