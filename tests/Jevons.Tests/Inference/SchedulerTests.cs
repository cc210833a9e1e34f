using Jevons.Inference;
using Jevons.Models;
using Xunit;

namespace Jevons.Tests.Inference;

public class SchedulerTests
{
    static readonly SamplerOptions Sampled = SchedulerSoak.Sampled;

    sealed class Rig
    {
        public readonly FakeRunner Runner;
        public readonly BlockPool Pool;
        public readonly Scheduler Scheduler;
        long _ids;

        public Rig(int blocks, int blockSize = 4, int maxBatchTokens = 16, int maxSequences = 8, int vocab = 32, int context = 256,
            PrefixDiskCache? disk = null, FakeRunner? runner = null)
        {
            Runner = runner ?? new FakeRunner(blocks, blockSize, vocab, context);
            Pool = new BlockPool(Runner, disk);
            Scheduler = new Scheduler(Runner, Pool, new SchedulerOptions { MaxBatchTokens = maxBatchTokens, MaxSequences = maxSequences });
            // Every token a batch writes must land in a block this sequence alone holds and that is not in the prefix cache.
            Runner.OnForward = batch =>
            {
                foreach (var e in batch.Entries)
                    for (int p = e.StartPosition; p < e.StartPosition + e.Tokens.Length; p++)
                    {
                        int block = e.BlockTable.Span[p / Pool.BlockSize];
                        Assert.Equal(1, Pool.RefCount(block));
                        Assert.False(Pool.IsCached(block), $"block {block} is cached but written at position {p}");
                    }
            };
        }

        public Sequence Add(int[] prompt, SequenceOptions options)
        {
            var s = new Sequence(_ids++, prompt, options);
            Scheduler.Add(s);
            return s;
        }

        public List<SequenceOutput> Step()
        {
            var outputs = Scheduler.Step().ToList();
            CheckRefCounts(this);
            return outputs;
        }

        public void RunToEnd(int maxSteps = 100_000)
        {
            for (int i = 0; Scheduler.HasWork; i++)
            {
                Assert.True(i < maxSteps, "the scheduler did not finish");
                Step();
            }
        }
    }

    static void CheckRefCounts(Rig rig) => SchedulerSoak.CheckRefCounts(rig.Scheduler, rig.Pool);

    static int[] RandomTokens(Random rng, int n, int vocab = 32) => SchedulerSoak.RandomTokens(rng, n, vocab);

    [Fact]
    public void TenThousandRandomEventsLeakNothingAndNoSequenceSeesAnother()
    {
        var rig = new Rig(blocks: 20, blockSize: 4, maxBatchTokens: 24, maxSequences: 8);
        var run = SchedulerSoak.Run(rig.Scheduler, () => rig.Step(), new Random(1234));

        SchedulerSoak.CheckAllReturned(rig.Pool);
        var (finished, cancelled) = SchedulerSoak.CheckOutputs(run, s => FakeRunner.Reference(s.Prompt, s.Options, rig.Runner.VocabSize));
        // The run exercised what it claims to.
        Assert.True(run.Submits > 1500 && run.Cancels > 300 && run.Steps > 7000, $"{run.Submits} submits, {run.Cancels} cancels, {run.Steps} steps");
        Assert.True(finished > 500 && cancelled > 100 && run.Forks > 100, $"{finished} finished, {cancelled} cancelled, {run.Forks} forks");
        Assert.True(rig.Scheduler.Counters.Preemptions > 100, $"{rig.Scheduler.Counters.Preemptions} preemptions");
        Assert.True(rig.Scheduler.Counters.PrefixHitTokens > 5000, $"{rig.Scheduler.Counters.PrefixHitTokens} prefix hit tokens");
    }

    [Fact]
    public void ChunkedPrefillKeepsTheBudgetAndEveryDecodeStreamGetsATokenEveryStep()
    {
        var rng = new Random(5);
        var rig = new Rig(blocks: 200, blockSize: 4, maxBatchTokens: 16);
        var decoders = Enumerable.Range(0, 3).Select(_ => rig.Add(RandomTokens(rng, 2), new SequenceOptions { MaxTokens = 100 })).ToArray();
        rig.Step();
        Assert.All(decoders, d => Assert.Equal(1, d.GeneratedCount));

        var longPrompt = rig.Add(RandomTokens(rng, 100), new SequenceOptions { MaxTokens = 5 });
        var chunks = new List<int>();
        var wanted = new List<LogitsWanted>();
        while (longPrompt.GeneratedCount == 0)
        {
            var before = decoders.Select(d => d.GeneratedCount).ToArray();
            rig.Step();
            var batch = rig.Runner.Batches[^1];
            Assert.True(batch.Sum(e => e.Tokens.Length) <= 16);
            for (int i = 0; i < 3; i++) Assert.Equal(before[i] + 1, decoders[i].GeneratedCount);
            Assert.Equal(3, batch.Count(e => e.Tokens.Length == 1));
            var chunk = batch.Single(e => e.Tokens.Length > 1 || e.Start >= 91);
            chunks.Add(chunk.Tokens.Length);
            wanted.Add(chunk.Logits);
        }
        Assert.Equal([13, 13, 13, 13, 13, 13, 13, 9], chunks);
        Assert.Equal([.. Enumerable.Repeat(LogitsWanted.None, 7), LogitsWanted.Last], wanted);
        rig.RunToEnd();
        Assert.Equal(FakeRunner.Reference(longPrompt.Prompt, longPrompt.Options, 32), longPrompt.Generated.ToArray());
    }

    [Fact]
    public void PreemptionAndRecomputeGiveTheSameOutputAsNoPreemption()
    {
        var rng = new Random(9);
        var prompts = Enumerable.Range(0, 4).Select(_ => RandomTokens(rng, 10)).ToArray();
        SequenceOptions Options(int i) => new() { MaxTokens = 30, Sampling = i % 2 == 0 ? SamplerOptions.Greedy : Sampled with { Seed = (ulong)i } };
        int[][] Run(int blocks, out long preemptions)
        {
            var rig = new Rig(blocks, blockSize: 4, maxBatchTokens: 32);
            var seqs = prompts.Select((p, i) => rig.Add(p, Options(i))).ToArray();
            rig.RunToEnd();
            preemptions = rig.Scheduler.Counters.Preemptions;
            Assert.Equal(0, rig.Pool.Used);
            return seqs.Select(s => s.Generated.ToArray()).ToArray();
        }
        var roomy = Run(100, out long none);
        var tight = Run(12, out long some);
        Assert.Equal(0, none);
        Assert.True(some >= 3, $"{some} preemptions");
        Assert.Equal(roomy, tight);
        for (int i = 0; i < 4; i++) Assert.Equal(FakeRunner.Reference(prompts[i], Options(i), 32), tight[i]);
    }

    [Fact]
    public void APromptSharingAPrefixReportsWholeCachedBlocks()
    {
        var rng = new Random(3);
        var rig = new Rig(blocks: 64, blockSize: 4);
        var a = RandomTokens(rng, 22);
        var first = rig.Add(a, new SequenceOptions { MaxTokens = 1 });
        rig.RunToEnd();
        var b = a[..13].Concat(RandomTokens(rng, 9)).ToArray();
        b[13] = a[13] == 1 ? 2 : 1; // exactly 13 tokens shared
        var second = rig.Add(b, new SequenceOptions { MaxTokens = 4 });
        var third = rig.Add(a, new SequenceOptions { MaxTokens = 4 });
        var fourth = rig.Add(a[..3].Concat(RandomTokens(rng, 10)).ToArray(), new SequenceOptions { MaxTokens = 2 });
        rig.RunToEnd();
        Assert.Equal(0, first.CachedPromptTokens);
        Assert.Equal(12, second.CachedPromptTokens);          // floor(13 / 4) × 4
        Assert.Equal(20, third.CachedPromptTokens);           // all 22 shared, the last token is recomputed: floor(21 / 4) × 4
        Assert.Equal(0, fourth.CachedPromptTokens);           // 3 shared tokens fill no block
        Assert.Equal(32, rig.Scheduler.Counters.PrefixHitTokens);
        // The cached blocks hold the right K/V: the outputs are the model's.
        Assert.Equal(FakeRunner.Reference(b, second.Options, 32), second.Generated.ToArray());
        Assert.Equal(FakeRunner.Reference(a, third.Options, 32), third.Generated.ToArray());
        // The second request computed only its 10 uncached prompt tokens before decoding.
        Assert.Equal(10, rig.Runner.Batches.SelectMany(x => x).Where(e => e.Tokens.Length > 1 && e.Tokens.SequenceEqual(b[12..])).Sum(e => e.Tokens.Length));
    }

    [Fact]
    public void UnreferencedCachedBlocksAreEvictedLeastRecentlyReleasedFirst()
    {
        var rig = new Rig(blocks: 8, blockSize: 2);
        int[] a = [1, 2, 3, 4, 5], b = [11, 12, 13, 14, 15];
        int[] Table() => rig.Runner.Batches[^1][0].Table;
        rig.Add(a, new SequenceOptions { MaxTokens = 1 });
        rig.RunToEnd();
        var ta = Table();
        rig.Add(b, new SequenceOptions { MaxTokens = 1 });
        rig.RunToEnd();
        var tb = Table();
        // Two full blocks each are cached; within one sequence the tail goes first.
        Assert.Equal([ta[1], ta[0], tb[1], tb[0]], rig.Pool.EvictionOrder());

        // Using A's prefix again moves its blocks to the back.
        var again = rig.Add(a, new SequenceOptions { MaxTokens = 1 });
        rig.RunToEnd();
        Assert.Equal(4, again.CachedPromptTokens);
        Assert.Equal([tb[1], tb[0], ta[1], ta[0]], rig.Pool.EvictionOrder());

        // Clean blocks go first; then the oldest cached one.
        int clean = rig.Pool.Available - 4;
        var taken = Enumerable.Range(0, clean).Select(_ => rig.Pool.Allocate()).ToList();
        Assert.DoesNotContain(tb[1], taken);
        Assert.Equal(tb[1], rig.Pool.Allocate());
        Assert.Equal(1, rig.Pool.Evictions);
        Assert.False(rig.Pool.IsCached(tb[1]));
        Assert.True(rig.Pool.IsCached(tb[0]));
        rig.Pool.Release(tb[1]);
        foreach (var t in taken) rig.Pool.Release(t);
        // B's chain lost its second block: only its first block hits now, A's still both.
        var b2 = rig.Add(b, new SequenceOptions { MaxTokens = 1 });
        var a2 = rig.Add(a, new SequenceOptions { MaxTokens = 1 });
        rig.RunToEnd();
        Assert.Equal(2, b2.CachedPromptTokens);
        Assert.Equal(4, a2.CachedPromptTokens);
    }

    [Fact]
    public void ForksSharePromptBlocksAndCopyOnWriteTheSharedPartialBlock()
    {
        var rig = new Rig(blocks: 32, blockSize: 4);
        int[] prompt = [3, 1, 4, 1, 5, 9];
        SequenceOptions Options(int i) => new() { MaxTokens = 8, Sampling = Sampled with { Temperature = 3f, Seed = (ulong)(100 + i) } };
        var parent = new Sequence(0, prompt, Options(0));
        var forks = new[] { new Sequence(1, prompt, Options(1)), new Sequence(2, prompt, Options(2)) };
        rig.Scheduler.Add(parent, forks);
        rig.Step();
        // One prefill for three choices; each sampled its first token from it; the full block is shared three ways.
        Assert.Equal(6, rig.Runner.Batches.Single().Sum(e => e.Tokens.Length));
        Assert.All(forks, f => Assert.Equal(1, f.GeneratedCount));
        Assert.Equal(3, rig.Pool.RefCount(parent.BlockTable[0]));
        Assert.Equal(3, rig.Pool.RefCount(parent.BlockTable[1]));
        rig.Step();
        // The partial block was copied by the first two writers; the last wrote in place.
        Assert.Equal(2, rig.Runner.Copies);
        Assert.Equal(3, rig.Pool.RefCount(parent.BlockTable[0]));
        rig.RunToEnd();
        var outputs = new[] { parent }.Concat(forks).Select(s => s.Generated.ToArray()).ToArray();
        for (int i = 0; i < 3; i++) Assert.Equal(FakeRunner.Reference(prompt, Options(i), 32), outputs[i]);
        Assert.True(outputs.Select(o => string.Join(",", o)).Distinct().Count() >= 2);
        Assert.Equal(0, rig.Pool.Used);
    }

    [Fact]
    public void TheSameSeedGivesTheSameIdsAloneAndAmongEight()
    {
        var rng = new Random(21);
        var prompt = RandomTokens(rng, 12);
        var options = new SequenceOptions { MaxTokens = 20, Sampling = Sampled with { Seed = 42 } };
        var alone = new Rig(blocks: 64);
        var only = alone.Add(prompt, options);
        alone.RunToEnd();

        var crowd = new Rig(blocks: 64, maxBatchTokens: 16);
        Sequence? ours = null;
        for (int i = 0; i < 8; i++)
        {
            if (i == 4) ours = crowd.Add(prompt, options);
            else crowd.Add(RandomTokens(rng, rng.Next(3, 30)), new SequenceOptions { MaxTokens = 25, Sampling = Sampled with { Seed = (ulong)i } });
            crowd.Step();
            crowd.Step();
        }
        crowd.RunToEnd();
        Assert.Equal(20, only.GeneratedCount);
        Assert.Equal(only.Generated.ToArray(), ours!.Generated.ToArray());
        Assert.True(crowd.Runner.Batches.Max(b => b.Length) >= 4, "the sequences really were batched together");
        Assert.NotEqual(FakeRunner.Reference(prompt, options with { Sampling = options.Sampling with { Seed = 43 } }, 32), only.Generated.ToArray());
    }

    [Fact]
    public void CancellationFreesBlocksAtTheNextStep()
    {
        var rig = new Rig(blocks: 16, maxBatchTokens: 32);
        var s = rig.Add([1, 2, 3, 4, 5, 6, 7, 8, 9], new SequenceOptions { MaxTokens = 40 });
        var w = rig.Add([9, 8, 7, 6, 5, 4, 3, 2, 1], new SequenceOptions { MaxTokens = 40 });
        rig.Step();
        Assert.Equal(6, rig.Pool.Used);
        rig.Scheduler.Cancel(s);
        Assert.Equal(6, rig.Pool.Used);
        rig.Step();
        Assert.Equal(FinishReason.Cancelled, s.FinishReason);
        Assert.Equal(3, rig.Pool.Used);
        Assert.Equal(1, rig.Scheduler.Running);
        rig.Scheduler.Cancel(w);
        rig.Step();
        Assert.Equal(0, rig.Pool.Used);
        Assert.False(rig.Scheduler.HasWork);
    }

    [Fact]
    public void ARequestThatCanNeverFitGetsAClearError()
    {
        var rig = new Rig(blocks: 4, blockSize: 4, context: 64);
        var tooLong = Assert.Throws<JevonsException>(() => rig.Add(new int[40], new SequenceOptions { MaxTokens = 30 }));
        Assert.Contains("70 is over the context length 64", tooLong.Message);
        var tooBig = Assert.Throws<JevonsException>(() => rig.Add(new int[10], new SequenceOptions { MaxTokens = 10 }));
        Assert.Contains("needs 5 KV blocks of 4 tokens", tooBig.Message);
        Assert.Contains("the pool holds 4", tooBig.Message);
        Assert.Contains("out of vocabulary", Assert.Throws<JevonsException>(() => rig.Add([1, 99], new SequenceOptions { MaxTokens = 1 })).Message);
        // Exactly the pool: 16 tokens of KV for 10 prompt + 7 generated (the last is never evaluated).
        var fits = rig.Add(new int[10], new SequenceOptions { MaxTokens = 7 });
        rig.RunToEnd();
        Assert.Equal(7, fits.GeneratedCount);
    }

    [Fact]
    public void EosAndStopIdsEndASequence()
    {
        var prompt = new[] { 5, 6, 7 };
        var free = FakeRunner.Reference(prompt, new SequenceOptions { MaxTokens = 10 }, 32);
        var rig = new Rig(blocks: 16);
        var eos = rig.Add(prompt, new SequenceOptions { MaxTokens = 10, EosIds = [free[2]] });
        var stop = rig.Add(prompt, new SequenceOptions { MaxTokens = 10, StopIds = [free[3]] });
        var ignored = rig.Add(prompt, new SequenceOptions { MaxTokens = 10, EosIds = [free[2]], IgnoreEos = true });
        rig.RunToEnd();
        Assert.Equal(free[..(Array.IndexOf(free, free[2]) + 1)], eos.Generated.ToArray());
        Assert.Equal(FinishReason.EndOfSequence, eos.FinishReason);
        Assert.Equal(FinishReason.Stop, stop.FinishReason);
        Assert.Equal(free[..(Array.IndexOf(free, free[3]) + 1)], stop.Generated.ToArray());
        Assert.Equal(FinishReason.Length, ignored.FinishReason);
        Assert.Equal(free, ignored.Generated.ToArray());
    }

    [Fact]
    public void NoMoreSequencesRunThanTheBudgetHasTokens()
    {
        var rig = new Rig(blocks: 64, maxBatchTokens: 4);
        var seqs = Enumerable.Range(0, 6).Select(i => rig.Add([1 + i, 2, 3], new SequenceOptions { MaxTokens = 5 })).ToArray();
        while (rig.Scheduler.HasWork)
        {
            var running = rig.Scheduler.RunningSequences.Where(s => s.Computed == s.Length - 1).ToArray();
            var before = running.Select(s => s.GeneratedCount).ToArray();
            rig.Step();
            Assert.True(rig.Scheduler.Running <= 4);
            for (int i = 0; i < running.Length; i++) Assert.Equal(before[i] + 1, running[i].GeneratedCount);
        }
        Assert.All(seqs, s => Assert.Equal(FakeRunner.Reference(s.Prompt, s.Options, 32), s.Generated.ToArray()));
    }

    /// <summary>A runner that computes nothing: what is left to measure is the scheduler's own work.</summary>
    sealed class NullRunner : IModelRunner
    {
        public int VocabSize => 64;
        public int ContextLength => 4096;
        public int BlockSize => 16;
        public int Blocks => 256;
        public string Fingerprint => "null";
        public long BytesPerBlock => 16;
        public void Forward(ForwardBatch batch, Span<float> logits) => logits.Clear();
        public void CopyBlock(int source, int destination) { }
        public void ExportBlock(int block, Span<byte> destination) { }
        public void ImportBlock(int block, ReadOnlySpan<byte> source) { }
    }

    [Fact]
    public void SteadyDecodeStepsAllocateNothing()
    {
        var runner = new NullRunner();
        var scheduler = new Scheduler(runner, new BlockPool(runner));
        for (int i = 0; i < 4; i++) scheduler.Add(new Sequence(i, Enumerable.Range(1, 20).ToArray(), new SequenceOptions { MaxTokens = 400 }));
        for (int i = 0; i < 20; i++) scheduler.Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++) scheduler.Step();     // 800 tokens, 50 new full blocks hashed and cached
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(4, scheduler.Running);
        Assert.Equal(0, allocated);
    }
}
