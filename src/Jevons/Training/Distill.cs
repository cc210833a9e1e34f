using System.Globalization;
using System.Text.Json.Nodes;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Tokenization;
using Jevons.Training.Tasks;

namespace Jevons.Training;

/// <summary>What `jevons train distill` runs.</summary>
public sealed record DistillOptions
{
    /// <summary>The teacher: any model directory or GGUF the engine runs, with its tokenizer (the student shares it).</summary>
    public required string Teacher { get; init; }
    /// <summary>SFT's options for the student (its output directory receives traces.jsonl too).</summary>
    public required SftOptions Sft { get; init; }
    public string StudentPreset { get; init; } = "tiny-r1-qwen2";
    public IReadOnlyList<string> Tasks { get; init; } = ["arithmetic"];
    public Difficulty? Difficulty { get; init; }
    /// <summary>Train-split questions the teacher answers.</summary>
    public int Questions { get; init; } = 2000;
    /// <summary>Completions per question (greedy at 1, else sampled at <see cref="Temperature"/>); every verified one is kept.</summary>
    public int Samples { get; init; } = 1;
    public float Temperature { get; init; } = 0.7f;
    /// <summary>Held-out problems per task for the student's evaluations; 0 = none.</summary>
    public int EvalProblems { get; init; } = 50;
}

/// <summary>
/// R1-style distillation: the teacher writes completions for train-split questions through the batched engine,
/// the <see cref="Verifier"/> keeps the right and well-formed ones (traces.jsonl), and a smaller dense student
/// (a DeepSeek-V3 config with no routed experts: MLA + SwiGLU, the engine runs it as it runs R1) learns them
/// by SFT with loss on the completion. The student shares the teacher's tokenizer and chat format.
/// </summary>
public static class Distill
{
    public static TinyDeepSeek Run(DistillOptions options, TextWriter log, CancellationToken cancel = default)
    {
        var sft = options.Sft;
        int threads = sft.Train.Threads > 0 ? sft.Train.Threads : Environment.ProcessorCount;
        var tokenizerDir = Directory.Exists(options.Teacher) ? options.Teacher : Path.GetDirectoryName(Path.GetFullPath(options.Teacher))!;
        if (!File.Exists(Path.Combine(tokenizerDir, "tokenizer.json")))
            JevonsException.Throw("no tokenizer.json beside the teacher (the student shares it)", options.Teacher);
        var tokenizer = Tokenizer.Load(tokenizerDir);
        if (tokenizer.EosIds.Count == 0) JevonsException.Throw("the teacher's tokenizer has no EOS token", tokenizerDir);
        var format = ChatFormat.For(tokenizer);
        var tasks = options.Tasks.Select(ReasoningTasks.Get).ToList();
        Directory.CreateDirectory(sft.OutputDirectory);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var rng = new TaskRng(sft.Train.Seed);
        var problems = Enumerable.Range(0, options.Questions).Select(i =>
        {
            var task = tasks[tasks.Count == 1 ? 0 : rng.Next(tasks.Count)];
            return (Task: task, Problem: task.Sample(ref rng, Split.Train, options.Difficulty));
        }).ToList();
        var prompts = problems.Select(p => tokenizer.Encode(SftDataset.Prompt(format, p.Problem), addSpecialTokens: false)).ToList();
        List<Rollout> rollouts;
        long teacherActive;
        using (var teacher = LoadedModel.Load(options.Teacher, new ModelOptions { Threads = threads }, loadTokenizer: false))
        {
            teacherActive = teacher.Model.Description.ActiveParameters;
            int context = teacher.Model.Description.ContextLength;
            int maxNew = Math.Min(1000, Math.Min(context, sft.Train.MaxSequence + 1) - prompts.Max(p => p.Length));
            if (maxNew < 1) JevonsException.Throw($"the prompts leave no room for a completion in {Math.Min(context, sft.Train.MaxSequence + 1)} tokens");
            int blocksPerSequence = (prompts.Max(p => p.Length) + maxNew + ModelRunner.DefaultBlockSize - 1) / ModelRunner.DefaultBlockSize + 1;
            using var engine = new InferenceEngine(new ModelRunner(teacher.Model, KvBudget.FromBlocks(64 * blocksPerSequence + 4)), tokenizer,
                new EngineOptions { Scheduler = new SchedulerOptions { MaxSequences = 64 } });
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"distill: teacher {options.Teacher} answering {problems.Count} questions × {options.Samples} (≤ {maxNew} new tokens each)"));
            int every = Math.Max(1, problems.Count / 10);
            void Finished(int done)
            {
                if (done % every != 0 || done == problems.Count) return;
                lock (log)
                    log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"distill: teacher {done}/{problems.Count} questions answered ({clock.Elapsed.TotalSeconds:0} s)"));
            }
            rollouts = PolicyEngine.Generate(engine, prompts.Select((p, i) => new GenerationRequest
            {
                Prompt = p,
                N = options.Samples,
                MaxTokens = maxNew,
                Sampling = new SamplerOptions
                {
                    Temperature = options.Samples == 1 ? 0 : options.Temperature, TopK = 0, TopP = 1, MinP = 0,
                    Seed = unchecked(sft.Train.Seed * 0x9E3779B97F4A7C15UL + (ulong)(i * options.Samples)),
                },
            }).ToList(), cancel, Finished);
        }

        // Keep the verified traces that ended with EOS (so the student learns to stop).
        var data = new List<TrainingExample>();
        var traces = new System.Text.StringBuilder();
        int eos = tokenizer.EosIds[0];
        foreach (var r in rollouts)
        {
            var (task, problem) = problems[r.Request];
            var verdict = Verifier.Score(task, problem, format.GenerationSuffix + r.Text);
            if (!verdict.Correct || !verdict.FormatOk || r.Finish != FinishReason.EndOfSequence || r.Ids.Length == 0 || r.Ids[^1] != eos) continue;
            var ids = prompts[r.Request].Concat(r.Ids).ToArray();
            var mask = new float[ids.Length];
            mask.AsSpan(prompts[r.Request].Length).Fill(1);
            data.Add(new TrainingExample(ids, mask));
            traces.Append(new JsonObject { ["task"] = task.Name, ["question"] = problem.Question, ["completion"] = format.GenerationSuffix + r.Text }.ToJsonString()).Append('\n');
        }
        File.WriteAllText(Path.Combine(sft.OutputDirectory, "traces.jsonl"), traces.ToString());
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"distill: teacher {options.Teacher} ({teacherActive / 1e6:0.00} M active parameters) answered {problems.Count} questions × {options.Samples} in {clock.Elapsed.TotalSeconds:0.0} s ({rollouts.Sum(r => (long)r.Ids.Length) / Math.Max(1e-9, clock.Elapsed.TotalSeconds):0} tok/s); {data.Count} verified traces ({(double)data.Count / Math.Max(1, rollouts.Count):P0}), mean {(data.Count == 0 ? 0 : data.Average(d => d.Ids.Length)):0} tokens → {Path.Combine(sft.OutputDirectory, "traces.jsonl")}"));
        if (data.Count == 0) JevonsException.Throw("the teacher wrote no verified trace: nothing to distill (more --questions, or a better teacher)", options.Teacher);

        var config = TinyDeepSeekConfig.Preset(options.StudentPreset, tokenizer.VocabSize) with
        {
            BosTokenId = tokenizer.BosId ?? 0,
            EosTokenId = eos,
        };
        var probe = new TinyDeepSeek(config, new TrainRandom(0));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"distill: student {options.StudentPreset}: {probe.ParameterCount / 1e6:0.00} M parameters ({(config.RoutedExperts == 0 ? "dense, all active" : "MoE")}), {(double)probe.ParameterCount / teacherActive:0.00} × the teacher's active"));
        string Evaluate(int step, TinyDeepSeek model, Autograd.Tape tape)
        {
            if (options.EvalProblems <= 0) return "no evaluation";
            using var engine = PolicyEngine.Create(model, tokenizer, Path.Combine(sft.OutputDirectory, "eval-export"), threads, 64, model.Config.ContextLength);
            var parts = new List<string>();
            var line = new JsonObject { ["kind"] = "eval", ["step"] = step };
            foreach (var task in tasks)
            {
                var r = TaskEval.Run(engine.Engine, tokenizer, task, new TaskEvalOptions
                {
                    Count = options.EvalProblems, Difficulty = options.Difficulty, Seed = sft.Train.Seed + 1,
                    MaxNewTokens = Math.Min(1000, model.Config.ContextLength - 128),
                }, cancel);
                parts.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{task.Name} test accuracy {r.Accuracy:0.000} ({r.Questions.Count(q => q.MajorityCorrect)}/{r.Questions.Count}), format {r.FormatRate:0.00}"));
                line[task.Name] = r.Accuracy;
            }
            new MetricsLog(sft.OutputDirectory, append: true).Write(line);
            return string.Join("; ", parts);
        }
        var student = Sft.Run(config, data, sft with { TokenizerDirectory = tokenizerDir }, log, Evaluate, cancel);
        var eval = Path.Combine(sft.OutputDirectory, "eval-export");
        if (Directory.Exists(eval)) Directory.Delete(eval, recursive: true);
        return student;
    }
}
