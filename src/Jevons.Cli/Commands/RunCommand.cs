using System.Text.Json;
using Jevons.Inference;
using Jevons.Tokenization;

namespace Jevons.Cli.Commands;

/// <summary>`jevons run`: generate from a prompt (or token ids) and stream the text.</summary>
sealed class RunCommand : ICommand
{
    public CommandSpec Spec { get; } = new("run", "generate text from a prompt (or token ids), streamed to stdout",
    [
        Common.Model,
        new("--prompt", "the prompt text (or give it as the argument)", "TEXT", "-p"),
        new("--file", "read the prompt text from a file", "FILE", "-f"),
        new("--chat", "wrap the prompt as a user message in the model's chat format"),
        new("--ids", "prompt as token ids instead of text: 1,2,3", "IDS"),
        new("--n-predict", "tokens to generate; -1 = until end-of-sequence or the context is full (default 128; with --chat -1)", "N", "-n"),
        new("--ignore-eos", "keep generating past end-of-sequence tokens"),
        new("--print-ids", "print only the generated ids, as one JSON array on stdout"),
        new("--stop", "stop when this text appears (repeatable)", "TEXT", Repeatable: true),
        new("--no-bos", "do not add the BOS token the tokenizer config asks for"),
        .. Common.Sampling,
        Common.Threads,
        Common.Context,
        .. Common.Engine,
    ], "PROMPT");

    public int Run(ParsedArgs a, CliContext c)
    {
        var ids = a.GetIds("--ids");
        var sources = new[]
        {
            a.Positionals.Count > 0 ? string.Join(" ", a.Positionals) : null,
            a.Get("--prompt"),
            a.Get("--file") is string f ? ReadPromptFile(f) : null,
        }.Where(s => s is not null).ToArray();
        if (sources.Length + (ids is null ? 0 : 1) != 1)
            throw new JevonsException("jevons run: give exactly one of a prompt, --prompt, --file or --ids (see jevons run --help)");
        string? prompt = sources.FirstOrDefault();
        if (a.Has("--chat") && prompt is null)
            throw new JevonsException("jevons run: --chat needs a text prompt, not --ids");
        // llama.cpp's -n: -1 generates until the model ends (a chat turn has an end; a raw completion has none, so 128).
        int n = a.GetInt("--n-predict", a.Has("--chat") ? -1 : 128, -1);
        bool untilEnd = n < 0;
        var sampling = Common.SamplerOptions(a);
        bool printIds = a.Has("--print-ids");

        using var loaded = Common.Load(a, c, tokenizer: ids is null || !printIds);
        var tokenizer = loaded.Tokenizer;
        if (ids is null)
        {
            tokenizer = loaded.RequireTokenizer();
            if (a.Has("--chat"))
            {
                var format = ChatPrompt.For(tokenizer);
                if (format.Notice is not null) c.Error.WriteLine(format.Notice);
                prompt = format.Render([new ChatMessage("user", prompt!)], addGenerationPrompt: true);
                ids = tokenizer.Encode(prompt, addSpecialTokens: false);
            }
            else
            {
                ids = tokenizer.Encode(prompt!, addSpecialTokens: !a.Has("--no-bos"));
            }
        }
        var model = loaded.Model;
        int ctx = Common.ContextFor(a, model, untilEnd ? Math.Max(UntilEndContext, ids.Length + 1) : ids.Length + Math.Max(n, 1));
        if (ids.Length >= ctx)
            throw new JevonsException($"the prompt has {ids.Length} tokens; the context holds {ctx}");
        // A --ctx-size below prompt + n ends the generation at the context, as before: ContextFull.
        int maxTokens = untilEnd ? ctx - ids.Length : Math.Min(n, ctx - ids.Length);
        using var engine = Common.CreateEngine(a, c, loaded, ctx);
        var request = new GenerationRequest
        {
            Prompt = ids,
            MaxTokens = Math.Max(maxTokens, 1),
            Sampling = sampling,
            IgnoreEos = a.Has("--ignore-eos"),
            StopSequences = a.GetAll("--stop"),
        };
        var stats = new GenerationStats();
        var generated = new List<int>();
        if (!printIds && prompt is not null && !a.Has("--chat")) c.Out.Write(prompt);
        if (n != 0)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Common.Consume(engine.GenerateAsync(request, c.Cancel), token =>
            {
                if (generated.Count == 0)
                {
                    stats.PromptTime = watch.Elapsed;
                    stats.PromptTokens = token.Usage.PromptTokens - token.Usage.CachedPromptTokens;
                    watch.Restart();
                }
                generated.Add(token.Id);
                stats.GeneratedTokens = generated.Count;
                stats.GenerationTime = watch.Elapsed;
                if (token.Finish != FinishReason.None)
                    stats.FinishReason = token.Finish == FinishReason.Length && (untilEnd || maxTokens < n) ? FinishReason.ContextFull : token.Finish;
                if (!printIds && token.Text.Length > 0)
                {
                    c.Out.Write(token.Text);
                    c.Out.Flush();
                }
            });
        }
        if (printIds) c.Out.WriteLine(JsonSerializer.Serialize(generated));
        else c.Out.WriteLine();
        c.Error.WriteLine($"prompt: {stats.PromptTokens} tokens in {stats.PromptTime.TotalMilliseconds:F0} ms ({stats.PromptTokensPerSecond:F1} tok/s); " +
            $"generated: {stats.GeneratedTokens} tokens in {stats.GenerationTime.TotalMilliseconds:F0} ms ({stats.GenerationTokensPerSecond:F1} tok/s); " +
            $"stop: {stats.FinishReason}" + (sampling.Temperature > 0 ? $"; seed {sampling.Seed}" : ""));
        return 0;
    }

    /// <summary>The context `-n -1` runs in without --ctx-size (llama.cpp's default), or the model's own when shorter.</summary>
    const int UntilEndContext = 4096;

    static string ReadPromptFile(string path)
    {
        if (!File.Exists(path)) throw new JevonsException("prompt file not found", path);
        return File.ReadAllText(path);
    }
}
