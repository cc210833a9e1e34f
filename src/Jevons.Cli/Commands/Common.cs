using Jevons.Training.Tasks;
using System.Diagnostics;
using Jevons.Inference;
using Jevons.Models;

namespace Jevons.Cli.Commands;

/// <summary>Options and steps several commands share.</summary>
static class Common
{
    public static readonly OptionSpec Model = new("--model", "model: a .gguf file, or a Hugging Face directory (config.json + *.safetensors); default: the embedded models/tiny-r1", "PATH", "-m");
    public static readonly OptionSpec Threads = new("--threads", "worker threads (default: all cores)", "N", "-t");
    public static readonly OptionSpec Context = new("--ctx-size", "context (KV cache) length in tokens (default: prompt + generation, capped by the model)", "N", "-c");

    public static readonly OptionSpec[] Sampling =
    [
        new("--temperature", "sampling temperature; 0 = greedy (default 0.8)", "T"),
        new("--top-k", "top-k sampling, 0 = off (default 40)", "K"),
        new("--top-p", "top-p (nucleus) sampling, 1 = off (default 0.95)", "P"),
        new("--min-p", "min-p sampling, 0 = off (default 0.05)", "P"),
        new("--repeat-penalty", "repetition penalty, 1 = off (default 1)", "R"),
        new("--presence-penalty", "presence penalty (default 0)", "P"),
        new("--frequency-penalty", "frequency penalty (default 0)", "F"),
        new("--repeat-last-n", "tokens the penalties look back at, -1 = all (default 64)", "N"),
        new("--seed", "random seed: same seed, same output (default: random)", "S"),
    ];

    /// <summary>The engine's KV cache and scheduling options (run, chat, bench).</summary>
    public static readonly OptionSpec[] Engine =
    [
        new("--kv-type", "KV cache element type: f32, f16 or bf16 (default f32)", "TYPE"),
        new("--kv-budget", "KV cache memory: bytes (2GiB, 512MiB) or blocks of 16 tokens (4096blocks); default: the context", "SIZE"),
        new("--max-batch-tokens", "most tokens one engine step evaluates: the prefill chunk budget (default 512)", "N"),
        new("--cache-dir", "keep full prefix-cache blocks in this directory, reused across runs (bounded to 4 GiB)", "DIR"),
    ];

    /// <summary>--difficulty easy|medium|hard, or null (the task's full mix).</summary>
    public static Difficulty? Difficulty(ParsedArgs a, string command) => a.Get("--difficulty") switch
    {
        null => null,
        "easy" => Jevons.Training.Tasks.Difficulty.Easy,
        "medium" => Jevons.Training.Tasks.Difficulty.Medium,
        "hard" => Jevons.Training.Tasks.Difficulty.Hard,
        var d => throw new JevonsException($"jevons {command}: --difficulty '{d}': expected easy, medium or hard"),
    };

    public static KvType KvType(ParsedArgs a) => a.Get("--kv-type") switch
    {
        null or "f32" => Jevons.Models.KvType.F32,
        "f16" => Jevons.Models.KvType.F16,
        "bf16" => Jevons.Models.KvType.BF16,
        var other => throw new JevonsException($"--kv-type '{other}': expected f32, f16 or bf16"),
    };

    /// <summary>
    /// The engine over <paramref name="model"/>: a paged KV cache of --kv-budget (default: room for
    /// <paramref name="sequences"/> sequences of <paramref name="contextLength"/> tokens), --max-batch-tokens,
    /// --cache-dir. Warnings (a rejected cache file) go to stderr.
    /// </summary>
    public static InferenceEngine CreateEngine(ParsedArgs a, CliContext c, LoadedModel loaded, int contextLength, int sequences = 1)
    {
        var type = KvType(a);
        var budget = a.Get("--kv-budget") is string text
            ? KvBudget.Parse(text)
            : KvBudget.FromBlocks(sequences * ((contextLength + ModelRunner.DefaultBlockSize - 1) / ModelRunner.DefaultBlockSize) + 1);
        var runner = new ModelRunner(loaded.Model, budget, type, ModelRunner.DefaultBlockSize, contextLength);
        var options = new EngineOptions
        {
            Scheduler = new SchedulerOptions { MaxBatchTokens = a.GetInt("--max-batch-tokens", 512, 1), MaxSequences = Math.Max(64, sequences) },
            CacheDirectory = a.Get("--cache-dir"),
            Log = c.Error,
        };
        return new InferenceEngine(runner, loaded.Tokenizer, options);
    }

    /// <summary>Runs an event stream to its end on this thread's behalf (the CLI is synchronous).</summary>
    public static void Consume(IAsyncEnumerable<TokenEvent> events, Action<TokenEvent> each) =>
        Task.Run(async () =>
        {
            await foreach (var e in events.ConfigureAwait(false)) each(e);
        }).GetAwaiter().GetResult();

    public static ModelOptions ModelOptions(ParsedArgs a) =>
        new() { Threads = a.GetInt("--threads", Environment.ProcessorCount, 1, 1024) };

    public static SamplerOptions SamplerOptions(ParsedArgs a)
    {
        var d = new SamplerOptions();
        var options = new SamplerOptions
        {
            Temperature = a.GetFloat("--temperature", d.Temperature),
            TopK = a.GetInt("--top-k", d.TopK),
            TopP = a.GetFloat("--top-p", d.TopP),
            MinP = a.GetFloat("--min-p", d.MinP),
            RepetitionPenalty = a.GetFloat("--repeat-penalty", d.RepetitionPenalty),
            PresencePenalty = a.GetFloat("--presence-penalty", d.PresencePenalty),
            FrequencyPenalty = a.GetFloat("--frequency-penalty", d.FrequencyPenalty),
            PenaltyLastN = a.GetInt("--repeat-last-n", d.PenaltyLastN, -1),
            Seed = a.GetSeed("--seed") ?? (ulong)Random.Shared.NextInt64(),
        };
        options.Validate();
        return options;
    }

    /// <summary>Loads a model, telling the user what and how long on stderr.</summary>
    public static LoadedModel Load(ParsedArgs a, CliContext c, bool tokenizer = true, string? path = null)
    {
        path ??= ModelPath(a);
        var watch = Stopwatch.StartNew();
        c.Error.WriteLine($"loading {path} ...");
        var options = ModelOptions(a);
        var loaded = Terminal.ErrorIsInteractive(c)
            ? Terminal.WithSpinner("loading", () => LoadedModel.Load(path, options, tokenizer))
            : LoadedModel.Load(path, options, tokenizer);
        var d = loaded.Model.Description;
        c.Error.WriteLine($"loaded {d.Architecture} {(d.Name.Length > 0 ? "'" + d.Name + "' " : "")}" +
            $"({Format.Count(d.TotalParameters)} parameters, {Format.Bytes(d.WeightBytes)}) in {watch.Elapsed.TotalSeconds:F1} s");
        return loaded;
    }

    /// <summary>--model, else the embedded default model, else a one-line error saying neither is there.</summary>
    public static string ModelPath(ParsedArgs a) => a.Get("--model") ?? DefaultModel()
        ?? throw new JevonsException($"jevons {a.Command.Name}: option '--model' is required: no embedded default model ({DefaultModelName}) was found under models/ at the repository root");

    /// <summary>The embedded default model's folder name under models/ (HF safetensors + tokenizer + template).</summary>
    public const string DefaultModelName = "tiny-r1";

    /// <summary>
    /// models/tiny-r1 at the repository root (found from the CLI's build folder or the working directory),
    /// used by run, chat and bench when no --model is given; null when it is not there.
    /// </summary>
    public static string? DefaultModel()
    {
        var dir = Path.Combine(ModelsDirectory(), DefaultModelName);
        return File.Exists(Path.Combine(dir, "config.json")) ? dir : null;
    }

    /// <summary>models/ under the repository root (the folder holding Jevons.sln), else under the working directory.</summary>
    public static string ModelsDirectory()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Jevons.sln")))
                    return Path.Combine(d.FullName, "models");
        return Path.Combine(Environment.CurrentDirectory, "models");
    }

    /// <summary>Context length: the option, else what the job needs, never more than the model allows.</summary>
    public static int ContextFor(ParsedArgs a, Model model, int needed)
    {
        int max = model.Description.ContextLength > 0 ? model.Description.ContextLength : int.MaxValue;
        int ctx = a.GetInt("--ctx-size", Math.Min(needed, max), 1);
        if (ctx > max)
            throw new JevonsException($"--ctx-size {ctx} exceeds the model's context length {max}");
        return ctx;
    }
}

/// <summary>Human-readable numbers.</summary>
static class Format
{
    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):F2} MiB",
        >= 1L << 10 => $"{b / 1024.0:F2} KiB",
        _ => $"{b} B",
    };

    public static string Count(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:F2} B",
        >= 1_000_000 => $"{n / 1e6:F2} M",
        >= 1_000 => $"{n / 1e3:F2} K",
        _ => n.ToString(),
    };
}
