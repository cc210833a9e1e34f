using System.Text;
using Jevons.Cli;

namespace Jevons.Tests.Cli;

/// <summary>Runs the jevons CLI in-process and captures what it prints.</summary>
public static class CliHarness
{
    public sealed record Result(int ExitCode, string Out, string Error)
    {
        public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static Result Run(params string[] args) => RunWithInput(Array.Empty<byte>(), args);

    public static Result RunWithInput(byte[] stdin, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = JevonsCli.Run(args, new CliContext { Out = o, Error = e, In = new MemoryStream(stdin) });
        return new Result(code, o.ToString(), e.ToString());
    }

    public static Result RunWithInput(string stdin, params string[] args) => RunWithInput(Encoding.UTF8.GetBytes(stdin), args);
}
