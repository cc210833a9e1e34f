using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Xunit;

namespace Jevons.Tests.Inference;

/// <summary>
/// The scheduler soak (<see cref="SchedulerSoak"/>) over a real model: a micro DeepSeek-V3 (MLA with q-LoRA,
/// MoE grouped across sequences, the paged latent cache) synthesized here, so no golden data is needed.
/// Each sequence's ids must equal what the same prompt and sampler give run alone through a private cache.
/// </summary>
public sealed class RealModelSoakTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"jevons-soak-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>deepseek-v3-mini's routing (sigmoid + bias, 2 of 4 groups) at the smallest shapes that keep every block.</summary>
    static readonly DeepSeekSynthPreset Micro = DeepSeekSynthPreset.All.Single(p => p.Name == "deepseek-v3-mini") with
    {
        Name = "deepseek-v3-micro", VocabSize = 320, HiddenSize = 32, Layers = 2, Heads = 2, QLoraRank = 16, KvLoraRank = 16,
        QkNopeHeadDim = 8, QkRopeHeadDim = 8, VHeadDim = 8, IntermediateSize = 64, MoeIntermediateSize = 16,
        RoutedExperts = 8, ExpertsPerToken = 2, ContextLength = 256,
    };

    /// <summary>A runner that checks, before every forward, that each written position lands in a block this sequence alone holds and that is not cached.</summary>
    sealed class CheckedRunner(ModelRunner inner) : IModelRunner
    {
        public BlockPool? Pool { get; set; }
        public int VocabSize => inner.VocabSize;
        public int ContextLength => inner.ContextLength;
        public int BlockSize => inner.BlockSize;
        public int Blocks => inner.Blocks;
        public string Fingerprint => inner.Fingerprint;
        public long BytesPerBlock => inner.BytesPerBlock;

        public void Forward(ForwardBatch batch, Span<float> logits)
        {
            foreach (var e in batch.Entries)
                for (int p = e.StartPosition; p < e.StartPosition + e.Tokens.Length; p++)
                {
                    int block = e.BlockTable.Span[p / BlockSize];
                    Assert.Equal(1, Pool!.RefCount(block));
                    Assert.False(Pool.IsCached(block), $"block {block} is cached but written at position {p}");
                }
            inner.Forward(batch, logits);
        }

        public void CopyBlock(int source, int destination) => inner.CopyBlock(source, destination);
        public void ExportBlock(int block, Span<byte> destination) => inner.ExportBlock(block, destination);
        public void ImportBlock(int block, ReadOnlySpan<byte> source) => inner.ImportBlock(block, source);
    }

    /// <summary>What a sequence generates alone: its prompt through a private cache, then one token at a time, with its own sampler.</summary>
    static int[] Alone(Model model, Sequence s)
    {
        var o = s.Options;
        var state = model.CreateState(s.PromptLength + o.MaxTokens);
        var history = new List<int>(s.Prompt.ToArray());
        var logits = new float[model.VocabSize];
        var sampler = new Sampler(o.Sampling);
        model.Forward(state, s.Prompt, logits);
        var generated = new List<int>();
        while (true)
        {
            int t = sampler.Sample(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history), s.PromptLength);
            history.Add(t);
            generated.Add(t);
            if ((!o.IgnoreEos && o.EosIds.Contains(t)) || generated.Count >= o.MaxTokens) break;
            model.Forward(state, [t], logits);
        }
        return generated.ToArray();
    }

    [Fact]
    public void TenThousandRandomEventsOverARealModelLeakNothingAndEachSequenceGetsItsAloneIds()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "micro.gguf");
        new Synthesis(Micro.Plan(), seed: 3).WriteGguf(path, DType.F32);
        using var loaded = LoadedModel.Load(path, new ModelOptions { Threads = 1 }, loadTokenizer: false);
        var model = loaded.Model;

        // The fake soak's pool: 20 blocks of 4 for up to 8 sequences, so preemption and eviction are frequent.
        var runner = new CheckedRunner(new ModelRunner(model, KvBudget.FromBlocks(20), KvType.F32, blockSize: 4, contextLength: 256));
        var pool = new BlockPool(runner);
        runner.Pool = pool;
        var scheduler = new Scheduler(runner, pool, new SchedulerOptions { MaxBatchTokens = 24, MaxSequences = 8 });
        var run = SchedulerSoak.Run(scheduler, () =>
        {
            scheduler.Step();
            SchedulerSoak.CheckRefCounts(scheduler, pool);
        }, new Random(4321), vocab: model.VocabSize, eos: 1);

        SchedulerSoak.CheckAllReturned(pool);
        var (finished, cancelled) = SchedulerSoak.CheckOutputs(run, s => Alone(model, s));
        var c = scheduler.Counters;
        Assert.True(run.Submits > 1500 && run.Cancels > 300 && run.Steps > 7000, $"{run.Submits} submits, {run.Cancels} cancels, {run.Steps} steps");
        Assert.True(finished > 500 && cancelled > 100 && run.Forks > 100, $"{finished} finished, {cancelled} cancelled, {run.Forks} forks");
        Assert.True(c.Preemptions > 100, $"{c.Preemptions} preemptions");
        Assert.True(c.PrefixHitTokens > 5000, $"{c.PrefixHitTokens} prefix hit tokens");
    }
}
