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
        var tasks = new List<Task<int[]>>();
        foreach (var p in prompts)
        {
            var request = new GenerationRequest { Prompt = p, MaxTokens = tokens, IgnoreEos = true, Sampling = SamplerOptions.Greedy };
            tasks.Add(Task.Run(async () =>
            {
                var ids = new List<int>();
                await foreach (var e in engine.GenerateAsync(request)) ids.Add(e.Id);
                return ids.ToArray();
            }));
            // Staggered by engine steps, not wall time (a tiny model finishes 12 tokens in a few ms): the next
            // request arrives two steps after this one, while this one still has at least ten tokens to go.
            long submitted = engine.Metrics.Steps;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (engine.Metrics.Steps < submitted + 2 && DateTime.UtcNow < deadline) await Task.Delay(1);
        }
        var batched = await Task.WhenAll(tasks);
        for (int i = 0; i < 8; i++) Assert.Equal(alone[i], batched[i]);
        var m = engine.Metrics;
        Assert.True(m.PrefixHitTokens >= 16, $"{m.PrefixHitTokens} prefix-hit tokens");
        Assert.True(m.Steps < 8 * tokens, $"{m.Steps} steps for 8 x {tokens} tokens: nothing was batched");
    }
}
