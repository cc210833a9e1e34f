using Jevons.Formats;
using Jevons.Models;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Tests.Formats;
using Jevons.Training;
using Xunit;

namespace Jevons.Tests.Models;

/// <summary>DeepSeekConfigWriter is the inverse of DeepSeekConfig.Read, for the synth presets and the trainer's presets alike.</summary>
public sealed class DeepSeekConfigWriterTests
{
    public static TheoryData<string> Configs => ["deepseek-v2-lite", "deepseek-v3-mini", "tiny-r1", "micro"];

    static (DeepSeekConfig Config, bool V3) ConfigOf(string name) => name is "tiny-r1" or "micro"
        ? (TinyDeepSeekConfig.Preset(name, 298).ToDeepSeekConfig(), true)
        : (((DeepSeekSynthPreset)SynthPresets.Require(name)).Config(), ((DeepSeekSynthPreset)SynthPresets.Require(name)).V3);

    /// <summary>The reader's sanity check wants at least 5 tensors a layer; the configs alone are under test.</summary>
    static int Placeholders(DeepSeekConfig c) => 5 * (c.Layers + c.MtpLayers);

    [Theory]
    [MemberData(nameof(Configs))]
    public void GgufMetadataReadsBackAsTheSameConfig(string name)
    {
        var (c, _) = ConfigOf(name);
        using var dir = new TempDir();
        var w = new GgufWriter();
        foreach (var (k, v) in DeepSeekConfigWriter.GgufMetadata(c, name)) w.Set(k, v);
        // The reader takes the router bias from its tensor, as in real files.
        if (c.HasRouterBias) w.AddTensor($"blk.{c.FirstKDenseReplace}.exp_probs_b.bias", DType.F32, [c.RoutedExperts], new byte[4 * c.RoutedExperts]);
        for (int i = 0; i < Placeholders(c); i++) w.AddTensor($"placeholder.{i}", DType.F32, [1], new byte[4]);
        w.Write(dir.File("meta.gguf"));
        using var source = ModelLoader.Open(dir.File("meta.gguf"));
        var read = DeepSeekConfig.Read(source);
        // GGUF stores floats as float32: YaRN's multiplier comes back rounded.
        Assert.Equal(c.Yarn is null, read.Yarn is null);
        if (c.Yarn is { } y)
        {
            Assert.Equal((y.Factor, y.OriginalContext, y.BetaFast, y.BetaSlow), (read.Yarn!.Factor, read.Yarn.OriginalContext, read.Yarn.BetaFast, read.Yarn.BetaSlow));
            Assert.Equal(y.AttentionLogMultiplier, read.Yarn.AttentionLogMultiplier, 1e-7);
        }
        Assert.Equal(c, read with { VocabSize = c.VocabSize, Yarn = c.Yarn }); // the reader takes the vocabulary from the embedding
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void HfConfigReadsBackAsTheSameConfig(string name)
    {
        var (c, v3) = ConfigOf(name);
        using var dir = new TempDir();
        var json = DeepSeekConfigWriter.HfConfig(c, v3, name);
        Assert.Equal(name, json["_name_or_path"]!.GetValue<string>());
        Assert.Equal(v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM", json["architectures"]![0]!.GetValue<string>());
        File.WriteAllText(dir.File("config.json"), json.ToJsonString());
        using var source = DeepSeekTestFiles.OpenHf(dir.Path, weights =>
        {
            if (c.HasRouterBias)
                weights.AddF32($"model.layers.{c.FirstKDenseReplace}.mlp.gate.e_score_correction_bias", [c.RoutedExperts], new float[c.RoutedExperts]);
            for (int i = 0; i < Placeholders(c); i++) weights.AddF32($"placeholder.{i}", [1], [0f]);
        });
        Assert.Equal(c, DeepSeekConfig.Read(source) with { VocabSize = c.VocabSize });
    }
}
