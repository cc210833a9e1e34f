using Xunit;

namespace Jevons.Tests.Cli;

public class CommandLineTests
{
    [Theory]
    [InlineData("run")]
    [InlineData("chat")]
    [InlineData("inspect")]
    [InlineData("tokenize")]
    [InlineData("eval-logits")]
    [InlineData("bench")]
    public void EveryCommandHasHelp(string command)
    {
        var r = CliHarness.Run(command, "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith($"jevons {command}: ", r.Out);
        Assert.Contains("--help", r.Out);
    }

    [Fact]
    public void UnknownCommandIsOneLine()
    {
        var r = CliHarness.Run("frobnicate");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("jevons: unknown command 'frobnicate' (see jevons --help)", r.Error.Trim());
    }

    [Fact]
    public void UnknownOptionNamesIt()
    {
        var r = CliHarness.Run("run", "--model", "x.gguf", "--bogus", "1");
        Assert.Equal(1, r.ExitCode);
        Assert.Single(r.ErrorLines);
        Assert.Contains("'--bogus'", r.Error);
    }

    [Fact]
    public void MissingModelFileNamesThePath()
    {
        var path = Path.Combine(Path.GetTempPath(), "jevons-no-such-model.gguf");
        var r = CliHarness.Run("run", "--model", path, "--ids", "1,2", "-n", "1");
        Assert.Equal(1, r.ExitCode);
        var error = r.ErrorLines.Last();
        Assert.StartsWith("error: ", error);
        Assert.Contains("jevons-no-such-model.gguf", error);
        Assert.DoesNotContain("   at ", r.Error);
    }

    [Theory]
    [InlineData("--ids", "1,x,3", "'x' is not a token id")]
    [InlineData("--temperature", "hot", "'--temperature' must be a number")]
    [InlineData("-n", "-5", "'--n-predict' must be an integer >= -1")]
    public void BadValuesNameTheOption(string option, string value, string expected)
    {
        var args = option == "--ids"
            ? new[] { "run", "--model", "m.gguf", option, value }
            : new[] { "run", "--model", "m.gguf", "--ids", "1", option, value };
        var r = CliHarness.Run(args);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, r.Error);
        Assert.Single(r.ErrorLines);
    }
}
