using Jevons.Cli;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>The command line on System.CommandLine and the terminal on Spectre.Console: help, response files, completion, plain fallback.</summary>
public class SystemCommandLineTests
{
    [Fact]
    public void HelpIsSystemCommandLinesLayoutWithTodaysValueNames()
    {
        var r = CliHarness.Run("run", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("jevons run: generate text from a prompt", r.Out);
        // System.CommandLine's sections and usage synopsis, with the value names as the CLI has always shown them.
        Assert.Contains("Usage:\n  jevons run [<PROMPT>...] [options]\n", r.Out.ReplaceLineEndings("\n"));
        Assert.Contains("\nOptions:\n", r.Out.ReplaceLineEndings("\n"));
        Assert.Contains("  -m, --model PATH  ", r.Out);
        Assert.Contains("  -h, --help ", r.Out);
        var root = CliHarness.Run("--help");
        Assert.Contains("Usage:\n  jevons [command] [options]", root.Out.ReplaceLineEndings("\n"));
        Assert.Contains("\nCommands:\n  run <PROMPT> ", root.Out.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void DeclaredUsageFormsReplaceTheGeneratedOne()
    {
        var r = CliHarness.Run("synth", "--help").Out.ReplaceLineEndings("\n");
        Assert.Contains("Usage:\n  jevons synth --preset NAME [--type T] -o PATH [--format gguf|hf] [--seed S] [--threads N]\n  jevons synth --list\n", r);
        Assert.Equal(r, new SynthCommandSpecHelp().Text);
    }

    sealed class SynthCommandSpecHelp
    {
        public string Text => JevonsCli.Commands.Single(c => c.Spec.Name == "synth").Spec.HelpText().ReplaceLineEndings("\n");
    }

    [Fact]
    public void ResponseFileExpandsToItsWords()
    {
        var file = Path.Combine(Path.GetTempPath(), $"jevons-rsp-{Guid.NewGuid():N}.rsp");
        File.WriteAllText(file, "# sample two problems\nsample --task arithmetic\n--count 2 --seed 1 \"--json\"\n");
        try
        {
            var direct = CliHarness.Run("tasks", "sample", "--task", "arithmetic", "--count", "2", "--seed", "1", "--json");
            var viaFile = CliHarness.Run("tasks", "@" + file);
            Assert.Equal(0, viaFile.ExitCode);
            Assert.Equal(direct.Out, viaFile.Out);
            Assert.Equal(2, viaFile.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void AtWordNamingNoFileStaysAnArgument()
    {
        var r = CliHarness.Run("synth", "@/nonexistent/jevons.rsp");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: jevons synth: unexpected argument '@/nonexistent/jevons.rsp'", r.Error.Trim());
    }

    [Fact]
    public void SelfReferentialResponseFileIsRefused()
    {
        var file = Path.Combine(Path.GetTempPath(), $"jevons-self-{Guid.NewGuid():N}.rsp");
        File.WriteAllText(file, "@" + file + "\n");
        try
        {
            var r = CliHarness.Run("run", "@" + file);
            Assert.Equal(1, r.ExitCode);
            Assert.Equal("error: jevons: more than 64 response files (@FILE) in one command line", r.Error.Trim());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void SuggestDirectiveCompletesOptionNames()
    {
        // The dotnet-suggest protocol: the directive carries the cursor position, the line comes as one word.
        var r = CliHarness.Run("[suggest:11]", "synth --pre");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(["--preset"], r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var commands = CliHarness.Run("[suggest:2]", "sy");
        Assert.Equal(["synth"], commands.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void RepeatedDirectiveIsOneLine()
    {
        // System.CommandLine itself throws InvalidOperationException here (found by the command-line fuzzer).
        var r = CliHarness.Run("[suggest]", "[suggest]", "run");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: jevons: at most one directive ([suggest]) may open the command line", r.Error.Trim());
    }

    [Fact]
    public void NegativeNumbersAreValuesAndMissingValuesAreNamed()
    {
        var seed = CliHarness.Run("tasks", "sample", "--task", "arithmetic", "--seed", "-1");
        Assert.Equal(1, seed.ExitCode);
        Assert.Equal("error: jevons tasks: option '--seed' must be a non-negative integer, got '-1'", seed.Error.Trim());
        var missing = CliHarness.Run("tasks", "sample", "--task");
        Assert.Equal("error: jevons tasks: option '--task' needs a value NAME", missing.Error.Trim());
        var repeated = CliHarness.Run("tasks", "sample", "--task", "countdown", "--task", "arithmetic", "--count", "1", "--seed", "2", "--count", "1");
        Assert.Equal(0, repeated.ExitCode); // the last value wins, as before
        Assert.Equal(CliHarness.Run("tasks", "sample", "--task", "arithmetic", "--count", "1", "--seed", "2").Out, repeated.Out);
    }

    [Fact]
    public void CancelledTasksExitWith130()
    {
        // demo waits on its engine tasks: a cancellation arrives wrapped in an AggregateException (found by the fuzzer as exit 70).
        var o = new StringWriter();
        var e = new StringWriter();
        int code = JevonsCli.Run(["demo", "--count", "2", "-n", "8"], new CliContext { Out = o, Error = e, In = new MemoryStream(), Cancel = new CancellationToken(true) });
        Assert.Equal(130, code);
        Assert.Equal("cancelled", e.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim());
    }

    [Theory]
    [InlineData(true, false, null, "xterm-256color", true)]
    [InlineData(true, true, null, "xterm-256color", false)]   // redirected / piped
    [InlineData(false, false, null, "xterm-256color", false)] // a writer a test or caller substituted
    [InlineData(true, false, "1", "xterm-256color", false)]   // NO_COLOR
    [InlineData(true, false, "", "xterm-256color", true)]     // NO_COLOR set but empty does not count
    [InlineData(true, false, null, "dumb", false)]
    public void SpectreOnlyOnAnInteractiveTerminal(bool consoleWriter, bool redirected, string? noColor, string? term, bool expected) =>
        Assert.Equal(expected, Terminal.IsInteractive(consoleWriter, redirected, noColor, term));

    [Fact]
    public void SynthProgressIsPlainLinesWhenRedirected()
    {
        var path = Path.Combine(Path.GetTempPath(), $"jevons-synth-plain-{Guid.NewGuid():N}.gguf");
        try
        {
            var r = CliHarness.Run("synth", "--preset", "tiny", "-o", path);
            Assert.Equal(0, r.ExitCode);
            Assert.DoesNotContain('\u001b', r.Error);
            Assert.Contains(r.ErrorLines, l => l.StartsWith("synth: 100% ", StringComparison.Ordinal));
            Assert.StartsWith("synth: wrote ", r.ErrorLines[^1]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
