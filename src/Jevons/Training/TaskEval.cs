using Jevons.Inference;
using Jevons.Tokenization;
using Jevons.Training.Tasks;

namespace Jevons.Training;

/// <summary>One point of a test-time-scaling sweep.</summary>
public sealed record TaskEvalOptions
{
    public int Count { get; init; } = 100;
    public Split Split { get; init; } = Split.Test;
    public Difficulty? Difficulty { get; init; }
    /// <summary>Reasoning tokens after which "&lt;/think&gt;\n" is forced (budget forcing); null = none.</summary>
    public int? Budget { get; init; }
    /// <summary>Samples per question (K); the answer is their majority (self-consistency).</summary>
    public int Votes { get; init; } = 1;
    /// <summary>0 = greedy.</summary>
    public float Temperature { get; init; }
    public int MaxNewTokens { get; init; } = 512;
    /// <summary>Seed of the problems (the same seed gives the same questions at every point of a sweep) and of the sampling.</summary>
    public ulong Seed { get; init; } = 2;
}

/// <summary>A question's K samples and their vote.</summary>
public sealed record EvalQuestion(Problem Problem, IReadOnlyList<Verdict> Samples, IReadOnlyList<int> Tokens, string? Majority, bool MajorityCorrect)
{
    /// <summary>Each sample's completion text (after the template's generation prefix), in sample order.</summary>
    public IReadOnlyList<string> Texts { get; init; } = [];
}

/// <summary>Accuracy at one (budget, votes) point and the tokens it spent.</summary>
public sealed record TaskEvalReport(string Task, TaskEvalOptions Options, IReadOnlyList<EvalQuestion> Questions, double Seconds)
{
    /// <summary>Majority-vote accuracy (= single-sample accuracy at K = 1).</summary>
    public double Accuracy => Questions.Count == 0 ? 0 : Questions.Count(q => q.MajorityCorrect) / (double)Questions.Count;
    /// <summary>Mean accuracy of one sample.</summary>
    public double SampleAccuracy => Questions.Count == 0 ? 0 : Questions.Average(q => q.Samples.Count(s => s.Correct) / (double)q.Samples.Count);
    public double FormatRate => Questions.Count == 0 ? 0 : Questions.Average(q => q.Samples.Count(s => s.FormatOk) / (double)q.Samples.Count);
    /// <summary>Completion tokens generated per question, all K samples together: the cost axis of the Jevons curve.</summary>
    public double TokensPerQuestion => Questions.Count == 0 ? 0 : Questions.Average(q => (double)q.Tokens.Sum());
}

/// <summary>
/// Scores a model on a task's split through the batched engine: every sample of every question is in flight at
/// once, with budget forcing (a <see cref="ThinkingBudget"/> hook) and majority voting over the \boxed{} answers
/// (whitespace removed; the first-seen answer wins a tie; a sample with no answer does not vote).
/// </summary>
public static class TaskEval
{
    public static TaskEvalReport Run(InferenceEngine engine, Tokenizer tokenizer, IReasoningTask task, TaskEvalOptions o, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var format = ChatFormat.For(tokenizer);
        var rng = new TaskRng(o.Seed);
        var problems = Enumerable.Range(0, o.Count).Select(_ => task.Sample(ref rng, o.Split, o.Difficulty)).ToList();
        bool opens = format.GenerationSuffix.Contains("<think>", StringComparison.Ordinal);
        var close = tokenizer.Encode("</think>\n", addSpecialTokens: false);
        var requests = problems.Select((p, i) => new GenerationRequest
        {
            Prompt = tokenizer.Encode(SftDataset.Prompt(format, p), addSpecialTokens: false),
            N = o.Votes,
            MaxTokens = o.MaxNewTokens,
            Sampling = new SamplerOptions
            {
                Temperature = o.Temperature, TopK = 0, TopP = 1, MinP = 0,
                Seed = unchecked(o.Seed * 0x9E3779B97F4A7C15UL + (ulong)(i * o.Votes)),
            },
            TokenHook = o.Budget is int b ? ThinkingBudget.Hook(o.Votes, opens, b, close) : null,
        }).ToList();
        var completions = PolicyEngine.Generate(engine, requests, cancel);
        var questions = new List<EvalQuestion>(problems.Count);
        for (int i = 0; i < problems.Count; i++)
        {
            var samples = completions.Where(c => c.Request == i).OrderBy(c => c.Choice).ToList();
            var verdicts = samples.Select(c => Verifier.Score(task, problems[i], format.GenerationSuffix + c.Text)).ToList();
            var majority = Majority(verdicts);
            bool correct = majority is not null && verdicts.Any(v => v.Correct && Normalise(v.Extracted) == majority);
            questions.Add(new EvalQuestion(problems[i], verdicts, samples.Select(c => c.Ids.Length).ToList(), majority, correct)
            {
                Texts = samples.Select(c => c.Text).ToList(),
            });
        }
        return new TaskEvalReport(task.Name, o, questions, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The most frequent normalised answer (first seen wins a tie), or null when no sample answered.</summary>
    public static string? Majority(IReadOnlyList<Verdict> samples)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var v in samples)
        {
            if (Normalise(v.Extracted) is not { } a) continue;
            if (!counts.TryAdd(a, 1)) counts[a]++;
            else order.Add(a);
        }
        string? best = null;
        foreach (var a in order)
            if (best is null || counts[a] > counts[best]) best = a;
        return best;
    }

    static string? Normalise(string? answer) =>
        answer is null ? null : string.Concat(answer.Where(c => !char.IsWhiteSpace(c))) is { Length: > 0 } s ? s : null;
}
