using System.Globalization;
using System.Text.Json.Nodes;
using Jevons.Models;
using Jevons.Training;
using Jevons.Training.Tasks;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons eval`: accuracy of a model on a task's held-out split against the thinking budget (budget forcing)
/// and against majority voting over K samples (self-consistency), with the tokens each point spends per
/// question; --plot draws accuracy against tokens (the Jevons curve). All samples of a point run at once in
/// the batched engine.
/// </summary>
sealed class EvalCommand : ICommand
{
    public CommandSpec Spec { get; } = new("eval", "test-time scaling: task accuracy against the thinking budget and majority voting (the Jevons curve)",
    [
        Common.Model,
        new("--task", "arithmetic or countdown (default arithmetic)", "NAME"),
        new("--split", "test or train (default test)", "SPLIT"),
        new("--count", "questions (default 100)", "N"),
        new("--difficulty", "easy, medium or hard (default: the task's full mix)", "D"),
        new("--budget", "thinking budgets in tokens, comma-separated; 'none' = no forcing (default none)", "B,B,..."),
        new("--votes", "samples per question K, comma-separated; the answer is their majority (default 1)", "K,K,..."),
        new("--temperature", "sampling temperature (default 0 = greedy at K = 1, 0.7 when K > 1)", "T"),
        new("--max-new-tokens", "longest completion (default: the context less 128, at most 1000, at least budget + 64)", "N"),
        new("--seed", "seed of the questions and the samples (default 2)", "S"),
        new("--json", "one JSON object per point"),
        new("--plot", "write the Jevons curve (accuracy vs tokens per question) as PNG", "FILE.png"),
        new("--log-samples", "write every sample as one JSON line (point, question, expected, completion, answer, correct)", "FILE.jsonl"),
        Common.Threads,
    ],
    Usage: "jevons eval [--model M] --task arithmetic|countdown [--split test] [--count N] [--budget 16,32,64,none] [--votes 1,4,8] [--temperature T] [--json] [--plot out.png] [--log-samples out.jsonl]");

    public int Run(ParsedArgs a, CliContext c)
    {
        if (a.Positionals.Count > 0) throw new JevonsException($"jevons eval: unexpected argument '{a.Positionals[0]}'");
        var taskName = a.Get("--task") ?? "arithmetic";
        var task = ReasoningTasks.All.FirstOrDefault(t => t.Name == taskName)
            ?? throw new JevonsException($"jevons eval: unknown --task '{taskName}' (arithmetic or countdown)");
        var split = a.Get("--split") switch
        {
            null or "test" => Split.Test,
            "train" => Split.Train,
            var s => throw new JevonsException($"jevons eval: --split '{s}': expected test or train"),
        };
        var difficulty = Common.Difficulty(a, "eval");
        var budgets = List(a, "--budget", "none", s => s == "none" ? null : (int?)Number(s, "--budget", 1));
        var votes = List(a, "--votes", "1", s => Number(s, "--votes", 1, 256));
        int count = a.GetInt("--count", 100, 1, 100_000);
        float? temperature = a.Has("--temperature") ? a.GetFloat("--temperature", 0) : null;
        if (temperature < 0) throw new JevonsException($"jevons eval: option '--temperature' must be >= 0, got '{a.Get("--temperature")}'");
        ulong seed = a.GetSeed("--seed") ?? 2;
        var plot = a.Get("--plot");
        if (plot is not null && !plot.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            throw new JevonsException($"jevons eval: --plot '{plot}' must name a .png file");
        var logPath = a.Get("--log-samples");
        using var log = logPath is null ? null : OpenLog(logPath);
        int maxBudget = budgets.Max(b => b ?? 0);
        int maxNewGiven = a.GetInt("--max-new-tokens", 0, 1, 1 << 16);

        var path = Common.ModelPath(a);
        using var loaded = LoadedModel.Load(path, Common.ModelOptions(a));
        var tokenizer = loaded.RequireTokenizer();
        int modelContext = loaded.Model.Description.ContextLength > 0 ? loaded.Model.Description.ContextLength : 4096;
        int maxNew = maxNewGiven > 0 ? maxNewGiven : Math.Max(Math.Min(1000, modelContext - 128), maxBudget + 64);
        int context = Math.Min(modelContext, 256 + maxNew);
        bool json = a.Has("--json");
        if (!json) c.Out.WriteLine($"eval: {path}, {task.Name} {split.ToString().ToLowerInvariant()} split, {count} questions, seed {seed}");
        var points = new List<TaskEvalReport>();
        foreach (int k in votes)
            foreach (int? budget in budgets)
            {
                float t = temperature ?? (k > 1 ? 0.7f : 0f);
                var load = ExpertLoad.Observe(loaded.Model);
                TaskEvalReport r;
                using (var engine = Common.CreateEngine(a, c, loaded, context, Math.Min(64, count * k)))
                    r = TaskEval.Run(engine, tokenizer, task, new TaskEvalOptions
                    {
                        Count = count, Split = split, Difficulty = difficulty, Budget = budget, Votes = k, Temperature = t, MaxNewTokens = maxNew, Seed = seed,
                    }, c.Cancel);
                load?.Detach();
                points.Add(r);
                if (log is not null) LogSamples(log, r, budget, k, t);
                if (json)
                    c.Out.WriteLine(new JsonObject
                    {
                        ["task"] = task.Name, ["budget"] = budget, ["votes"] = k, ["temperature"] = t, ["questions"] = count,
                        ["accuracy"] = r.Accuracy, ["sample_accuracy"] = r.SampleAccuracy, ["format"] = r.FormatRate,
                        ["tokens_per_question"] = r.TokensPerQuestion, ["seconds"] = r.Seconds,
                        ["expert_load"] = load is null ? null : new JsonArray(load.MaxOverMean().Select(v => (JsonNode)Math.Round(v, 4)).ToArray()),
                    }.ToJsonString());
                else
                    c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"budget {(budget is int b ? b.ToString(CultureInfo.InvariantCulture) : "none"),5} | votes {k,3} | T {t:0.0} | accuracy {r.Accuracy:0.000} | per sample {r.SampleAccuracy:0.000} | format {r.FormatRate:0.00} | {r.TokensPerQuestion,7:0.0} tokens/question | {r.Seconds:0.0} s")
                        + (load is null ? "" : $" | load max/mean {load}"));
            }
        if (plot is not null)
        {
            // One line per K across the budgets, or (a single budget) one line across K.
            var series = votes.Count > 1 && budgets.Count == 1
                ? [Line("majority vote", points, byVotes: true)]
                : votes.Select(k => Line($"{k} vote{(k == 1 ? "" : "s")}", points.Where(p => p.Options.Votes == k).ToList(), byVotes: false)).ToList();
            Plots.Lines(plot, $"The Jevons curve: {task.Name} accuracy vs tokens spent ({Path.GetFileName(Path.TrimEndingDirectorySeparator(path))})",
                "completion tokens per question", "accuracy", series, markers: true);
            if (!json) c.Out.WriteLine($"eval: wrote {plot}");
        }
        return 0;
    }

    /// <summary>
    /// Tokens per routed expert per MoE layer over every row the engine runs (prompts and completions) while
    /// attached: the aux-loss-free balancing measured at inference, on held-out questions, as V3 measures it on
    /// its test set rather than per training batch.
    /// </summary>
    sealed class ExpertLoad
    {
        readonly DeepSeek _model;
        readonly SortedDictionary<int, long[]> _counts = [];
        readonly int _experts;

        ExpertLoad(DeepSeek model, int experts) { _model = model; _experts = experts; }

        /// <summary>Attaches a counter to an MoE model's router; null for a dense model.</summary>
        public static ExpertLoad? Observe(Model model)
        {
            if (model is not DeepSeek ds || ds.Config.RoutedExperts == 0) return null;
            var load = new ExpertLoad(ds, ds.Config.RoutedExperts);
            ds.OnRouting = load.Count;
            return load;
        }

        void Count(int layer, int token, ReadOnlySpan<int> experts, ReadOnlySpan<float> weights)
        {
            if (!_counts.TryGetValue(layer, out var c)) _counts[layer] = c = new long[_experts];
            foreach (var e in experts) c[e]++;
        }

        public void Detach() => _model.OnRouting = null;

        /// <summary>Per MoE layer in order: the busiest expert's tokens over the mean (1 = perfect balance).</summary>
        public IEnumerable<double> MaxOverMean() => _counts.Values.Select(MetricsLog.MaxOverMean);

        public override string ToString() => string.Join(" ", MaxOverMean().Select(v => v.ToString("0.00", CultureInfo.InvariantCulture)));
    }

    static StreamWriter OpenLog(string path)
    {
        try { return new StreamWriter(path, append: false, new System.Text.UTF8Encoding(false)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new JevonsException($"jevons eval: --log-samples '{path}': cannot write: {e.Message}");
        }
    }

    static void LogSamples(StreamWriter log, TaskEvalReport r, int? budget, int votes, float temperature)
    {
        foreach (var q in r.Questions)
            for (int s = 0; s < q.Samples.Count; s++)
            {
                var v = q.Samples[s];
                log.WriteLine(new JsonObject
                {
                    ["budget"] = budget, ["votes"] = votes, ["temperature"] = temperature, ["sample"] = s,
                    ["question"] = q.Problem.Question, ["expected"] = q.Problem.Answer,
                    ["completion"] = s < q.Texts.Count ? q.Texts[s] : null, ["tokens"] = q.Tokens[s],
                    ["answer"] = v.Extracted, ["correct"] = v.Correct, ["format_ok"] = v.FormatOk, ["reason"] = v.Reason,
                    ["majority"] = q.Majority, ["majority_correct"] = q.MajorityCorrect,
                }.ToJsonString());
            }
        log.Flush();
    }

    static Plots.Series Line(string name, List<TaskEvalReport> points, bool byVotes)
    {
        var sorted = points.OrderBy(p => p.TokensPerQuestion).ToList();
        return new Plots.Series(name, sorted.Select(p => p.TokensPerQuestion).ToArray(), sorted.Select(p => p.Accuracy).ToArray(),
            sorted.Select(p => byVotes ? $"K={p.Options.Votes}" : p.Options.Budget is int b ? $"B={b}" : "no budget").ToArray());
    }

    static List<T> List<T>(ParsedArgs a, string name, string fallback, Func<string, T> parse) =>
        (a.Get(name) ?? fallback).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(parse).Distinct().ToList() is { Count: > 0 } l
            ? l : throw new JevonsException($"jevons eval: option '{name}' is empty");

    static int Number(string s, string name, int min, int max = 1 << 16) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max
            ? v : throw new JevonsException($"jevons eval: option '{name}' wants integers from {min} to {max}{(name == "--budget" ? " or 'none'" : "")}, got '{s}'");
}
