using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace Jevons.Cli;

/// <summary>
/// The `jevons` command tree in System.CommandLine, built from every command's <see cref="CommandSpec"/>:
/// System.CommandLine tokenizes (response files `@FILE`, `--name=value`, `--`, the `[suggest]`
/// completion directive), classifies each token against the tree and lays out help; <see cref="Bind"/>
/// turns the classified tokens into <see cref="ParsedArgs"/>, reporting the first problem in command-line
/// order with the CLI's own one-line messages (unknown option, missing value, unexpected argument).
/// Values stay strings here: the typed, range-checked reads are <see cref="ParsedArgs"/>'s getters,
/// whose messages name the option and its range.
/// </summary>
public sealed class CommandSyntax
{
    public const string Synopsis = "jevons: runs DeepSeek-family language models (DeepSeek-V2/V3/R1, R1-Distill Qwen2/Llama) from GGUF and Hugging Face files.";

    readonly Dictionary<Command, CommandSpec> _specs = new();
    readonly Dictionary<(CommandSpec, string), OptionSpec> _options = new();
    readonly SuggestDirective _suggest = new();
    readonly HelpOption _help = new("--help", "-h") { Description = "show this help" };

    public RootCommand Root { get; }

    CommandSyntax(IEnumerable<CommandSpec> specs)
    {
        Root = new RootCommand() { HelpName = "jevons" };
        Root.Options.Clear();
        Root.Directives.Clear();
        Root.Directives.Add(_suggest);
        Root.Options.Add(_help);
        Root.Options.Add(new Option<bool>("--version") { Description = "print the version", Arity = ArgumentArity.Zero });
        Root.Options.Add(new Option<bool>("--verbose") { Description = "print stack traces with errors (or JEVONS_VERBOSE=1)", Arity = ArgumentArity.Zero, Recursive = true });
        _help.Action = new HelpAction { MaxWidth = 110 };
        foreach (var spec in specs)
        {
            var command = new Command(spec.Name, spec.Summary);
            var taken = new HashSet<string> { "--help", "-h", "--verbose" };
            foreach (var o in spec.Options)
            {
                if (!taken.Add(o.Name)) continue;
                string[] aliases = o.Alias is not null && taken.Add(o.Alias) ? [o.Alias] : [];
                Option option = o.TakesValue
                    ? new Option<string[]>(o.Name, aliases) { Description = o.Help, HelpName = o.Value, Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false }
                    : new Option<bool>(o.Name, aliases) { Description = o.Help, Arity = ArgumentArity.Zero };
                command.Options.Add(option);
                foreach (var name in aliases.Append(o.Name)) _options[(spec, name)] = o;
            }
            // Every command takes positionals at the System.CommandLine level, so unknown options and
            // stray words arrive as argument tokens in order; Bind decides which are errors.
            command.Arguments.Add(new Argument<string[]>(spec.Positional ?? "arguments") { Arity = ArgumentArity.ZeroOrMore, Hidden = spec.Positional is null });
            Root.Subcommands.Add(command);
            _specs[command] = spec;
        }
    }

    public static CommandSyntax Build(IEnumerable<CommandSpec> specs) => new(specs);

    /// <summary>Response files one command line may expand (nested ones count): `@a` naming itself, or 16,000 `@a`, is refused.</summary>
    public const int MaxResponseFiles = 64;

    public ParseResult Parse(IReadOnlyList<string> args)
    {
        // System.CommandLine throws (InvalidOperationException) on a repeated directive: refuse it here.
        if (args.TakeWhile(a => a.Length > 1 && a[0] == '[' && a[^1] == ']').Count() > 1)
            throw new JevonsException("jevons: at most one directive ([suggest]) may open the command line");
        int expanded = 0;
        bool Replace(string path, out IReadOnlyList<string>? tokens, out string? error)
        {
            if (path.Length > 0 && File.Exists(path) && ++expanded > MaxResponseFiles)
            {
                tokens = null;
                error = $"jevons: more than {MaxResponseFiles} response files (@FILE) in one command line";
                return false;
            }
            return ReadResponseFile(path, out tokens, out error);
        }
        return Root.Parse(args, new ParserConfiguration { EnablePosixBundling = false, ResponseFileTokenReplacer = Replace });
    }

    public CommandSpec? SpecOf(ParseResult result) => _specs.GetValueOrDefault(result.CommandResult.Command);

    /// <summary>The tokens after the directives (and, for a subcommand, after its name).</summary>
    static List<Token> Arguments(ParseResult result) =>
        result.Tokens.Where(t => t.Type != TokenType.Directive).ToList();

    /// <summary>The first word of the command line (after directives and response files), or null.</summary>
    public static string? FirstWord(ParseResult result) => Arguments(result) is [var first, ..] ? first.Value : null;

    public bool IsCompletion(ParseResult result) => result.GetResult(_suggest) is not null;

    /// <summary>A response file that exists but could not be read (the one parse error System.CommandLine reports that Bind does not).</summary>
    public static string? ResponseFileError(ParseResult result) =>
        result.Errors.Select(e => e.Message).FirstOrDefault(m => m.StartsWith("jevons: ", StringComparison.Ordinal) && m.Contains("response file", StringComparison.Ordinal));

    /// <summary>ParsedArgs from the classified tokens of a subcommand; the first problem throws its one-line message.</summary>
    public ParsedArgs Bind(ParseResult result, CommandSpec spec)
    {
        var parsed = new ParsedArgs { Command = spec };
        var tokens = Arguments(result);
        int start = tokens.FindIndex(t => t.Type == TokenType.Command) + 1;
        for (int i = start; i < tokens.Count; i++)
        {
            var token = tokens[i];
            switch (token.Type)
            {
                case TokenType.DoubleDash:
                    parsed.Positionals.AddRange(tokens.Skip(i + 1).Select(t => t.Value));
                    i = tokens.Count;
                    break;
                case TokenType.Option when token.Value is "--help" or "-h" or "--verbose":
                    parsed.AddFlag(token.Value == "--verbose" ? "--verbose" : "--help");
                    break;
                case TokenType.Option when _options.TryGetValue((spec, token.Value), out var opt):
                    if (!opt.TakesValue)
                        parsed.AddFlag(opt.Name);
                    else if (i + 1 < tokens.Count && tokens[i + 1].Type == TokenType.Argument)
                        parsed.AddValue(opt, tokens[++i].Value);
                    else
                        throw new JevonsException($"jevons {spec.Name}: option '{opt.Name}' needs a value {opt.Value}");
                    break;
                default:
                    if (ParsedArgs.IsOptionLike(token.Value))
                    {
                        var name = token.Value;
                        int eq = name.IndexOf('=');
                        if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0) name = name[..eq];
                        throw new JevonsException($"jevons {spec.Name}: unknown option '{name}' (see jevons {spec.Name} --help)");
                    }
                    parsed.Positionals.Add(token.Value);
                    break;
            }
        }
        if (spec.Positional is null && parsed.Positionals.Count > 0 && !parsed.Has("--help"))
            throw new JevonsException($"jevons {spec.Name}: unexpected argument '{parsed.Positionals[0]}'");
        return parsed;
    }

    /// <summary>
    /// Writes the help of <paramref name="command"/> (null: the root): System.CommandLine's help (usage,
    /// arguments, options, subcommands) under the command's one-line synopsis, with today's forms:
    /// value names as `--model PATH`, and the command's own usage lines where it declares them.
    /// </summary>
    public void WriteHelp(CommandSpec? spec, TextWriter output)
    {
        var help = new StringWriter();
        Parse(spec is null ? ["--help"] : [spec.Name, "--help"])
            .Invoke(new InvocationConfiguration { Output = help, Error = help, EnableDefaultExceptionHandler = false });
        var text = help.ToString().ReplaceLineEndings("\n");
        if (text.StartsWith("Description:", StringComparison.Ordinal)) text = text[(text.IndexOf("\n\n", StringComparison.Ordinal) + 2)..]; // the synopsis line says it
        foreach (var o in spec?.Options ?? [])
            if (o.Value is not null) text = text.Replace($" <{o.Value}>", $" {o.Value}  ", StringComparison.Ordinal); // same width: the columns stay aligned
        output.WriteLine(spec is null ? Synopsis : $"jevons {spec.Name}: {spec.Summary}");
        output.WriteLine();
        if (spec?.Usage is { } usage)
        {
            // The declared forms replace System.CommandLine's one-line usage.
            int at = text.IndexOf("Usage:\n", StringComparison.Ordinal), end = text.IndexOf("\n\n", at + 1, StringComparison.Ordinal);
            if (at >= 0 && end > at)
                text = text[..at] + "Usage:\n" + string.Join("\n", usage.Split('\n').Select(l => "  " + l.Trim())) + text[end..];
        }
        output.Write(text.TrimEnd('\n') + "\n");
    }

    /// <summary>Runs the `[suggest]` directive: completions for the command line, one a line.</summary>
    public static int Complete(ParseResult result, CliContext context) =>
        result.Invoke(new InvocationConfiguration { Output = context.Out, Error = context.Error, EnableDefaultExceptionHandler = false });

    /// <summary>
    /// `@FILE` expands to the file's words (one or more a line, shell-style quotes, `#` comments); a
    /// token naming no file stays as it is, so a prompt such as `@user hi` still reaches the command.
    /// </summary>
    static bool ReadResponseFile(string path, out IReadOnlyList<string>? tokens, out string? error)
    {
        tokens = null;
        error = null;
        if (path.Length == 0 || !File.Exists(path)) return false;
        try
        {
            // At most 1 MiB: `@/dev/zero` or a multi-gigabyte file is refused, not read.
            using var reader = new StreamReader(path);
            var text = new System.Text.StringBuilder();
            var chunk = new char[4096];
            for (int n; (n = reader.Read(chunk)) > 0;)
            {
                text.Append(chunk, 0, n);
                if (text.Length > 1 << 20)
                {
                    error = $"jevons: response file '{path}' is larger than 1 MiB";
                    return false;
                }
            }
            tokens = text.ToString().Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.Length > 0 && !l.StartsWith('#'))
                .SelectMany(CommandLineParser.SplitCommandLine)
                .ToList();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"jevons: cannot read response file '{path}': {e.Message}";
            return false;
        }
    }
}
