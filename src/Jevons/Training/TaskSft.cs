using System.Globalization;
using Jevons.Models;
using Jevons.Tokenization;
using Jevons.Training.Export;
using Jevons.Training.Tasks;

namespace Jevons.Training;

/// <summary>What <see cref="TaskSft.Run"/> trains on and how it is scored.</summary>
public sealed record TaskSftOptions
{
    /// <summary>Task names (Training/Tasks registry): "arithmetic", "countdown".</summary>
    public IReadOnlyList<string> Tasks { get; init; } = ["arithmetic"];
    public Difficulty? Difficulty { get; init; }
    public int TrainExamples { get; init; } = 20000;
    public int VocabSize { get; init; } = 1024;
    /// <summary>Test problems per task for each evaluation.</summary>
    public int EvalProblems { get; init; } = 50;
    public int MaxNewTokens { get; init; } = 1000;
    /// <summary>
    /// Teach only the layout, not the reasoning: every completion is an empty think block and the boxed answer
    /// (<see cref="AnswerOnlyTask"/>) — the starting point of the R1-Zero ablation, where GRPO alone has to find the reasoning.
    /// </summary>
    public bool AnswerOnly { get; init; }
    /// <summary>
    /// Extra sampling weight, beside each task's full mix (weight 1), for that task's hard problems alone: with 0.33,
    /// arithmetic's three-number expressions are (0.25 + 0.33) / 1.33 = 44% of the training examples instead of 25%.
    /// The test split is always scored on the full mix. Ignored when <see cref="Difficulty"/> is set.
    /// </summary>
    public double HardWeight { get; init; }
}

/// <summary>
/// The built-in pipeline behind `jevons train sft` with no data given: train a BPE tokenizer on the task
/// corpus, generate worked-solution SFT examples (loss on completions), train, export, and score held-out
/// test problems with the verifier, generating greedily through the engine from the exported model.
/// </summary>
public static class TaskSft
{
    public static TinyDeepSeek Run(string preset, SftOptions sft, TaskSftOptions tasks, TextWriter log, CancellationToken cancel = default,
        Func<TinyDeepSeekConfig, TinyDeepSeekConfig>? adjust = null)
    {
        var taskList = tasks.Tasks.Select(ReasoningTasks.Get).ToList();
        var tokenizerDir = Path.Combine(sft.OutputDirectory, "tokenizer");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var tokenizer = File.Exists(Path.Combine(tokenizerDir, "tokenizer.json"))
            ? Tokenizer.Load(tokenizerDir)
            : TaskTokenizer.Train(tokenizerDir, taskList, tasks.VocabSize, seed: sft.Train.Seed, modelMaxLength: TinyDeepSeekConfig.Preset(preset, 1).ContextLength);
        var format = ChatFormat.For(tokenizer);
        var mix = Mix(taskList, tasks);
        var data = SftDataset.Build(tokenizer, mix, tasks.TrainExamples, sft.Train.Seed, sft.Train.MaxSequence + 1, format)
            .Select(e => TrainingExample.FromBools(e.Ids, e.LossMask)).ToList();
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train: tokenizer of {tokenizer.VocabSize} ids in {tokenizerDir}; {data.Count} examples of {string.Join(", ", tasks.Tasks)} (mean {data.Average(d => d.Ids.Length):0} tokens) in {watch.Elapsed.TotalSeconds:0.0} s"));

        var config = TinyDeepSeekConfig.Preset(preset, tokenizer.VocabSize) with
        {
            BosTokenId = tokenizer.BosId ?? 0,
            EosTokenId = tokenizer.EosIds[0],
        };
        if (adjust is not null) config = adjust(config);
        string Evaluate(int step, TinyDeepSeek model, Autograd.Tape tape)
        {
            var dir = Path.Combine(sft.OutputDirectory, "eval-export");
            TinyDeepSeekExport.WriteHuggingFace(model, dir, tokenizerDir);
            using var loaded = LoadedModel.Load(dir, new ModelOptions { Threads = sft.Train.Threads > 0 ? sft.Train.Threads : Environment.ProcessorCount });
            var parts = new List<string>();
            var line = new System.Text.Json.Nodes.JsonObject { ["kind"] = "eval", ["step"] = step };
            foreach (var task in taskList)
            {
                var result = SftDataset.Evaluate(task, prompt => Greedy(loaded, prompt, tasks.MaxNewTokens), tasks.EvalProblems, sft.Train.Seed + 1, format, tasks.Difficulty);
                parts.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{task.Name} test accuracy {result.Accuracy:0.000} ({result.Correct}/{result.Count}), format {result.FormatRate:0.00}"));
                line[task.Name] = result.Accuracy;
            }
            new MetricsLog(sft.OutputDirectory, append: true).Write(line);
            return string.Join("; ", parts);
        }
        return Sft.Run(config, data, sft with { TokenizerDirectory = tokenizerDir }, log, Evaluate, cancel);
    }

    /// <summary>
    /// The training mix: each task's full mix at weight 1 (at <see cref="TaskSftOptions.Difficulty"/> when set), and beside
    /// it, when <see cref="TaskSftOptions.HardWeight"/> is positive and no difficulty is set, the same task's hard problems alone.
    /// </summary>
    public static List<TaskMix> Mix(IReadOnlyList<IReasoningTask> taskList, TaskSftOptions tasks)
    {
        if (!(tasks.HardWeight >= 0)) throw new JevonsException($"the hard problems' extra weight must be 0 or more, got {tasks.HardWeight}");
        var mix = new List<TaskMix>();
        foreach (var t in taskList)
        {
            var task = tasks.AnswerOnly ? new AnswerOnlyTask(t) : t;
            mix.Add(new TaskMix(task, 1, tasks.Difficulty));
            if (tasks.HardWeight > 0 && tasks.Difficulty is null) mix.Add(new TaskMix(task, tasks.HardWeight, Difficulty.Hard));
        }
        return mix;
    }

    /// <summary>Greedy decoding through the engine (latent KV cache, one token per step) up to EOS: the text after the prompt.</summary>
    public static string Greedy(LoadedModel loaded, string prompt, int maxNewTokens)
    {
        var tokenizer = loaded.RequireTokenizer();
        var model = loaded.Model;
        var ids = tokenizer.Encode(prompt, addSpecialTokens: false);
        int vocab = model.Description.VocabSize;
        var state = model.CreateState(ids.Length + maxNewTokens);
        var logits = new float[vocab];
        model.Forward(state, ids, logits);
        var output = new List<int>();
        for (int n = 0; n < maxNewTokens; n++)
        {
            int best = 0;
            for (int i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
            if (tokenizer.EosIds.Contains(best)) break;
            output.Add(best);
            if (n + 1 < maxNewTokens) model.Forward(state, [best], logits);
        }
        return tokenizer.Decode(output.ToArray(), skipSpecialTokens: true);
    }
}
