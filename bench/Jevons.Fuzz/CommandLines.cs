using System.Diagnostics;
using System.Text;
using Jevons.Cli;

namespace Jevons.Fuzz;

/// <summary>
/// Command-line fuzzing: real `jevons` command lines against tiny synthesized models, mutated (values
/// swapped for numbers at the edges, empty, huge, unicode and control strings; flags dropped, repeated
/// thousands of times, left without their value, moved, or unknown; command names swapped; response
/// files), each run in-process through <see cref="JevonsCli.Run(string[], CliContext)"/> on its own
/// thread. A case that is still running after <see cref="CancelAfter"/> is cancelled as Ctrl+C would
/// (a legitimate long run, e.g. `-n 16777216`, must then stop with exit 130); one still running
/// <see cref="HangAfter"/> after its start is a hang. Exit 70 is an internal error; an exception
/// escaping Run is a crash.
/// </summary>
public sealed class CommandLineCampaign
{
    public TimeSpan CancelAfter { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan HangAfter { get; init; } = TimeSpan.FromSeconds(20);
    public Action<string> Log { get; init; } = Console.WriteLine;

    readonly string _dir;
    readonly List<string[]> _bases;

    /// <summary>Commands a mutation may switch to: not serve / loadtest (ports) nor train / demo (minutes of work).</summary>
    static readonly string[] SafeCommands = ["run", "chat", "inspect", "tokenize", "eval-logits", "bench", "template", "synth", "tasks"];

    static readonly string[] Edge =
    [
        "0", "1", "-1", "-0", "2", "7", "255", "256", "65535", "65536", "16777215", "16777216", "16777217",
        "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551615", "18446744073709551616",
        "1e9", "1e38", "3.5e38", "1e309", "-1e309", "1e-45", "NaN", "nan", "Infinity", "-Infinity", "inf", "0x10", "1_000", "1,000", "１２",
        "0.5", "-0.5", "1.", ".5", "+5", "5 ", " 5", "", " ", "\t", "\0", "\u001b[2J", "\r\n", "日本語", "🙂", "\uD800", "\uDFFF", "é",
        "[", "]", "[1,2]", "1,,2", ",", "1,-2", "1,2147483647", "a=b", "=", "-", "--", "---", "-x", "--x=", "@", "@/nonexistent", "@/dev/null", "@/dev/zero",
        "/", "/nonexistent/x", ".", "..", "null", "true", "{}", "[suggest]", "[suggest:3]", "[diagram]", "--help", "-h", "--version", "help",
    ];

    static readonly string[] Unknown = ["--bogus", "--model=", "--n-predict=5", "-n=5", "--=x", "-", "--MODEL", "--mod", "-mm", "-nn", "—model", "--model\u0000"];

    public CommandLineCampaign(string dir)
    {
        _dir = dir;
        Directory.CreateDirectory(dir);
        string gguf = Path.Combine(dir, "tiny.gguf"), hf = Path.Combine(dir, "tiny-hf"), q4 = Path.Combine(dir, "tiny-q4.gguf");
        Synth(["synth", "--preset", "tiny", "-o", gguf]);
        Synth(["synth", "--preset", "tiny", "--type", "Q4_K", "-o", q4]);
        Synth(["synth", "--preset", "tiny", "--format", "hf", "-o", hf]);
        string rsp = Path.Combine(dir, "args.rsp"), messages = Path.Combine(dir, "messages.json"), completion = Path.Combine(dir, "completion.txt");
        File.WriteAllText(rsp, $"# a response file\n-m {gguf}\n-n 2 --seed 3\n\"hello there\"\n");
        File.WriteAllText(messages, """[{"role":"user","content":"hi"}]""");
        File.WriteAllText(completion, "<think>2+2</think> 4");
        string o = Path.Combine(dir, "out");
        _bases =
        [
            ["run", "-m", gguf, "-p", "hello", "-n", "4", "--seed", "1"],
            ["run", "-m", q4, "--ids", "1,2,3", "-n", "2", "--temperature", "0", "--print-ids"],
            ["run", "-m", hf, "--chat", "-p", "hi", "-n", "3", "--stop", "x", "--stop", "y", "--top-k", "5", "--top-p", "0.9", "--min-p", "0.1", "--repeat-penalty", "1.1", "--repeat-last-n", "-1"],
            ["run", "-m", gguf, "-n", "2", "-t", "1", "-c", "64", "--", "-5", "--not-an-option"],
            ["run", "@" + rsp],
            ["chat", "-m", gguf, "-n", "4", "--system", "be brief"],
            ["inspect", "-m", gguf, "--json"],
            ["inspect", "-m", hf, "--check"],
            ["tokenize", "-m", gguf, "hello world", "--json"],
            ["tokenize", "--tokenizer", hf, "--add-special", "naïve café"],
            ["eval-logits", "-m", gguf, "--ids", "1,2", "-o", o + ".bin"],
            ["bench", "-m", gguf, "-p", "8", "-n", "4", "-r", "1", "--no-roofline", "--json"],
            ["bench", "-m", q4, "-p", "4", "-n", "2", "-r", "1", "--no-roofline", "--concurrency", "2"],
            ["template", "-m", hf, "--messages", messages, "--add-generation-prompt", "--json"],
            ["synth", "--preset", "tiny", "-o", o + ".gguf", "--seed", "3", "--type", "Q8_0", "-t", "1"],
            ["synth", "--list"],
            ["tasks", "sample", "--task", "arithmetic", "--count", "3", "--seed", "1", "--json"],
            ["tasks", "sample", "--task", "countdown", "--split", "test", "--difficulty", "hard"],
            ["tasks", "verify", "--task", "arithmetic", "--question", "What is 2 + 2?", "--completion-file", completion],
            ["[suggest]", "run", "--mo"],
            ["run", "--help"], ["--help"], ["--version"], ["train", "--help"], ["serve", "--help"], ["demo", "--help"],
        ];
    }

    void Synth(string[] args)
    {
        var w = new StringWriter();
        if (JevonsCli.Run(args, new CliContext { Out = w, Error = w, In = Stream.Null }) != 0)
            throw new InvalidOperationException("synth failed: " + w);
    }

    public readonly record struct Totals(long Cases, long Ok, long Clean, long Usage, long Cancelled, long Internal, long Crash, long Hang);

    public Totals Run(long cases, int seed, int workers, Dictionary<string, int> findings)
    {
        long ok = 0, clean = 0, usage = 0, cancelled = 0, internalErrors = 0, crashes = 0, hangs = 0, done = 0;
        var watch = Stopwatch.StartNew();
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            for (long i = w; i < cases; i += workers)
            {
                var rng = new Random(HashCode.Combine(seed, i));
                var args = Mutate(_bases[rng.Next(_bases.Count)], rng);
                var (code, detail) = RunCase(args);
                switch (code)
                {
                    case 0: Interlocked.Increment(ref ok); break;
                    case 1: Interlocked.Increment(ref clean); break;
                    case 2: Interlocked.Increment(ref usage); break;
                    case 130: Interlocked.Increment(ref cancelled); break;
                    case 70: Interlocked.Increment(ref internalErrors); Note(findings, "internal: " + detail, args); break;
                    case -1: Interlocked.Increment(ref hangs); Note(findings, "hang", args); break;
                    default: Interlocked.Increment(ref crashes); Note(findings, $"crash ({code}): {detail}", args); break;
                }
                long d = Interlocked.Increment(ref done);
                if (d % 1000 == 0) Log($"  {d} cases, {watch.Elapsed.TotalSeconds:F0} s");
            }
        });
        return new Totals(cases, ok, clean, usage, cancelled, internalErrors, crashes, hangs);
    }

    void Note(Dictionary<string, int> findings, string what, string[] args)
    {
        lock (findings)
        {
            var key = what.Length > 300 ? what[..300] : what;
            findings[key] = findings.GetValueOrDefault(key) + 1;
            if (findings[key] == 1) Log($"  {key}\n    args ({args.Length}): {string.Join(" ", args.Take(16).Select(Show))}{(args.Length > 16 ? " ..." : "")}");
        }
    }

    static string Show(string a) => a.Length > 60 ? JevonsException.Printable(a[..60]) + $"...({a.Length} chars)" : "'" + JevonsException.Printable(a) + "'";

    /// <summary>Runs one command line; the exit code, or -1 for a hang, or 99 for an exception out of Run.</summary>
    (int Code, string Detail) RunCase(string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        using var cts = new CancellationTokenSource(CancelAfter);
        int code = 0;
        Exception? escaped = null;
        var thread = new Thread(() =>
        {
            try
            {
                code = JevonsCli.Run(args, new CliContext { Out = TextWriter.Synchronized(output), Error = TextWriter.Synchronized(error), In = new MemoryStream(), Cancel = cts.Token });
            }
            catch (Exception e)
            {
                escaped = e;
            }
        }, 16 << 20) { IsBackground = true, Name = "jevons-fuzz-cli" };
        thread.Start();
        if (!thread.Join(HangAfter)) return (-1, "");
        if (escaped is not null) return (99, $"{escaped.GetType().Name}: {escaped.Message}");
        return (code, error.ToString().ReplaceLineEndings(" ").Trim());
    }

    string[] Mutate(string[] line, Random rng)
    {
        var a = line.ToList();
        int count = 1 + rng.Next(3);
        for (int m = 0; m < count; m++)
        {
            int at = a.Count == 0 ? 0 : rng.Next(a.Count);
            switch (rng.Next(13))
            {
                case 0 or 1 or 2 when a.Count > 0: a[at] = Edge[rng.Next(Edge.Length)]; break;                 // a value (or flag) at the edge
                case 3 when a.Count > 0: a.RemoveAt(at); break;                                                  // a missing value / flag
                case 4 when a.Count > 0: a.RemoveAt(a.Count - 1); break;                                         // truncated: the last option loses its value
                case 5 when a.Count > 0: a.Insert(at, a[at]); break;                                             // a repeated token
                case 6 when a.Count > 1: (a[at], a[^1]) = (a[^1], a[at]); break;                                 // moved
                case 7: a.Insert(at, Unknown[rng.Next(Unknown.Length)]); break;                                  // an unknown option
                case 8: a.Insert(Math.Min(a.Count, 1 + rng.Next(Math.Max(1, a.Count))), OptionOf(rng)); break;  // an option of some command, value or not
                case 9 when a.Count > 0: a[0] = rng.Next(4) == 0 ? Edge[rng.Next(Edge.Length)] : SafeCommands[rng.Next(SafeCommands.Length)]; break;
                case 10 when a.Count > 0:                                                                        // huge counts: a flag or pair thousands of times
                    var repeated = a[at];
                    a.InsertRange(at, Enumerable.Repeat(repeated, 1 + rng.Next(20_000)));
                    break;
                case 11 when a.Count > 0: a[at] = Twiddle(a[at], rng); break;                                    // a character flipped, dropped or doubled
                case 12: a.Insert(at, rng.Next(2) == 0 ? new string('x', 1 + rng.Next(1 << 20)) : string.Concat(Enumerable.Repeat("9", 1 + rng.Next(400)))); break;
            }
        }
        // No process gets more than Linux's ARG_MAX (2 MiB of arguments): trim to it.
        long total = 0;
        int keep = 0;
        while (keep < a.Count && (total += a[keep].Length + 1) <= ArgMax) keep++;
        return a.Take(keep).ToArray();
    }

    const long ArgMax = 2 << 20;

    static string OptionOf(Random rng)
    {
        var specs = JevonsCli.Commands.Select(c => c.Spec).ToArray();
        var spec = specs[rng.Next(specs.Length)];
        if (spec.Options.Length == 0) return "--help";
        var o = spec.Options[rng.Next(spec.Options.Length)];
        return rng.Next(3) == 0 && o.Alias is not null ? o.Alias : o.Name;
    }

    static string Twiddle(string s, Random rng)
    {
        if (s.Length == 0) return "\u0001";
        var b = new StringBuilder(s);
        int at = rng.Next(b.Length);
        switch (rng.Next(4))
        {
            case 0: b[at] = (char)rng.Next(0x20, 0x7F); break;
            case 1: b.Remove(at, 1); break;
            case 2: b.Insert(at, b[at]); break;
            default: b[at] = (char)rng.Next(0, 0xFFFF); break;
        }
        return b.ToString();
    }
}
