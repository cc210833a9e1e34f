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
            var syntax = Syntax.Value;
            try
            {
                var result = syntax.Parse(args);
                if (CommandSyntax.ResponseFileError(result) is { } fileError)
                    throw new JevonsException(fileError);
                if (syntax.IsCompletion(result))
                    return CommandSyntax.Complete(result, context);
                if (syntax.SpecOf(result) is not { } spec)
                {
                    var first = CommandSyntax.FirstWord(result);
                    if (first is null or "--help" or "-h" or "help")
                    {
                        syntax.WriteHelp(null, context.Out);
                        return first is null ? 2 : 0;
                    }
                    if (first == "--version")
                    {
                        context.Out.WriteLine("jevons " + typeof(JevonsCli).Assembly.GetName().Version);
                        return 0;
                    }
                    context.Error.WriteLine($"jevons: unknown command '{JevonsException.Printable(first)}' (see jevons --help)");
                    return 2;
                }
                var command = Commands.First(c => ReferenceEquals(c.Spec, spec));
                var parsed = syntax.Bind(result, spec);
                if (parsed.Has("--verbose")) context.Verbose = verbose = true; // from a response file
                if (parsed.Has("--help"))
                {
                    syntax.WriteHelp(spec, context.Out);
                    return 0;
                }
                return command.Run(parsed, context);
            }
            catch (AggregateException e) when (Unwrap(e) is { } inner)
            {
                // Task.WaitAll / .Result wrap what a command's tasks threw: report it as itself.
                return inner switch
                {
                    OperationCanceledException => Cancelled(context),
                    JevonsException or IOException or UnauthorizedAccessException => Error(context, inner, verbose),
                    _ => Internal(context, inner, verbose),
                };
            }
            catch (JevonsException e)
            {
                return Error(context, e, verbose);
            }
            catch (OperationCanceledException)
            {
                return Cancelled(context);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Error(context, e, verbose);
            }
            catch (Exception e)
            {
                return Internal(context, e, verbose);
            }
        }

        static int Error(CliContext context, Exception e, bool verbose)
        {
            PrintError(context, e.Message, e, verbose);
            return 1;
        }

        static int Cancelled(CliContext context)
        {
            context.Error.WriteLine("cancelled");
            return 130;
        }

        static int Internal(CliContext context, Exception e, bool verbose)
        {
            PrintError(context, $"internal error ({e.GetType().Name}): {e.Message} (run with --verbose for the stack trace)", e, verbose);
            return 70;
        }

        /// <summary>
        /// The one exception an AggregateException stands for: all cancellations count as one
        /// cancellation; otherwise the first that is not a cancellation (null when there is none).
        /// </summary>
        static Exception? Unwrap(AggregateException e)
        {
            var all = e.Flatten().InnerExceptions;
            if (all.Count == 0) return null;
            return all.FirstOrDefault(x => x is not OperationCanceledException) ?? all[0];
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

        /// <summary>The System.CommandLine tree of <see cref="Commands"/>, built once.</summary>
        static readonly Lazy<CommandSyntax> Syntax = new(() => CommandSyntax.Build(Commands.Select(c => c.Spec)));
    }
}
