using Jevons.Inference;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Inference;

public class InferenceEngineTests
{
    static readonly Tokenizer Tokenizer = Tokenizer.FromGguf(SyntheticVocabulary.Create(300, "deepseek-v3").ToMetadata());
    static readonly int[] Prompt = [40, 41, 42, 43, 44, 45, 46, 47, 48, 49];

    /// <summary>A fake runner that takes a little time per step, so a consumer can stop a stream mid-way.</summary>
    sealed class SlowRunner(int blocks) : IModelRunner
    {
        readonly FakeRunner _inner = new(blocks, blockSize: 4, vocab: 300, context: 4096) { Record = false };
        public int VocabSize => _inner.VocabSize;
        public int ContextLength => _inner.ContextLength;
        public int BlockSize => _inner.BlockSize;
        public int Blocks => _inner.Blocks;
        public string Fingerprint => _inner.Fingerprint;
        public long BytesPerBlock => _inner.BytesPerBlock;
        public void Forward(Jevons.Models.ForwardBatch batch, Span<float> logits) { Thread.Sleep(2); _inner.Forward(batch, logits); }
        public void CopyBlock(int source, int destination) => _inner.CopyBlock(source, destination);
        public void ExportBlock(int block, Span<byte> destination) => _inner.ExportBlock(block, destination);
        public void ImportBlock(int block, ReadOnlySpan<byte> source) => _inner.ImportBlock(block, source);
    }

    static async Task<bool> Eventually(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++) await Task.Delay(10);
        return condition();
    }

    static SequenceOptions Reference(GenerationRequest r, int choice) => new()
    {
        MaxTokens = r.MaxTokens,
        Sampling = r.Sampling with { Seed = r.Sampling.Seed + (ulong)choice },
        EosIds = Tokenizer.EosIds,
        IgnoreEos = r.IgnoreEos,
    };

    [Fact]
    public async Task ChoicesStreamTheirTextWithUsage()
    {
        using var engine = new InferenceEngine(new FakeRunner(64, vocab: 300, context: 4096), Tokenizer);
        var request = new GenerationRequest { Prompt = Prompt, N = 3, MaxTokens = 12, IgnoreEos = true, Sampling = new SamplerOptions { Temperature = 2f, TopK = 0, TopP = 1, MinP = 0, Seed = 7 } };
        var events = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(request)) events.Add(e);

        Assert.Equal(36, events.Count);
        for (int c = 0; c < 3; c++)
        {
            var mine = events.Where(e => e.Choice == c).ToList();
            var expected = FakeRunner.Reference(Prompt, Reference(request, c), 300);
            Assert.Equal(expected, mine.Select(e => e.Id).ToArray());
            Assert.Equal(Tokenizer.Decode(expected, skipSpecialTokens: true), string.Concat(mine.Select(e => e.Text)));
            Assert.Equal(FinishReason.Length, mine[^1].Finish);
            Assert.All(mine[..^1], e => Assert.Equal(FinishReason.None, e.Finish));
        }
        Assert.Equal(new Usage(10, 0, 36), events[^1].Usage);
        Assert.True(await Eventually(() => engine.Metrics.KvBlocksUsed == 0 && engine.Metrics.Running == 0));
        Assert.Equal(36, engine.Metrics.GenerationTokens);
        Assert.Equal(30, engine.Metrics.PromptTokens);
        Assert.Equal(64, engine.Metrics.KvBlocksTotal);

        // The same prompt again: its two full blocks come from the prefix cache.
        var again = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(request with { N = 1, MaxTokens = 2 })) again.Add(e);
        Assert.Equal(new Usage(10, 8, 2), again[^1].Usage);
    }

    [Fact]
    public async Task AStopStringEndsTheChoiceAndIsNotEmitted()
    {
        using var engine = new InferenceEngine(new FakeRunner(64, vocab: 300, context: 4096), Tokenizer);
        var free = new GenerationRequest { Prompt = Prompt, MaxTokens = 40, IgnoreEos = true, Sampling = SamplerOptions.Greedy };
        var text = string.Concat(await Collect(engine.GenerateAsync(free)));
        // A two-character stop string from the middle of what the model says.
        int at = text.Length / 2;
        var stop = text.Substring(at, 2);
        var expected = text[..text.IndexOf(stop, StringComparison.Ordinal)];
        var events = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(free with { StopSequences = [stop] })) events.Add(e);
        Assert.Equal(expected, string.Concat(events.Select(e => e.Text)));
        Assert.Equal(FinishReason.Stop, events[^1].Finish);
        Assert.True(events.Count < 40);
        Assert.True(await Eventually(() => engine.Metrics.KvBlocksUsed == 0));
    }

    static async Task<List<string>> Collect(IAsyncEnumerable<TokenEvent> events)
    {
        var texts = new List<string>();
        await foreach (var e in events) texts.Add(e.Text);
        return texts;
    }

    [Fact]
    public async Task AbandoningTheStreamCancelsAndFreesTheBlocks()
    {
        using var engine = new InferenceEngine(new SlowRunner(256), Tokenizer);
        // The engine waits at the request's 6th token until the consumer has abandoned the stream, so a descheduled
        // test thread cannot let the request run to its end before the cancellation is posted.
        using var abandoned = new ManualResetEventSlim(false);
        int hooked = 0;
        var request = new GenerationRequest
        {
            Prompt = Prompt, MaxTokens = 500, IgnoreEos = true,
            TokenHook = (_, _) => { if (++hooked == 6) abandoned.Wait(TimeSpan.FromSeconds(30)); return null; },
        };
        int seen = 0;
        await foreach (var e in engine.GenerateAsync(request))
            if (++seen == 5) break;
        abandoned.Set();
        Assert.True(await Eventually(() => engine.Metrics.KvBlocksUsed == 0 && engine.Metrics.Running == 0));
        Assert.True(engine.Metrics.GenerationTokens < 500, $"{engine.Metrics.GenerationTokens} tokens: the request ran to its end");
    }

    [Fact]
    public async Task ACancelledTokenStopsTheStreamAndFreesTheBlocks()
    {
        using var engine = new InferenceEngine(new SlowRunner(256), Tokenizer);
        using var cts = new CancellationTokenSource();
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 500, IgnoreEos = true, N = 2 };
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in engine.GenerateAsync(request, cts.Token))
                if (++seen == 3) cts.Cancel();
        });
        Assert.True(await Eventually(() => engine.Metrics.KvBlocksUsed == 0 && engine.Metrics.Running == 0 && engine.Metrics.Waiting == 0));
        Assert.True(engine.Metrics.GenerationTokens < 1000);
    }

    [Fact]
    public void ARequestThatCanNeverFitFailsAtSubmit()
    {
        using var engine = new InferenceEngine(new FakeRunner(8, vocab: 300, context: 4096), Tokenizer);
        var e = Assert.Throws<JevonsException>(() => engine.Submit(new GenerationRequest { Prompt = Prompt, MaxTokens = 100 }));
        Assert.Contains("raise --kv-budget", e.Message);
        Assert.Contains("n is 0", Assert.Throws<JevonsException>(() => engine.Submit(new GenerationRequest { Prompt = Prompt, N = 0 })).Message);
    }

    [Fact]
    public async Task EightStaggeredRequestsGetWhatEachGetsAlone()
    {
        using var engine = new InferenceEngine(new SlowRunner(512), Tokenizer, new EngineOptions { Scheduler = new SchedulerOptions { MaxBatchTokens = 24 } });
        var rng = new Random(4);
        var requests = Enumerable.Range(0, 8).Select(i => new GenerationRequest
        {
            Prompt = Enumerable.Range(0, 5 + 3 * i).Select(_ => rng.Next(256)).ToArray(),
            MaxTokens = 16,
            IgnoreEos = true,
            Sampling = new SamplerOptions { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0, Seed = (ulong)i },
        }).ToArray();
        var tasks = new List<Task<int[]>>();
        foreach (var r in requests)
        {
            tasks.Add(Task.Run(async () =>
            {
                var ids = new List<int>();
                await foreach (var e in engine.GenerateAsync(r)) ids.Add(e.Id);
                return ids.ToArray();
            }));
            await Task.Delay(5);
        }
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < 8; i++) Assert.Equal(FakeRunner.Reference(requests[i].Prompt.ToArray(), Reference(requests[i], 0), 300), results[i]);
        Assert.True(engine.Metrics.Steps < 8 * 16, $"{engine.Metrics.Steps} steps: the requests were not batched");
    }

    [Fact]
    public async Task AFailingStepFailsItsRequestsAndTheEngineGoesOn()
    {
        var runner = new FakeRunner(64, vocab: 300, context: 4096);
        int calls = 0;
        runner.OnForward = _ => { if (++calls == 3) throw new InvalidOperationException("boom"); };
        using var engine = new InferenceEngine(runner, Tokenizer);
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 10, IgnoreEos = true, Sampling = SamplerOptions.Greedy };
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Collect(engine.GenerateAsync(request)));
        Assert.Equal("boom", e.Message);
        Assert.True(await Eventually(() => engine.Metrics.KvBlocksUsed == 0));
        var ids = new List<int>();
        await foreach (var t in engine.GenerateAsync(request)) ids.Add(t.Id);
        Assert.Equal(FakeRunner.Reference(Prompt, Reference(request, 0), 300), ids);
    }

    [Fact]
    public async Task DisposingTheEngineEndsStreamsInFlight()
    {
        var engine = new InferenceEngine(new SlowRunner(256), Tokenizer);
        var handle = engine.Submit(new GenerationRequest { Prompt = Prompt, MaxTokens = 500, IgnoreEos = true });
        await handle.Events.ReadAsync();
        engine.Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { while (true) await handle.Events.ReadAsync(); });
        handle.Cancel();                                     // harmless after dispose
        Assert.Throws<ObjectDisposedException>(() => engine.Submit(new GenerationRequest { Prompt = Prompt }));
    }

    [Fact]
    public async Task LogprobsComeWithEveryTokenWhenAskedFor()
    {
        using var engine = new InferenceEngine(new FakeRunner(64, vocab: 300, context: 4096), Tokenizer);
        var request = new GenerationRequest { Prompt = Prompt, MaxTokens = 4, IgnoreEos = true, Sampling = SamplerOptions.Greedy, TopLogprobs = 2 };
        var events = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(request)) events.Add(e);
        var history = Prompt.ToList();
        var logits = new float[300];
        foreach (var e in events)
        {
            // By hand: log-softmax of the fake model's row for this history.
            FakeRunner.Logits(history.ToArray(), logits);
            double max = logits.Max(), logZ = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
            var best = logits.Select((l, id) => (l, id)).OrderByDescending(x => x.l).ThenBy(x => x.id).Take(2).ToArray();
            Assert.Equal(best[0].id, e.Id);
            Assert.Equal(logits[e.Id] - logZ, e.Logprob!.Value, 4);
            Assert.Equal(best.Select(x => x.id), e.TopLogprobs!.Select(t => t.Id));
            Assert.Equal(best[1].l - logZ, e.TopLogprobs![1].Logprob, 4);
            history.Add(e.Id);
        }
        var plain = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(request with { TopLogprobs = -1 })) plain.Add(e);
        Assert.All(plain, e => Assert.Null(e.Logprob));
        Assert.Equal(events.Select(e => e.Id), plain.Select(e => e.Id));
    }

    [Fact]
    public async Task TokenHookForcesIdsIntoOneChoiceAndTheModelGoesOnFromThem()
    {
        using var engine = new InferenceEngine(new FakeRunner(64, vocab: 300, context: 4096), Tokenizer);
        int[] forced = [200, 201, 202];
        int calls = 0;
        var request = new GenerationRequest
        {
            Prompt = Prompt, N = 2, MaxTokens = 10, IgnoreEos = true, Sampling = SamplerOptions.Greedy,
            // After choice 1's third token, force three ids once.
            TokenHook = (choice, _) => choice == 1 && ++calls == 3 ? forced : null,
        };
        var events = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(request)) events.Add(e);

        var plain = FakeRunner.Reference(Prompt, Reference(request, 0), 300);
        Assert.Equal(plain, events.Where(e => e.Choice == 0).Select(e => e.Id).ToArray());
        var hooked = events.Where(e => e.Choice == 1).Select(e => e.Id).ToArray();
        Assert.Equal(10, hooked.Length);
        Assert.Equal(plain[..3], hooked[..3]);
        Assert.Equal(forced, hooked[3..6]);
        // The rest is the model's greedy continuation of the history that includes the forced ids.
        var history = Prompt.Concat(hooked[..6]).ToArray();
        Assert.Equal(FakeRunner.Reference(history, Reference(request, 1) with { MaxTokens = 4 }, 300), hooked[6..]);
        Assert.NotEqual(plain[6..], hooked[6..]);
        Assert.Equal(20, events[^1].Usage.CompletionTokens);
    }

    [Fact]
    public async Task LogitsProcessorSeesEachChoicesHistoryAndItsMaskDecides()
    {
        using var engine = new InferenceEngine(new FakeRunner(64, vocab: 300, context: 4096), Tokenizer);
        var seen = new List<(int Choice, int Generated)>();
        var request = new GenerationRequest
        {
            Prompt = Prompt, N = 2, MaxTokens = 6, IgnoreEos = true, Sampling = new SamplerOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = 3 },
            // Choice c may only write token 100 + c + (tokens so far).
            Logits = (choice, generated, logits) =>
            {
                seen.Add((choice, generated.Length));
                int allowed = 100 + choice + generated.Length;
                for (int i = 0; i < logits.Length; i++) if (i != allowed) logits[i] = float.NegativeInfinity;
            },
        };
        var events = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(request)) events.Add(e);
        Assert.Equal([100, 101, 102, 103, 104, 105], events.Where(e => e.Choice == 0).Select(e => e.Id));
        Assert.Equal([101, 102, 103, 104, 105, 106], events.Where(e => e.Choice == 1).Select(e => e.Id));
        Assert.Equal(12, seen.Count);
        Assert.Equal(Enumerable.Range(0, 6), seen.Where(s => s.Choice == 1).Select(s => s.Generated));
    }
}
