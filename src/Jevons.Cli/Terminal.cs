using Spectre.Console;

namespace Jevons.Cli;

/// <summary>
/// How the CLI draws on stderr: Spectre.Console progress bars when stderr is the process's own
/// interactive terminal, plain lines otherwise — when it is redirected or piped, when a test
/// substitutes a writer, when <c>NO_COLOR</c> is set or <c>TERM=dumb</c> — so scripts and tests see
/// stable, escape-free output.
/// </summary>
public static class Terminal
{
    /// <summary>The decision, pure for tests: a console writer, not redirected, and no request for plain text.</summary>
    public static bool IsInteractive(bool consoleWriter, bool redirected, string? noColor, string? term) =>
        consoleWriter && !redirected && string.IsNullOrEmpty(noColor) && term != "dumb";

    /// <summary>Whether this command's stderr gets Spectre.Console progress bars.</summary>
    public static bool ErrorIsInteractive(CliContext c) =>
        IsInteractive(ReferenceEquals(c.Error, Console.Error), Console.IsErrorRedirected,
            Environment.GetEnvironmentVariable("NO_COLOR"), Environment.GetEnvironmentVariable("TERM"));

    /// <summary>Whether this command's stdout gets Spectre.Console tables (same rule as stderr's bars).</summary>
    public static bool OutIsInteractive(CliContext c) =>
        IsInteractive(ReferenceEquals(c.Out, Console.Out), Console.IsOutputRedirected,
            Environment.GetEnvironmentVariable("NO_COLOR"), Environment.GetEnvironmentVariable("TERM"));

    /// <summary>
    /// A table on stdout: a Spectre.Console table on an interactive terminal, else the Markdown table
    /// the CLI has always printed (`| a | b |`, then `| --- | ---: |` from <paramref name="rightAligned"/>).
    /// </summary>
    public static void WriteTable(CliContext c, string[] header, bool[] rightAligned, IEnumerable<string[]> rows)
    {
        if (!OutIsInteractive(c))
        {
            c.Out.WriteLine("| " + string.Join(" | ", header) + " |");
            c.Out.WriteLine("| " + string.Join(" | ", rightAligned.Select(r => r ? "---:" : "---")) + " |");
            foreach (var row in rows) c.Out.WriteLine("| " + string.Join(" | ", row) + " |");
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        for (int i = 0; i < header.Length; i++)
            table.AddColumn(new TableColumn(Markup.Escape(header[i])) { Alignment = rightAligned[i] ? Justify.Right : Justify.Left });
        foreach (var row in rows) table.AddRow(row.Select(Markup.Escape).ToArray());
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }).Write(table);
    }

    /// <summary>Key / value rows as a two-column Spectre.Console table (only when <see cref="OutIsInteractive"/>).</summary>
    public static void WriteFacts(IEnumerable<(string Key, string Value)> facts)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumn("key").AddColumn("value");
        foreach (var (k, v) in facts) table.AddRow(new Text(k, new Style(Color.Grey)), new Text(v));
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }).Write(table);
    }

    /// <summary>
    /// Runs <paramref name="work"/> under a Spectre.Console progress bar on stderr: it reports a fraction
    /// in [0, 1] (null: an indeterminate bar, e.g. a model load). Only call when <see cref="ErrorIsInteractive"/>.
    /// </summary>
    public static T WithProgress<T>(string label, Func<IProgress<double>, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: 1.0);
                var result = work(new Bar(task));
                task.IsIndeterminate = false;
                task.Value = 1.0;
                return result;
            });
    }

    /// <summary>An indeterminate bar for work with no fraction to report (a model load).</summary>
    public static T WithSpinner<T>(string label, Func<T> work) =>
        WithProgress(label, bar =>
        {
            ((Bar)bar).Task.IsIndeterminate = true;
            return work();
        });

    /// <summary>Bytes written, as a fraction on <paramref name="bar"/> (reported on the writer's thread).</summary>
    public static IProgress<Jevons.Formats.WriteProgress> Bytes(IProgress<double> bar) => new BytesBar(bar);

    sealed class BytesBar(IProgress<double> bar) : IProgress<Jevons.Formats.WriteProgress>
    {
        public void Report(Jevons.Formats.WriteProgress p) => bar.Report(p.Fraction);
    }

    sealed class Bar(ProgressTask task) : IProgress<double>
    {
        public ProgressTask Task => task;
        public void Report(double fraction) => task.Value = Math.Clamp(fraction, 0, 1);
    }
}
