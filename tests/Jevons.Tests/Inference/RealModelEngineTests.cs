using Jevons.Inference;
using Jevons.Models;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Inference;

/// <summary>The engine over a real (tiny) model: batching, chunking and the prefix cache change no greedy token.</summary>
public class RealModelEngineTests
{
    [GoldenTheory]
    [InlineData("llama-tiny-f32.gguf")]
    [InlineData("deepseek3-tiny-f32.gguf")]
    [InlineData("deepseek2-lite-tiny-f32.gguf")]
    public async Task EightStaggeredRequestsGiveTheGreedyIdsEachGetsAlone(string file)
    {
        using var loaded = LoadedModel.Load(Golden.File("llamacpp", file)!, new ModelOptions { Threads = 2 }, loadTokenizer: false);
        var model = loaded.Model;
        var rng = new Random(8);
        var shared = Enumerable.Range(0, 20).Select(_ => rng.Next(model.VocabSize)).ToArray();
        // Prompts of different lengths, half of them sharing a 20-token prefix (prefix-cache hits mid-run).
        var prompts = Enumerable.Range(0, 8).Select(i =>
            (i % 2 == 0 ? shared : []).Concat(Enumerable.Range(0, 3 + 5 * i).Select(_ => rng.Next(model.VocabSize))).ToArray()).ToArray();
        const int tokens = 12;

        // Alone: the single-sequence path, one prompt at a time.
        var alone = prompts.Select(p =>
        {
            var state = model.CreateState(p.Length + tokens);
            var gen = new Generator(model, null);
            return gen.Generate(state, p, new GenerationOptions { MaxTokens = tokens, Sampling = SamplerOptions.Greedy, IgnoreEos = true })
                .Select(t => t.Id).ToArray();
        }).ToArray();

        var runner = new ModelRunner(model, KvBudget.FromBlocks(64), KvType.F32, blockSize: 8);
        using var engine = new InferenceEngine(runner, null, new EngineOptions { Scheduler = new SchedulerOptions { MaxBatchTokens = 32 } });
        // Staggered deterministically, not by wall time (a tiny model finishes 12 tokens in a millisecond or two): request
        // i+1 is submitted once request i has streamed two tokens, and request i's token hook holds the engine at its
        // second token until then, so request i still has ten tokens to go when the next one arrives.
        var arrived = Enumerable.Range(0, prompts.Length).Select(_ => new ManualResetEventSlim(false)).ToArray();
        var tasks = new List<Task<int[]>>();
        for (int i = 0; i < prompts.Length; i++)
        {
            int index = i, seen = 0;
            var request = new GenerationRequest
            {
                Prompt = prompts[i], MaxTokens = tokens, IgnoreEos = true, Sampling = SamplerOptions.Greedy,
                TokenHook = (_, _) =>
                {
                    if (++seen == 2 && index + 1 < arrived.Length) arrived[index + 1].Wait(TimeSpan.FromSeconds(30));
                    return null;
                },
            };
            var handle = engine.Submit(request);
            arrived[i].Set();
            var first = new List<int>();
            while (first.Count < 2 && await handle.Events.WaitToReadAsync())
                while (first.Count < 2 && handle.Events.TryRead(out var e)) first.Add(e.Id);
            tasks.Add(Task.Run(async () =>
            {
                var ids = new List<int>(first);
                await foreach (var e in handle.Events.ReadAllAsync()) ids.Add(e.Id);
                return ids.ToArray();
            }));
        }
        var batched = await Task.WhenAll(tasks);
        for (int i = 0; i < 8; i++) Assert.Equal(alone[i], batched[i]);
        var m = engine.Metrics;
        Assert.True(m.PrefixHitTokens >= 16, $"{m.PrefixHitTokens} prefix-hit tokens");
        Assert.True(m.Steps < 8 * tokens, $"{m.Steps} steps for 8 x {tokens} tokens: nothing was batched");
    }
}
