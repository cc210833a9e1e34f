using Jevons.Models;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Cli;

public sealed class TrainCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-train-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(new[] { "train" }, "'sft', 'grpo', 'distill' or 'bench'")]
    [InlineData(new[] { "train", "sft", "--preset", "huge", "-o", "x" }, "unknown --preset 'huge'")]
    [InlineData(new[] { "train", "sft", "--steps", "zero" }, "'--steps' must be an integer")]
    [InlineData(new[] { "train", "sft", "--lr", "-1", "-o", "x" }, "'--lr' must be positive")]
    [InlineData(new[] { "train", "sft", "--bogus" }, "unknown option '--bogus'")]
    [InlineData(new[] { "train", "sft", "--layers", "0", "-o", "x" }, "'--layers' must be an integer")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--layers", "3" }, "option '--layers' is for sft")]
    [InlineData(new[] { "train", "sft", "--hard-weight", "-0.5", "-o", "x" }, "'--hard-weight' must be 0 or more")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--hard-weight", "1" }, "option '--hard-weight' is for sft")]
    [InlineData(new[] { "train", "sft", "-o", "x", "--data", "missing.jsonl" }, "option '--tokenizer' is required")]
    [InlineData(new[] { "train", "sft", "-o", "x", "--difficulty", "easy" }, "--difficulty is for grpo")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--difficulty", "extreme" }, "--difficulty 'extreme': expected easy, medium or hard")]
    public void BadFlagsGiveOneErrorLine(string[] args, string message)
    {
        var r = CliHarness.Run(args);
        Assert.NotEqual(0, r.ExitCode);
        var error = Assert.Single(r.ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains(message, error);
        Assert.DoesNotContain("   at ", r.Error);
    }

    [Fact]
    public void SftOnJsonLinesWritesAModelTheEngineLoads()
    {
        var tokDir = Path.Combine(_dir, "tok");
        SyntheticVocabulary.Create(300).WriteHuggingFace(tokDir);
        var data = Path.Combine(_dir, "data.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 20).Select(i => $"{{\"prompt\": \"{i} plus one is\", \"completion\": \" {i + 1}\"}}"));
        var output = Path.Combine(_dir, "out");
        var r = CliHarness.Run("train", "sft", "--preset", "micro", "-o", output, "--data", data, "--tokenizer", tokDir,
            "--steps", "4", "--batch", "4", "--log-every", "2", "--threads", "2", "--layers", "3");
        Assert.True(r.ExitCode == 0, r.Error);
        var lines = r.Out.Split('\n');
        Assert.Equal(3, lines.Count(l => l.StartsWith("step ", StringComparison.Ordinal))); // steps 1, 2, 4
        Assert.Contains(lines, l => l.Contains("tok/s") && l.Contains("ETA") && l.Contains("lr "));
        Assert.True(File.Exists(Path.Combine(output, "checkpoint.safetensors")));
        foreach (var path in new[] { Path.Combine(output, "hf"), Path.Combine(output, "model.gguf") })
        {
            using var loaded = LoadedModel.Load(path, new ModelOptions { Threads = 1 });
            Assert.Equal(300, loaded.Model.Description.VocabSize);
            Assert.Equal(3, loaded.Model.Description.Layers); // --layers over the preset's 2
            Assert.NotNull(loaded.Tokenizer);
        }

        var resumed = CliHarness.Run("train", "sft", "--preset", "micro", "-o", output, "--data", data, "--tokenizer", tokDir,
            "--steps", "6", "--batch", "4", "--resume", Path.Combine(output, "checkpoint.safetensors"), "--threads", "2");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains(resumed.Out.Split('\n'), l => l.StartsWith("step     6/6", StringComparison.Ordinal));
        Assert.DoesNotContain(resumed.Out.Split('\n'), l => l.StartsWith("step     1/", StringComparison.Ordinal));
    }

    [Fact]
    public void SftWithNoDataRunsTheBuiltInTasksEndToEnd()
    {
        var output = Path.Combine(_dir, "tasks");
        var r = CliHarness.Run("train", "sft", "--preset", "micro", "-o", output, "--steps", "3", "--batch", "2", "--examples", "40",
            "--eval-problems", "1", "--seq", "128", "--threads", "2");
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Contains("arithmetic test accuracy", r.Out);
        Assert.True(File.Exists(Path.Combine(output, "hf", "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(output, "tokenizer", "tokenizer.json")));
    }
}
