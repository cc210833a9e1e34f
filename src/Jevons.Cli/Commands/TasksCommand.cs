using System.Text.Encodings.Web;
using System.Text.Json;
using Jevons.Training.Tasks;

namespace Jevons.Cli.Commands;

/// <summary>`jevons tasks`: look at the verifiable training tasks (sample problems with their worked completions; score a completion).</summary>
sealed class TasksCommand : ICommand
{
    public CommandSpec Spec { get; } = new("tasks", "sample verifiable reasoning tasks (arithmetic, countdown) or score a completion",
    [
        new("--task", "arithmetic or countdown", "NAME"),
        new("--split", "train or test (default train)", "SPLIT"),
        new("--count", "how many problems (default 5)", "N"),
        new("--seed", "generator seed (default 0)", "S"),
        new("--difficulty", "easy, medium or hard (default: the task's full mix)", "D"),
        new("--json", "one JSON object per problem per line"),
        new("--question", "solve, verify: the question text", "Q"),
        new("--completion-file", "verify: a file holding the completion (- for stdin)", "FILE"),
    ], "sample|solve|verify",
    Usage: "jevons tasks sample --task arithmetic|countdown [--split train|test] [--count N] [--seed S] [--difficulty D] [--json]\n" +
           "       jevons tasks solve --task T --question Q [--json]\n" +
           "       jevons tasks verify --task T --question Q --completion-file F");

    public int Run(ParsedArgs a, CliContext c)
    {
        var verb = a.Positionals.Count == 1 ? a.Positionals[0] : null;
        return verb switch
        {
            "sample" => Sample(a, c),
            "solve" => Solve(a, c),
            "verify" => Verify(a, c),
            _ => throw new JevonsException("jevons tasks: give one of 'sample', 'solve' or 'verify' (see jevons tasks --help)"),
        };
    }

    static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static IReasoningTask Task(ParsedArgs a) => ReasoningTasks.Get(a.Require("--task"));

    static int Sample(ParsedArgs a, CliContext c)
    {
        var task = Task(a);
        var split = a.Get("--split") switch
        {
            null or "train" => Split.Train,
            "test" => Split.Test,
            var s => throw new JevonsException($"jevons tasks: unknown --split '{s}' (train or test)"),
        };
        var difficulty = Common.Difficulty(a, "tasks");
        int count = a.GetInt("--count", 5, 1, 1_000_000);
        var rng = new TaskRng(a.GetSeed("--seed") ?? 0);
        bool json = a.Has("--json");
        for (int i = 0; i < count; i++)
        {
            c.Cancel.ThrowIfCancellationRequested();
            var p = task.Sample(ref rng, split, difficulty);
            var completion = task.Solve(p);
            if (json)
                c.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string>
                {
                    ["task"] = p.Task, ["split"] = split == Split.Train ? "train" : "test",
                    ["question"] = p.Question, ["completion"] = completion, ["answer"] = p.Answer,
                }, JsonOptions));
            else
            {
                if (i > 0) c.Out.WriteLine();
                c.Out.WriteLine($"# {i + 1}  question: {p.Question}");
                c.Out.WriteLine(completion);
                c.Out.WriteLine($"# answer: {p.Answer}");
            }
        }
        return 0;
    }

    /// <summary>The worked completion the trainer teaches for one question (the reference a model's completion is compared with).</summary>
    static int Solve(ParsedArgs a, CliContext c)
    {
        var task = Task(a);
        var question = a.Require("--question");
        var p = task.Parse(question) ?? throw new JevonsException($"jevons tasks: not a {task.Name} question: '{question}'");
        var completion = task.Solve(p);
        if (a.Has("--json"))
            c.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["task"] = p.Task, ["question"] = p.Question, ["completion"] = completion, ["answer"] = p.Answer,
            }, JsonOptions));
        else
            c.Out.WriteLine(completion);
        return 0;
    }

    static int Verify(ParsedArgs a, CliContext c)
    {
        var task = Task(a);
        var question = a.Require("--question");
        var file = a.Require("--completion-file");
        var problem = task.Parse(question) ?? throw new JevonsException($"jevons tasks: not a {task.Name} question: '{question}'");
        string completion;
        if (file == "-")
        {
            using var reader = new StreamReader(c.In);
            completion = reader.ReadToEnd();
        }
        else
        {
            if (!File.Exists(file)) throw new JevonsException("file not found", file);
            completion = File.ReadAllText(file);
        }
        var v = Verifier.Score(task, problem, completion);
        c.Out.WriteLine($"correct: {(v.Correct ? "yes" : "no")}  format: {(v.FormatOk ? "ok" : "bad")}  answer: {v.Extracted ?? "(none)"}  expected: {problem.Answer}"
            + (v.Reason is null ? "" : $"  ({v.Reason})"));
        return v.Correct && v.FormatOk ? 0 : 1;
    }
}
