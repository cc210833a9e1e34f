using System.Text.Json;
using Xunit;

namespace Jevons.Tests.Cli;

public class TasksCommandTests
{
    [Fact]
    public void SamplePrintsQuestionCompletionAndAnswer()
    {
        var r = CliHarness.Run("tasks", "sample", "--task", "arithmetic", "--count", "3", "--seed", "4");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(3, r.Out.Split('\n').Count(l => l.StartsWith("# ") && l.Contains("question: What is ")));
        Assert.Equal(3, r.Out.Split('\n').Count(l => l.StartsWith("# answer: ")));
        Assert.Contains("</think>", r.Out);
        Assert.Equal(r.Out, CliHarness.Run("tasks", "sample", "--task", "arithmetic", "--count", "3", "--seed", "4").Out);
    }

    [Fact]
    public void SampleJsonIsOneObjectPerLine()
    {
        var r = CliHarness.Run("tasks", "sample", "--task", "countdown", "--split", "test", "--count", "4", "--json");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var o = doc.RootElement;
            Assert.Equal("countdown", o.GetProperty("task").GetString());
            Assert.Equal("test", o.GetProperty("split").GetString());
            Assert.StartsWith("Using the numbers [", o.GetProperty("question").GetString());
            Assert.EndsWith("\\boxed{" + o.GetProperty("answer").GetString() + "}", o.GetProperty("completion").GetString());
        }
    }

    [Fact]
    public void SolvePrintsTheWorkedCompletionOfAQuestion()
    {
        var r = CliHarness.Run("tasks", "solve", "--task", "arithmetic", "--question", "What is 12 + 30?");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("<think>\n12 + 30 = [12+30]\n12+30: 2+0+0=2 c0 → 2\n1+3: 1+3+0=4 c0 → 42\n12+30=42\n[12+30] = 42\n</think>\n12 + 30 = 42\n\\boxed{42}", r.Out.TrimEnd('\n'));
        var json = CliHarness.Run("tasks", "solve", "--task", "arithmetic", "--question", "What is 7 * 6?", "--json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Equal("42", doc.RootElement.GetProperty("answer").GetString());
        Assert.EndsWith("\\boxed{42}", doc.RootElement.GetProperty("completion").GetString());
        var bad = CliHarness.Run("tasks", "solve", "--task", "arithmetic", "--question", "What is the time?");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("not a arithmetic question: 'What is the time?'", Assert.Single(bad.ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal)));
    }

    [Fact]
    public void VerifyScoresACompletionFile()
    {
        var file = Path.Combine(Path.GetTempPath(), $"jevons-tasks-verify-{Environment.ProcessId}.txt");
        File.WriteAllText(file, "<think>\nadd\n</think>\n4821 + 377 = 5198\n\\boxed{5198}");
        var ok = CliHarness.Run("tasks", "verify", "--task", "arithmetic", "--question", "What is 4821 + 377?", "--completion-file", file);
        Assert.Equal(0, ok.ExitCode);
        Assert.StartsWith("correct: yes  format: ok  answer: 5198", ok.Out);
        var bad = CliHarness.RunWithInput("\\boxed{5199}", "tasks", "verify", "--task", "arithmetic", "--question", "What is 4821 + 377?", "--completion-file", "-");
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("correct: no  format: bad  answer: 5199  expected: 5198", bad.Out);
    }

    [Theory]
    [InlineData("tasks", "sample", "--task", "sudoku")]
    [InlineData("tasks", "sample")]
    [InlineData("tasks", "sample", "--task", "arithmetic", "--split", "dev")]
    [InlineData("tasks", "sample", "--task", "arithmetic", "--count", "0")]
    [InlineData("tasks", "sample", "--task", "arithmetic", "--seed", "-1")]
    [InlineData("tasks", "sample", "--task", "arithmetic", "--difficulty", "extreme")]
    [InlineData("tasks", "sample", "--task", "arithmetic", "--bogus")]
    [InlineData("tasks", "shuffle", "--task", "arithmetic")]
    [InlineData("tasks")]
    [InlineData("tasks", "verify", "--task", "countdown", "--question", "What is 1 + 1?", "--completion-file", "x")]
    [InlineData("tasks", "verify", "--task", "arithmetic", "--question", "What is 1 + 1?", "--completion-file", "/nonexistent/file")]
    public void BadInvocationsPrintOneErrorLine(params string[] args)
    {
        var r = CliHarness.Run(args);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.StartsWith("error: ", r.ErrorLines[0]);
    }
}
