using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Jevons.Tokenization;
using Jevons.Training.Export;
using Jevons.Training.Tasks;

namespace Jevons.Training;

/// <summary>What `jevons train grpo` runs: the starting model, the tasks, the schedule and the outputs.</summary>
public sealed record GrpoRunOptions
{
    /// <summary>A Hugging Face directory a trainer wrote (SFT's out/hf, or a GRPO output's hf/): policy and frozen reference.</summary>
    public required string From { get; init; }
    /// <summary>Receives hf/, model.gguf and metrics.jsonl.</summary>
    public required string OutputDirectory { get; init; }
    public GrpoOptions Grpo { get; init; } = new();
    public int Steps { get; init; } = 100;
    public int QuestionsPerStep { get; init; } = 8;
    public IReadOnlyList<string> Tasks { get; init; } = ["arithmetic"];
    public Difficulty? Difficulty { get; init; }
    /// <summary>Reward for the taught layout on top of 1 for a right answer.</summary>
    public double FormatReward { get; init; } = 0.1;
    public int WarmupSteps { get; init; } = 5;
    public int LogEvery { get; init; } = 1;
    /// <summary>Steps between exports of hf/ + model.gguf; 0 = only at the end.</summary>
    public int CheckpointEvery { get; init; } = 50;
    /// <summary>Steps between held-out evaluations (greedy, batched); 0 = only before and after.</summary>
    public int EvalEvery { get; init; }
    /// <summary>Test problems per task for each evaluation; 0 = none.</summary>
    public int EvalProblems { get; init; } = 50;
}

/// <summary>
/// The GRPO pipeline behind `jevons train grpo`: load a trained model, then per step draw questions from the
/// tasks' train split, let <see cref="GrpoTrainer"/> sample, reward with the <see cref="Verifier"/> and update,
/// log a progress line and metrics.jsonl, evaluate on the test split, export like SFT.
/// </summary>
public static class Grpo
{
    public static TinyDeepSeek Run(GrpoRunOptions options, TextWriter log, CancellationToken cancel = default)
    {
        var g = options.Grpo;
        var from = options.From;
        if (!File.Exists(Path.Combine(from, "tokenizer.json"))) JevonsException.Throw("no tokenizer.json: --from wants a model directory a trainer wrote (e.g. SFT's out/hf)", from);
        var tokenizer = Tokenizer.Load(from);
        var format = ChatFormat.For(tokenizer);
        var policy = TinyDeepSeekExport.ReadHuggingFace(from);
        var reference = g.Beta != 0 ? TinyDeepSeekExport.ReadHuggingFace(from) : null;
        var tasks = options.Tasks.Select(ReasoningTasks.Get).ToList();
        var output = options.OutputDirectory;
        Directory.CreateDirectory(output);
        var metrics = new MetricsLog(output, append: false);
        var engineDir = Path.Combine(output, "policy-engine");
        using var trainer = new GrpoTrainer(policy, reference, tokenizer, g, engineDir);
        var c = policy.Config;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"grpo: {from} ({policy.ParameterCount / 1e6:0.00} M parameters, {c.Layers} layers, vocab {c.VocabSize}); {options.Steps} steps of {options.QuestionsPerStep} questions × G {g.Group} from {string.Join(", ", options.Tasks)}; β {g.Beta}, ε {g.Clip}{(g.StepReward > 0 ? $", step reward λ {g.StepReward}" : "")}, lr {g.LearningRate:0.0e0}, μ {g.Updates}, temperature {g.Temperature}, ≤ {(g.MaxNewTokens > 0 ? g.MaxNewTokens.ToString(CultureInfo.InvariantCulture) : "context")} new tokens, seed {g.Seed}"));

        void Evaluate(int step)
        {
            if (options.EvalProblems <= 0) return;
            using var engine = PolicyEngine.Create(policy, tokenizer, engineDir, trainer.Options.Threads > 0 ? trainer.Options.Threads : Environment.ProcessorCount,
                Math.Min(64, options.EvalProblems), c.ContextLength);
            var parts = new List<string>();
            var line = new JsonObject { ["kind"] = "eval", ["step"] = step };
            foreach (var task in tasks)
            {
                var r = TaskEval.Run(engine.Engine, tokenizer, task, new TaskEvalOptions
                {
                    Count = options.EvalProblems, Difficulty = options.Difficulty, MaxNewTokens = Math.Min(1000, c.ContextLength - 128), Seed = g.Seed + 1,
                }, cancel);
                parts.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{task.Name} test accuracy {r.Accuracy:0.000} ({r.Questions.Count(q => q.MajorityCorrect)}/{r.Questions.Count}), format {r.FormatRate:0.00}, {r.TokensPerQuestion:0} tokens"));
                line[task.Name] = r.Accuracy;
            }
            metrics.Write(line);
            log.WriteLine($"eval  {step,5}: {string.Join("; ", parts)}");
        }

        void Export()
        {
            TinyDeepSeekExport.WriteHuggingFace(policy, Path.Combine(output, "hf"), from);
            TinyDeepSeekExport.WriteGguf(policy, Path.Combine(output, "model.gguf"), from);
        }

        Evaluate(0);
        var rng = new TaskRng(g.Seed);
        var clock = Stopwatch.StartNew();
        for (int step = 0; step < options.Steps && !cancel.IsCancellationRequested; step++)
        {
            var problems = new List<(IReasoningTask Task, Problem Problem)>();
            for (int q = 0; q < options.QuestionsPerStep; q++)
            {
                var task = tasks[tasks.Count == 1 ? 0 : rng.Next(tasks.Count)];
                problems.Add((task, task.Sample(ref rng, Split.Train, options.Difficulty)));
            }
            var prompts = problems.Select(p => tokenizer.Encode(SftDataset.Prompt(format, p.Problem), addSpecialTokens: false)).ToList();
            Reward Score(int question, Rollout completion)
            {
                var (task, problem) = problems[question];
                var reward = Reward.Of(Verifier.Score(task, problem, format.GenerationSuffix + completion.Text), options.FormatReward);
                return g.StepReward > 0 ? reward with { Steps = StepCheck.Steps(completion.Text) } : reward;
            }
            float lr = LearningRateSchedule.At(step, options.Steps, options.WarmupSteps, g.LearningRate, g.LearningRate);
            var r = trainer.TrainStep(prompts, Score, lr, cancel);
            var entry = new JsonObject
            {
                ["kind"] = "step", ["step"] = r.Step, ["reward"] = r.Reward, ["accuracy"] = r.Accuracy, ["format"] = r.FormatRate,
                ["length"] = r.MeanLength, ["kl"] = r.Kl, ["clip"] = r.ClipFraction, ["ratio"] = r.MeanRatio, ["logprob_error"] = r.LogprobError,
                ["groups"] = r.TrainedGroups, ["lr"] = lr, ["grad_norm"] = r.GradientNorm,
                ["gen_tok_s"] = r.GenerateTokensPerSecond, ["train_tok_s"] = r.TrainTokensPerSecond, ["load"] = MetricsLog.LoadBalance(r.ExpertLoad),
                ["export_seconds"] = r.ExportSeconds, ["seconds"] = clock.Elapsed.TotalSeconds,
            };
            if (!double.IsNaN(r.StepAccuracy)) entry["step_accuracy"] = r.StepAccuracy;
            metrics.Write(entry);
            if (r.Step % options.LogEvery == 0 || r.Step == options.Steps || r.Step == 1)
            {
                double perStep = clock.Elapsed.TotalSeconds / r.Step;
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"step {r.Step,5}/{options.Steps} | reward {r.Reward:0.000} | acc {r.Accuracy:0.000} | format {r.FormatRate:0.00}{(double.IsNaN(r.StepAccuracy) ? "" : $" | steps {r.StepAccuracy:0.000}")} | len {r.MeanLength:0} | kl {r.Kl:0.0000} | clip {r.ClipFraction:0.000} | groups {r.TrainedGroups}/{r.Groups} | Δlogp {r.LogprobError:0.0e0} | lr {lr:0.0e0} | |g| {r.GradientNorm:0.00} | gen {r.GenerateTokensPerSecond:0} tok/s ({r.GenerateSeconds:0.0} s, export {r.ExportSeconds:0.00} s) | train {r.TrainTokensPerSecond:0} tok/s ({r.TrainSeconds:0.0} s) | ETA {Eta(perStep * (options.Steps - r.Step))}"));
            }
            if (options.EvalEvery > 0 && r.Step % options.EvalEvery == 0 && r.Step != options.Steps) Evaluate(r.Step);
            if (options.CheckpointEvery > 0 && r.Step % options.CheckpointEvery == 0) Export();
        }
        Export();
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"grpo: {trainer.Step} steps in {clock.Elapsed.TotalSeconds:0.0} s; wrote {Path.Combine(output, "hf")}, {Path.Combine(output, "model.gguf")}, {metrics.Path}"));
        Evaluate(trainer.Step);
        if (Directory.Exists(engineDir)) Directory.Delete(engineDir, recursive: true);
        return policy;
    }

    static string Eta(double seconds) =>
        seconds >= 3600 ? $"{(int)(seconds / 3600)}h{(int)(seconds % 3600 / 60):00}m"
        : seconds >= 60 ? $"{(int)(seconds / 60)}m{(int)(seconds % 60):00}s"
        : $"{seconds:0}s";
}
