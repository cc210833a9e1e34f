using Jevons.Inference;
using Jevons.Models;
using Jevons.Tokenization;
using Jevons.Training.Export;

namespace Jevons.Training;

/// <summary>One sampled completion: its ids (EOS included when it ended so), the engine's log π(id) of each, the text.</summary>
public sealed record Rollout(int Request, int Choice, int[] Ids, float[] Logprobs, string Text, FinishReason Finish);

/// <summary>
/// The batched inference engine over a trainer model's current weights: the model is written as an HF
/// directory (config.json + F32 model.safetensors, ~27 MB for tiny-r1) and mapped back by the engine's own
/// loader, so rollouts run the engine's forward (latent KV cache, paged, continuous batching), not a second
/// sampler. Writing and mapping took 0.13–0.97 s for tiny-r1 on the loaded 2-core machine against 28–118 s of
/// generation in the same GRPO steps (the progress line shows both), so no in-memory weight source was built.
/// </summary>
public sealed class PolicyEngine : IDisposable
{
    readonly LoadedModel _loaded;

    PolicyEngine(LoadedModel loaded, InferenceEngine engine)
    {
        _loaded = loaded;
        Engine = engine;
    }

    public InferenceEngine Engine { get; }

    /// <summary>
    /// Exports <paramref name="model"/> into <paramref name="directory"/> (overwritten) and starts an engine on it
    /// with room for <paramref name="sequences"/> sequences of <paramref name="tokensPerSequence"/> tokens at once.
    /// </summary>
    public static PolicyEngine Create(TinyDeepSeek model, Tokenizer tokenizer, string directory, int threads, int sequences, int tokensPerSequence)
    {
        TinyDeepSeekExport.WriteHuggingFace(model, directory);
        return Open(directory, tokenizer, threads, sequences, tokensPerSequence);
    }

    /// <summary>An engine over a model directory or GGUF file (any architecture the engine runs).</summary>
    public static PolicyEngine Open(string path, Tokenizer tokenizer, int threads, int sequences, int tokensPerSequence)
    {
        var loaded = LoadedModel.Load(path, new ModelOptions { Threads = threads }, loadTokenizer: false);
        try
        {
            int blocksPerSequence = (tokensPerSequence + ModelRunner.DefaultBlockSize - 1) / ModelRunner.DefaultBlockSize + 1;
            var runner = new ModelRunner(loaded.Model, KvBudget.FromBlocks(sequences * blocksPerSequence + 4));
            var engine = new InferenceEngine(runner, tokenizer, new EngineOptions
            {
                Scheduler = new SchedulerOptions { MaxSequences = sequences, MaxBatchTokens = Math.Max(512, sequences) },
            });
            return new PolicyEngine(loaded, engine);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>Runs every request at once (the scheduler batches them) and returns each choice's completion, by request then choice.</summary>
    public List<Rollout> Generate(IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default) => Generate(Engine, requests, cancel);

    /// <summary>The same over any engine.</summary>
    /// <param name="finished">Called with the number of requests done so far each time one finishes (from the engine's threads).</param>
    public static List<Rollout> Generate(InferenceEngine engine, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel = default,
        Action<int>? finished = null)
    {
        var results = new Rollout[requests.Count][];
        int done = 0;
        var tasks = requests.Select((r, k) => Task.Run(async () =>
        {
            var ids = Enumerable.Range(0, r.N).Select(_ => new List<int>()).ToArray();
            var logprobs = Enumerable.Range(0, r.N).Select(_ => new List<float>()).ToArray();
            var texts = Enumerable.Range(0, r.N).Select(_ => new System.Text.StringBuilder()).ToArray();
            var finish = new FinishReason[r.N];
            await foreach (var e in engine.GenerateAsync(r, cancel).ConfigureAwait(false))
            {
                ids[e.Choice].Add(e.Id);
                logprobs[e.Choice].Add(e.Logprob ?? float.NaN);
                texts[e.Choice].Append(e.Text);
                if (e.Finish != FinishReason.None) finish[e.Choice] = e.Finish;
            }
            results[k] = Enumerable.Range(0, r.N)
                .Select(i => new Rollout(k, i, ids[i].ToArray(), logprobs[i].ToArray(), texts[i].ToString(), finish[i])).ToArray();
            finished?.Invoke(Interlocked.Increment(ref done));
        }, cancel)).ToArray();
        try { Task.WaitAll(tasks, cancel); }
        catch (AggregateException e) { System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw(); }
        return results.SelectMany(c => c).ToList();
    }

    public void Dispose()
    {
        Engine.Dispose();
        _loaded.Dispose();
    }
}
