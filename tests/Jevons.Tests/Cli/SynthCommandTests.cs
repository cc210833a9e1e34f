using Jevons.Models;
using Jevons.Tests.Formats;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>`jevons synth` and `jevons demo` through the in-process CLI.</summary>
public sealed class SynthCommandTests
{
    [Fact]
    public void ListShowsEveryPresetWithItsSummary()
    {
        var r = CliHarness.Run("synth", "--list");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["tiny", "r1-distill-qwen-1.5b", "llama-3-8b", "deepseek-v2-lite", "deepseek-v3-mini"], lines.Select(l => l.Split(' ')[0]));
        Assert.Contains("15.7B parameters", r.Out);
        Assert.Contains("--preset NAME", CliHarness.Run("synth", "--help").Out);
    }

    [Fact]
    public void SynthTinyWritesAGgufThatLoads()
    {
        using var dir = new TempDir();
        var path = dir.File("out/tiny.gguf");
        var r = CliHarness.Run("synth", "--preset", "tiny", "--type", "q4_k", "-o", path, "--seed", "3", "--threads", "2");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Out);
        Assert.StartsWith("synth: tiny (qwen2, 4.07 M parameters) as GGUF Q4_K, seed 3 -> ", r.ErrorLines[0]);
        Assert.Contains(r.ErrorLines, l => l.StartsWith("synth: 100% ", StringComparison.Ordinal));
        Assert.StartsWith("synth: wrote ", r.ErrorLines[^1]);
        using var m = LoadedModel.Load(path, new ModelOptions { Threads = 1 });
        Assert.True(m.Model.Description.WeightBytesByType[Jevons.Numerics.DType.Q4_K] > 0);
        Assert.Equal(2048, m.RequireTokenizer().VocabSize);
    }

    [Fact]
    public void SynthHfFp8WritesASelfContainedDirectory()
    {
        using var dir = new TempDir();
        var r = CliHarness.Run("synth", "--preset", "deepseek-v3-mini", "--format", "hf", "--type", "fp8", "-o", dir.File("v3"));
        Assert.Equal(0, r.ExitCode);
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(dir.File("v3"), f)), f);
        Assert.Contains("\"quant_method\": \"fp8\"", File.ReadAllText(dir.File("v3/config.json")));
    }

    [Theory]
    [InlineData(new[] { "synth", "--preset", "gpt-5", "-o", "x.gguf" }, "error: unknown preset 'gpt-5' (presets: tiny, r1-distill-qwen-1.5b, llama-3-8b, deepseek-v2-lite, deepseek-v3-mini)")]
    [InlineData(new[] { "synth", "--preset", "tiny", "--type", "fp8", "-o", "x.gguf" }, "error: jevons synth: type F8_E4M3 cannot be written to GGUF (types: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)")]
    [InlineData(new[] { "synth", "--preset", "tiny", "--format", "hf", "--type", "q8_0", "-o", "x" }, "error: jevons synth: type Q8_0 cannot be written to the Hugging Face layout (types: F32, BF16, F8_E4M3)")]
    [InlineData(new[] { "synth", "--preset", "tiny", "--type", "q9", "-o", "x.gguf" }, "error: jevons synth: unknown --type 'q9' (for gguf: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)")]
    [InlineData(new[] { "synth", "--preset", "tiny", "--format", "hf", "--type", "fp8", "-o", "x" }, "error: jevons synth: the qwen2 architecture has no native FP8 layout (use BF16 or F32)")]
    public void BadRequestsAreOneLineErrors(string[] args, string expected)
    {
        var r = CliHarness.Run(args);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal([expected], r.ErrorLines);
    }

    [Fact]
    public void UnwritableOutputDirectoryIsAnErrorBeforeAnyWork()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("file"), "");
        var r = CliHarness.Run("synth", "--preset", "tiny", "-o", dir.File("file/sub/m.gguf"));
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains("output directory is not writable", line);
        Assert.Contains("file/sub", line);
    }

    [Fact]
    public void DemoSaysWhatItRunsSynthesizesOnceAndGenerates()
    {
        using var dir = new TempDir();
        var r = CliHarness.Run("demo", "--random", "--dir", dir.Path, "-n", "12", "--seed", "5", "--prompt", "hello world", "-t", "2");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("demo: running a tiny random-weight qwen2-architecture model synthesized by `jevons synth` - its text is meaningless; real checkpoints: jevons run --model PATH \"prompt\"", r.ErrorLines[0]);
        Assert.True(File.Exists(dir.File("tiny-q8_0.gguf")));
        Assert.StartsWith("hello world", r.Out);
        Assert.Matches(@"^demo: prompt \d+ tokens .*generated 12 tokens at \d+ tok/s on 2 thread\(s\)", r.ErrorLines[^1]);

        var again = CliHarness.Run("demo", "--random", "--dir", dir.Path, "-n", "12", "--seed", "5", "--prompt", "hello world", "-t", "2");
        Assert.Equal(0, again.ExitCode);
        Assert.Contains($"demo: reusing {dir.File("tiny-q8_0.gguf")}", again.ErrorLines);
        Assert.Equal(r.Out, again.Out); // same seed, same text
    }
}
