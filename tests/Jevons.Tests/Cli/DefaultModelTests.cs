using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>
/// The embedded default model (models/tiny-r1, trained here by `jevons train sft`): run and inspect pick it
/// when no --model is given, and it answers an arithmetic question with reasoning and a boxed result.
/// </summary>
public class DefaultModelTests
{
    static readonly string? Dir = Jevons.Cli.Commands.Common.DefaultModel();

    [Fact]
    public void RunWithoutModelUsesTheEmbeddedDefaultOrSaysThereIsNone()
    {
        var r = CliHarness.Run("run", "--chat", "What is 12 + 30?", "--temperature", "0", "-n", "400");
        if (Dir is null)
        {
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("no embedded default model (tiny-r1)", r.Error);
            return;
        }
        Assert.Equal(0, r.ExitCode);
        Assert.Contains($"loading {Dir}", r.Error);
        Assert.Contains("</think>", r.Out);
        Assert.EndsWith("\\boxed{42}", r.Out.TrimEnd());
    }

    /// <summary>
    /// README's main command as written (no -n): a chat turn generates until the model ends it (llama.cpp's -n -1),
    /// so the reasoning is not cut at a fixed length; -1 without --chat runs to the context and says so.
    /// </summary>
    [Fact]
    public void TheReadmeCommandAnswersWithoutATokenLimit()
    {
        if (Dir is null) return;
        var r = CliHarness.Run("run", "--chat", "What is 4821 + 377?", "--temperature", "0");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("</think>", r.Out);
        Assert.EndsWith("\\boxed{5198}", r.Out.TrimEnd());
        Assert.Contains("stop: EndOfSequence", r.Error);
        var full = CliHarness.Run("run", "What is", "-n", "-1", "--ctx-size", "8", "--ignore-eos", "--temperature", "0");
        Assert.Equal(0, full.ExitCode);
        Assert.Contains("generated: 5 tokens", full.Error); // 8 positions less the 3 of the prompt
        Assert.Contains("stop: ContextFull", full.Error);
        Assert.Contains("'--n-predict' must be an integer >= -1", CliHarness.Run("run", "x", "-n", "-2").Error);
    }

    [Fact]
    public void InspectWithoutModelDescribesTheDefault()
    {
        var r = CliHarness.Run("inspect", "--json");
        if (Dir is null)
        {
            Assert.Equal(1, r.ExitCode);
            return;
        }
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("DeepseekV3ForCausalLM", r.Out);
    }

    [Fact]
    public void DemoAsksTheEmbeddedModelHeldOutQuestionsAndChecksEach()
    {
        if (Dir is null) return;
        var r = CliHarness.Run("demo", "--count", "2", "--seed", "3", "-n", "700");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("demo: 2 held-out arithmetic questions (seed 3)", r.Error);
        Assert.Equal(2, r.Out.Split('\n').Count(l => l.StartsWith("── 1. What is ") || l.StartsWith("── 2. What is ")));
        Assert.Contains("<think>", r.Out);
        Assert.Matches(@"demo: [0-2]/2 correct", r.Out);
        Assert.Matches(@"demo: \d+ tokens in .* over 2 concurrent sequences", r.Error);
        // Same seed, same questions and answers (greedy).
        Assert.Equal(r.Out, CliHarness.Run("demo", "--count", "2", "--seed", "3", "-n", "700").Out);
        var bad = CliHarness.Run("demo", "--task", "chess");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("unknown task 'chess'", bad.Error);
    }
}
