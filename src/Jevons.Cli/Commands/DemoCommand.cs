using System.Diagnostics;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Tokenization;
using Jevons.Training.Tasks;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons demo`: asks the embedded default model (models/tiny-r1, or --model) a few held-out questions of a
/// task at once through the batched engine, greedily, and prints each reasoning, answer and the verifier's
/// verdict. With --random (or when no default model is there) it synthesizes the tiny random-weight preset
/// once (models/tiny-q8_0.gguf, reused while it loads) and generates from it, saying that its text is noise.
/// </summary>
sealed class DemoCommand : ICommand
{
    public const string Preset = "tiny";
    public const string Disclosure =
        "demo: running a tiny random-weight qwen2-architecture model synthesized by `jevons synth` - its text is meaningless; " +
        "real checkpoints: jevons run --model PATH \"prompt\"";

    public CommandSpec Spec { get; } = new("demo", "ask the embedded model held-out arithmetic or Countdown questions (reasoning, answer, verdict); --random: a random-weight synth model",
    [
        Common.Model,
        new("--task", "arithmetic or countdown (default arithmetic)", "NAME"),
        new("--count", "questions asked at once (default 4)", "N"),
        new("--seed", "which held-out questions (default: a new draw each run; printed); --random: the sampling seed (default 42)", "S"),
        new("--n-predict", "most tokens per answer (default 1024; --random: 64)", "N", "-n"),
        new("--random", "run the random-weight synth model instead (no trained weights needed)"),
        new("--prompt", "--random: prompt text (default \"The answer to the question is\")", "TEXT"),
        new("--dir", "--random: where the synth model is kept (default: models/ at the repository root)", "DIR"),
        Common.Threads,
        Common.Context,
        .. Common.Engine,
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        if (a.Has("--random") || (a.Get("--model") is null && Common.DefaultModel() is null))
        {
            if (!a.Has("--random")) c.Error.WriteLine($"demo: no embedded default model ({Common.DefaultModelName}) under models/; falling back to the random-weight model");
            return RunRandom(a, c);
        }
        return RunTrained(a, c);
    }

    int RunTrained(ParsedArgs a, CliContext c)
    {
        var task = ReasoningTasks.Get(a.Get("--task") ?? "arithmetic");
        int count = a.GetInt("--count", 4, 1, 64);
        int n = a.GetInt("--n-predict", 1024, 1, 1 << 20);
        ulong seed = a.GetSeed("--seed") ?? (ulong)Environment.TickCount64;
        using var loaded = Common.Load(a, c);
        var tokenizer = loaded.RequireTokenizer();
        var format = ChatPrompt.For(tokenizer);
        if (format.Notice is not null) c.Error.WriteLine(format.Notice);
        var rng = new TaskRng(seed);
        var problems = Enumerable.Range(0, count).Select(_ => task.Sample(ref rng, Split.Test)).ToList();
        var prompts = problems.Select(p => format.Render([new ChatMessage("user", p.Question)], addGenerationPrompt: true)).ToList();
        var ids = prompts.Select(p => tokenizer.Encode(p, addSpecialTokens: false)).ToList();
        int ctx = Common.ContextFor(a, loaded.Model, ids.Max(x => x.Length) + n);
        int longest = ids.Max(x => x.Length);
        if (longest >= ctx) throw new JevonsException($"a question has {longest} tokens; the context holds {ctx}");
        c.Error.WriteLine($"demo: {count} held-out {task.Name} questions (seed {seed}) to {loaded.Model.Description.Name}, all at once, greedy");

        using var engine = Common.CreateEngine(a, c, loaded, ctx, sequences: count);
        var texts = new string[count];
        int generated = 0;
        var watch = Stopwatch.StartNew();
        var runs = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            var request = new GenerationRequest
            {
                Prompt = ids[i],
                MaxTokens = Math.Max(1, Math.Min(n, ctx - ids[i].Length)),
                Sampling = new SamplerOptions { Temperature = 0 },
            };
            var text = new System.Text.StringBuilder();
            await foreach (var e in engine.GenerateAsync(request, c.Cancel).ConfigureAwait(false))
            {
                text.Append(e.Text);
                Interlocked.Increment(ref generated);
            }
            texts[i] = text.ToString();
        })).ToArray();
        Task.WaitAll(runs);
        double seconds = watch.Elapsed.TotalSeconds;

        int correct = 0;
        for (int i = 0; i < count; i++)
        {
            // The template may open the think block itself ("<｜Assistant｜><think>\n"): put it back for the reader and the verifier.
            string prefill = prompts[i].EndsWith("<think>\n", StringComparison.Ordinal) ? "<think>\n" : "";
            var verdict = Verifier.Score(task, problems[i], prefill + texts[i]);
            if (verdict.Correct) correct++;
            c.Out.WriteLine($"── {i + 1}. {problems[i].Question}");
            c.Out.WriteLine((prefill + texts[i]).TrimEnd());
            c.Out.WriteLine(verdict.Correct
                ? $"── correct{(verdict.FormatOk ? "" : $" (format: {verdict.Reason})")}"
                : $"── wrong: {verdict.Reason}");
            c.Out.WriteLine();
        }
        c.Out.WriteLine($"demo: {correct}/{count} correct");
        c.Error.WriteLine($"demo: {generated} tokens in {seconds:F2} s ({generated / Math.Max(seconds, 1e-9):F0} tok/s over {count} concurrent sequences)");
        return 0;
    }

    static int RunRandom(ParsedArgs a, CliContext c)
    {
        int n = a.GetInt("--n-predict", 64, 1, 4096);
        ulong seed = a.GetSeed("--seed") ?? 42;
        string prompt = a.Get("--prompt") ?? "The answer to the question is";
        int threads = a.GetInt("--threads", Environment.ProcessorCount, 1, 1024);
        string dir = a.Get("--dir") ?? DefaultDirectory();
        string path = Path.Combine(dir, $"{Preset}-q8_0.gguf");

        c.Error.WriteLine(Disclosure);
        var loaded = TryLoad(path, threads);
        if (loaded is null)
        {
            SynthCommand.EnsureWritable(dir);
            SynthCommand.Write(Synthesis.Create(Preset), SynthFormat.Gguf, DType.Q8_0, path, threads, c);
            loaded = LoadedModel.Load(path, new ModelOptions { Threads = threads });
        }
        else c.Error.WriteLine($"demo: reusing {path}");

        using (loaded)
        {
            var tokenizer = loaded.RequireTokenizer();
            var model = loaded.Model;
            var ids = tokenizer.Encode(prompt, addSpecialTokens: true);
            var state = model.CreateState(ids.Length + n);
            var options = new GenerationOptions { MaxTokens = n, IgnoreEos = true, Sampling = new SamplerOptions { Seed = seed } };
            var stats = new GenerationStats();
            var watch = Stopwatch.StartNew();
            c.Out.Write(prompt);
            foreach (var token in new Generator(model, tokenizer).Generate(state, ids, options, stats, c.Cancel))
            {
                c.Out.Write(token.Text);
                c.Out.Flush();
            }
            c.Out.WriteLine();
            c.Error.WriteLine($"demo: prompt {stats.PromptTokens} tokens ({stats.PromptTokensPerSecond:F0} tok/s), " +
                $"generated {stats.GeneratedTokens} tokens at {stats.GenerationTokensPerSecond:F0} tok/s on {threads} thread(s), {watch.Elapsed.TotalSeconds:F2} s");
        }
        return 0;
    }

    /// <summary>The demo model when it exists and loads with its tokenizer; null means synthesize it.</summary>
    static LoadedModel? TryLoad(string path, int threads)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var loaded = LoadedModel.Load(path, new ModelOptions { Threads = threads });
            if (loaded.Tokenizer is not null && loaded.Model.Description.Name == $"jevons-synth-{Preset}") return loaded;
            loaded.Dispose();
        }
        catch (JevonsException) { }
        return null;
    }

    /// <summary>models/ beside Jevons.sln, looked for above the CLI's own files, then above the working directory.</summary>
    static string DefaultDirectory() => Common.ModelsDirectory();
}
