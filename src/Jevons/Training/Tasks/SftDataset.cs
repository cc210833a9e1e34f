using Jevons.Tokenization;

namespace Jevons.Training.Tasks;

/// <summary>One supervised example: prompt and completion ids, and which positions carry loss.</summary>
/// <param name="Ids">Prompt ids (BOS, &lt;｜User｜&gt;, question, &lt;｜Assistant｜&gt;, the format's generation suffix) then completion ids ending in EOS.</param>
/// <param name="LossMask">True on the completion tokens (EOS included), false on the prompt.</param>
/// <param name="PromptLength">Number of prompt ids (the first true index of <paramref name="LossMask"/>).</param>
public sealed record SftExample(string Task, int[] Ids, bool[] LossMask, int PromptLength);

/// <summary>A task in a mix, with its sampling weight and optional difficulty.</summary>
public sealed record TaskMix(IReasoningTask Task, double Weight = 1, Difficulty? Difficulty = null);

/// <summary>A problem, what the model wrote for it, and the score.</summary>
public sealed record EvalItem(Problem Problem, string Prompt, string Completion, Verdict Verdict);

/// <summary>Accuracy and format rate of a generator over test problems.</summary>
public sealed record EvalResult(string Task, IReadOnlyList<EvalItem> Items)
{
    public int Count => Items.Count;
    public int Correct => Items.Count(i => i.Verdict.Correct);
    public int FormatOk => Items.Count(i => i.Verdict.FormatOk);
    public double Accuracy => Count == 0 ? 0 : (double)Correct / Count;
    public double FormatRate => Count == 0 ? 0 : (double)FormatOk / Count;
}

/// <summary>
/// Turns task problems into SFT examples and scores generators on test problems. The prompt is
/// the chat format's rendering of one user message with the generation prompt (for the R1
/// format: BOS, &lt;｜User｜&gt;question&lt;｜Assistant｜&gt;&lt;think&gt;\n), tokenized on its own exactly as
/// inference tokenizes it; the completion is the task's worked solution without the part the
/// prompt already holds (the pre-filled "&lt;think&gt;\n"), followed by EOS.
/// </summary>
public static class SftDataset
{
    public static string Prompt(ChatFormat format, Problem problem) =>
        format.Render([new ChatMessage("user", problem.Question)], addGenerationPrompt: true);

    /// <summary>The text the model should write after <see cref="Prompt"/> (before EOS).</summary>
    public static string Target(ChatFormat format, IReasoningTask task, Problem problem)
    {
        var completion = task.Solve(problem);
        var prefilled = format.GenerationSuffix;
        return prefilled.Length > 0 && completion.StartsWith(prefilled, StringComparison.Ordinal) ? completion[prefilled.Length..] : completion;
    }

    public static SftExample Encode(Tokenizer tokenizer, ChatFormat format, IReasoningTask task, Problem problem)
    {
        if (tokenizer.EosIds.Count == 0) throw new JevonsException("the tokenizer has no EOS token", tokenizer.Source);
        var prompt = tokenizer.Encode(Prompt(format, problem), addSpecialTokens: false);
        var completion = tokenizer.Encode(Target(format, task, problem), addSpecialTokens: false);
        var ids = new int[prompt.Length + completion.Length + 1];
        prompt.CopyTo(ids, 0);
        completion.CopyTo(ids, prompt.Length);
        ids[^1] = tokenizer.EosIds[0];
        var mask = new bool[ids.Length];
        mask.AsSpan(prompt.Length).Fill(true);
        return new SftExample(task.Name, ids, mask, prompt.Length);
    }

    /// <summary>
    /// An endless, seed-determined stream of training examples: each draws a task by weight, then
    /// a train-split problem; examples longer than <paramref name="maxLength"/> ids are skipped.
    /// </summary>
    public static IEnumerable<SftExample> Stream(Tokenizer tokenizer, IReadOnlyList<TaskMix> mix, ulong seed, int maxLength,
        Split split = Split.Train, ChatFormat? format = null)
    {
        if (mix.Count == 0 || mix.Any(m => !(m.Weight >= 0)) || mix.Sum(m => m.Weight) <= 0)
            throw new JevonsException("a task mix needs at least one task and positive weights");
        format ??= ChatFormat.For(tokenizer);
        double total = mix.Sum(m => m.Weight);
        var rng = new TaskRng(seed);
        int tooLong = 0;
        while (true)
        {
            double u = rng.NextDouble() * total;
            int k = 0;
            while (k < mix.Count - 1 && (u -= mix[k].Weight) >= 0) k++;
            var m = mix[k];
            var problem = m.Task.Sample(ref rng, split, m.Difficulty);
            var example = Encode(tokenizer, format, m.Task, problem);
            if (example.Ids.Length > maxLength)
            {
                if (++tooLong == 10_000)
                    throw new JevonsException($"10000 examples in a row are longer than {maxLength} tokens: raise the maximum length or pick easier tasks");
                continue;
            }
            tooLong = 0;
            yield return example;
        }
    }

    /// <summary>The first <paramref name="count"/> examples of <see cref="Stream"/>.</summary>
    public static List<SftExample> Build(Tokenizer tokenizer, IReadOnlyList<TaskMix> mix, int count, ulong seed, int maxLength,
        ChatFormat? format = null) =>
        Stream(tokenizer, mix, seed, maxLength, Split.Train, format).Take(count).ToList();

    /// <summary>
    /// Runs <paramref name="count"/> test problems through a generator (prompt text → the text
    /// generated after it, e.g. greedy decoding up to EOS) and scores each; the format's
    /// pre-filled generation suffix is put back in front of the generated text before scoring.
    /// </summary>
    public static EvalResult Evaluate(IReasoningTask task, Func<string, string> generate, int count, ulong seed, ChatFormat format,
        Difficulty? difficulty = null)
    {
        var rng = new TaskRng(seed);
        var items = new List<EvalItem>(count);
        for (int i = 0; i < count; i++)
        {
            var problem = task.Sample(ref rng, Split.Test, difficulty);
            var prompt = Prompt(format, problem);
            var completion = generate(prompt);
            items.Add(new EvalItem(problem, prompt, completion, Verifier.Score(task, problem, format.GenerationSuffix + completion)));
        }
        return new EvalResult(task.Name, items);
    }

    /// <summary>Text for training a tokenizer on the tasks: questions and worked completions of train problems.</summary>
    public static IEnumerable<string> Corpus(IEnumerable<IReasoningTask> tasks, int perTask, ulong seed)
    {
        foreach (var task in tasks)
        {
            var rng = TaskRng.ForStream(seed, (ulong)task.Name.Length * 0x9E37UL + task.Name[0]);
            for (int i = 0; i < perTask; i++)
            {
                var p = task.Sample(ref rng, Split.Train);
                yield return p.Question;
                yield return task.Solve(p);
            }
        }
    }
}

/// <summary>The tokenizer for the task models: byte-level BPE trained on the task corpus, written in the Hugging Face layout.</summary>
public static class TaskTokenizer
{
    /// <summary>Trains on <paramref name="samplesPerTask"/> train problems of each task, writes tokenizer.json + tokenizer_config.json into the directory, loads it back.</summary>
    public static Tokenizer Train(string directory, IEnumerable<IReasoningTask>? tasks = null, int vocabSize = 1024, int samplesPerTask = 5000,
        ulong seed = 0, int modelMaxLength = 512)
    {
        var bpe = BpeTrainer.Train(SftDataset.Corpus(tasks ?? ReasoningTasks.All, samplesPerTask, seed),
            new BpeTrainerOptions { VocabSize = vocabSize, ModelMaxLength = modelMaxLength });
        return bpe.SaveAndLoad(directory);
    }
}
