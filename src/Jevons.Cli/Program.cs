using System.Text;
using Jevons.Cli;
using Jevons.Cli.Commands;

return JevonsCli.Run(args);

namespace Jevons.Cli
{
    /// <summary>A subcommand of `jevons`.</summary>
    public interface ICommand
    {
        CommandSpec Spec { get; }
        int Run(ParsedArgs args, CliContext context);
    }

    /// <summary>Where a command writes; tests substitute writers.</summary>
    public sealed class CliContext
    {
        public TextWriter Out { get; init; } = Console.Out;
        public TextWriter Error { get; init; } = Console.Error;
        public Stream In { get; init; } = Console.OpenStandardInput();
        public bool Verbose { get; set; }
        public CancellationToken Cancel { get; init; }
    }

    public static class JevonsCli
    {
        public static ICommand[] Commands { get; } =
        [
            new RunCommand(), new ChatCommand(), new InspectCommand(), new TokenizeCommand(),
            new EvalLogitsCommand(), new BenchCommand(),
            new TemplateCommand(),
            new SynthCommand(), new TrainCommand(),
            new DemoCommand(),
            new TasksCommand(), new EvalCommand(),
            new ServeCommand(), new LoadTestCommand(),
        ];

        public static int Run(string[] args)
        {
            Console.OutputEncoding = new UTF8Encoding(false);
            using var cts = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                if (cts.IsCancellationRequested) return;
                e.Cancel = true;
                cts.Cancel();
            };
            return Run(args, new CliContext { Cancel = cts.Token });
        }

        public static int Run(string[] args, CliContext context)
        {
            bool verbose = args.Contains("--verbose") || Environment.GetEnvironmentVariable("JEVONS_VERBOSE") == "1";
            args = args.Where(a => a != "--verbose").ToArray();
            context.Verbose = verbose;
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                context.Out.Write(Usage());
                return args.Length == 0 ? 2 : 0;
            }
            if (args[0] == "--version")
            {
                context.Out.WriteLine("jevons " + typeof(JevonsCli).Assembly.GetName().Version);
                return 0;
            }
            var command = Commands.FirstOrDefault(c => c.Spec.Name == args[0]);
            if (command is null)
            {
                context.Error.WriteLine($"jevons: unknown command '{JevonsException.Printable(args[0])}' (see jevons --help)");
                return 2;
            }
            try
            {
                var parsed = ParsedArgs.Parse(command.Spec, args[1..]);
                if (parsed.Has("--help"))
                {
                    context.Out.Write(command.Spec.HelpText());
                    return 0;
                }
                return command.Run(parsed, context);
            }
            catch (JevonsException e)
            {
                PrintError(context, e.Message, e, verbose);
                return 1;
            }
            catch (OperationCanceledException)
            {
                context.Error.WriteLine("cancelled");
                return 130;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                PrintError(context, e.Message, e, verbose);
                return 1;
            }
            catch (Exception e)
            {
                PrintError(context, $"internal error ({e.GetType().Name}): {e.Message} (run with --verbose for the stack trace)", e, verbose);
                return 70;
            }
        }

        /// <summary>
        /// The one place errors reach the terminal: one line, with control characters (NUL, ESC, ...)
        /// escaped, since messages can quote bytes from the files being read.
        /// </summary>
        static void PrintError(CliContext context, string message, Exception e, bool verbose)
        {
            context.Error.WriteLine("error: " + JevonsException.Printable(message.ReplaceLineEndings(" ")));
            if (verbose) context.Error.WriteLine(JevonsException.Printable(e.ToString()).Replace("\\x0A", "\n", StringComparison.Ordinal).Replace("\\x0D", "", StringComparison.Ordinal));
        }

        static string Usage()
        {
            var w = new StringWriter();
            w.WriteLine("jevons: runs DeepSeek-family language models (DeepSeek-V2/V3/R1, R1-Distill Qwen2/Llama) from GGUF and Hugging Face files.");
            w.WriteLine();
            w.WriteLine("Usage: jevons <command> [options]   (jevons <command> --help for its options; --verbose shows stack traces)");
            w.WriteLine();
            w.WriteLine("Commands:");
            foreach (var c in Commands) w.WriteLine($"  {c.Spec.Name,-12} {c.Spec.Summary}");
            return w.ToString();
        }
    }
}
