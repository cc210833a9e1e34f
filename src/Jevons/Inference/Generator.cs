using System.Diagnostics;
using Jevons.Models;
using Jevons.Tokenization;

namespace Jevons.Inference;

/// <summary>What to generate: length, sampling, when to stop.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate.</summary>
    public int MaxTokens { get; init; } = 256;
    public SamplerOptions Sampling { get; init; } = new();
    /// <summary>Text that ends generation (not emitted).</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];
    /// <summary>Keep going past end-of-sequence tokens.</summary>
    public bool IgnoreEos { get; init; }
    /// <summary>Drop special tokens (BOS/EOS...) from the emitted text.</summary>
    public bool SkipSpecialTokens { get; init; } = true;
}

public enum FinishReason { None, Length, Stop, EndOfSequence, ContextFull, Cancelled }

/// <summary>One generated token and the text it completed (may be empty while UTF-8 or a stop string is pending).</summary>
public readonly record struct GeneratedToken(int Id, string Text);

/// <summary>Timings of one generation, llama.cpp style.</summary>
public sealed class GenerationStats
{
    public int PromptTokens { get; set; }
    public int GeneratedTokens { get; set; }
    public TimeSpan PromptTime { get; set; }
    public TimeSpan GenerationTime { get; set; }
    public FinishReason FinishReason { get; set; }
    public double PromptTokensPerSecond => PromptTokens / Math.Max(PromptTime.TotalSeconds, 1e-9);
    /// <summary>Decode speed: the first token comes from the prefill logits, each later one costs a forward step.</summary>
    public double GenerationTokensPerSecond => Math.Max(GeneratedTokens - 1, 0) / Math.Max(GenerationTime.TotalSeconds, 1e-9);
}

/// <summary>
/// The generation loop: prefill the prompt in one batch, then sample and feed one token at a time,
/// streaming UTF-8-safe text and honouring EOS, stop sequences and the token budget.
/// </summary>
public sealed class Generator
{
    readonly Model _model;
    readonly Tokenizer? _tokenizer;

    public Generator(Model model, Tokenizer? tokenizer)
    {
        _model = model;
        _tokenizer = tokenizer;
    }

    /// <summary>Generates after <paramref name="prompt"/>; the state must be empty or hold a prefix of it.</summary>
    public IEnumerable<GeneratedToken> Generate(ModelState state, IReadOnlyList<int> prompt, GenerationOptions options,
        GenerationStats? stats = null, CancellationToken cancel = default)
    {
        stats ??= new GenerationStats();
        if (prompt.Count == 0) JevonsException.Throw("the prompt holds no tokens");
        int vocab = _model.VocabSize;
        foreach (var id in prompt)
            if ((uint)id >= (uint)vocab)
                JevonsException.Throw($"token id {id} is out of vocabulary (the model has {vocab} tokens)");
        if (prompt.Count >= state.Capacity)
            JevonsException.Throw($"the prompt has {prompt.Count} tokens; the context holds {state.Capacity}");

        var sampler = new Sampler(options.Sampling);
        var history = new List<int>(prompt);
        var logits = new float[vocab];
        var eos = _tokenizer?.EosIds ?? [];
        var detok = _tokenizer?.CreateDetokenizer(options.SkipSpecialTokens);
        var stops = new StopSequences(options.StopSequences);

        // Prefill whatever part of the prompt the state does not hold yet.
        int reuse = Math.Min(state.Length, prompt.Count - 1);
        state.Truncate(reuse);
        var watch = Stopwatch.StartNew();
        var todo = history.GetRange(reuse, prompt.Count - reuse).ToArray();
        _model.Forward(state, todo, logits);
        stats.PromptTokens = todo.Length;
        stats.PromptTime = watch.Elapsed;
        watch.Restart();

        for (int n = 0; n < options.MaxTokens; n++)
        {
            cancel.ThrowIfCancellationRequested();
            int next = sampler.Sample(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
            history.Add(next);
            stats.GeneratedTokens++;
            if (!options.IgnoreEos && eos.Contains(next))
            {
                stats.FinishReason = FinishReason.EndOfSequence;
                var tail = stops.Push(detok?.Flush() ?? "") + stops.Flush();
                yield return new GeneratedToken(next, tail);
                break;
            }
            var text = stops.Push(detok?.Push(next) ?? "");
            if (stops.Stopped)
            {
                stats.FinishReason = FinishReason.Stop;
                yield return new GeneratedToken(next, text);
                break;
            }
            bool last = n + 1 == options.MaxTokens || state.Length + 1 >= state.Capacity;
            if (last)
            {
                stats.FinishReason = n + 1 == options.MaxTokens ? FinishReason.Length : FinishReason.ContextFull;
                text += stops.Push(detok?.Flush() ?? "") + stops.Flush();
                yield return new GeneratedToken(next, text);
                break;
            }
            yield return new GeneratedToken(next, text);
            _model.Forward(state, [next], logits);
            stats.GenerationTime = watch.Elapsed;
        }
        stats.GenerationTime = watch.Elapsed;
    }
}
