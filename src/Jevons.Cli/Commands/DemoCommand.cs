using System.Diagnostics;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Synthesis;
using Jevons.Numerics;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons demo`: the README's first command. Synthesizes the tiny preset once (models/tiny-q8_0.gguf under the
/// repository root, reused while it loads), then generates from it with the built-in tokenizer, sampler and loop.
/// </summary>
sealed class DemoCommand : ICommand
{
    public const string Preset = "tiny";
    public const string Disclosure =
        "demo: running a tiny random-weight qwen2-architecture model synthesized by `jevons synth` - its text is meaningless; " +
        "real checkpoints: jevons run --model PATH \"prompt\"";

    public CommandSpec Spec { get; } = new("demo", "synthesize a tiny random-weight model (no download) and generate from it",
    [
        new("--n-predict", "tokens to generate (default 64)", "N", "-n"),
        new("--seed", "sampling seed (default 42)", "S"),
        new("--prompt", "prompt text (default \"The answer to the question is\")", "TEXT"),
        new("--dir", "where the model is kept (default: models/ at the repository root)", "DIR"),
        Common.Threads,
    ]);

    public int Run(ParsedArgs a, CliContext c)
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
