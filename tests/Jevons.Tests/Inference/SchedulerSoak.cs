using Jevons.Inference;
using Xunit;

namespace Jevons.Tests.Inference;

/// <summary>
/// Random submit / cancel / step events against a scheduler, the same mix for the fake runner and a
/// real model: 20% submits (prompts cut from a few shared bases plus a random tail, so the prefix cache
/// hits; one in five with 1-2 forks; greedy or seeded sampling; EOS on or off), 7% cancels of a live
/// sequence, the rest steps (each followed by a ref-count check). The pool is small, so sequences are
/// preempted and recomputed.
/// </summary>
static class SchedulerSoak
{
    public static readonly SamplerOptions Sampled = new() { Temperature = 1.2f, TopK = 0, TopP = 1, MinP = 0 };

    public sealed record Result(List<Sequence> Sequences, int Submits, int Cancels, int Steps, int Forks);

    public static int[] RandomTokens(Random rng, int n, int vocab = 32) => Enumerable.Range(0, n).Select(_ => rng.Next(1, vocab)).ToArray();

    /// <summary>Runs <paramref name="events"/> events, then steps until the scheduler is idle; <paramref name="step"/> runs one step.</summary>
    public static Result Run(Scheduler scheduler, Action step, Random rng, int events = 10_000, int vocab = 32, int eos = 0, int maxSteps = 100_000)
    {
        var bases = Enumerable.Range(0, 4).Select(_ => RandomTokens(rng, 20, vocab)).ToArray();
        var all = new List<Sequence>();
        int submits = 0, cancels = 0, steps = 0, forked = 0;
        for (int e = 0; e < events; e++)
        {
            int r = rng.Next(100);
            if (r < 20)
            {
                var prompt = bases[rng.Next(bases.Length)][..rng.Next(1, 20)].Concat(RandomTokens(rng, rng.Next(0, 9), vocab)).ToArray();
                SequenceOptions Options(int i) => new()
                {
                    MaxTokens = rng.Next(1, 17),
                    Sampling = i % 2 == 0 ? SamplerOptions.Greedy : Sampled with { Seed = (ulong)rng.Next() },
                    EosIds = rng.Next(2) == 0 ? [eos] : [],
                };
                var parent = new Sequence(all.Count, prompt, Options(rng.Next(2)));
                all.Add(parent);
                var forks = new List<Sequence>();
                if (rng.Next(5) == 0)
                    for (int k = rng.Next(1, 3); k > 0; k--)
                    {
                        var fork = new Sequence(all.Count, prompt, Options(rng.Next(2)));
                        all.Add(fork);
                        forks.Add(fork);
                    }
                scheduler.Add(parent, forks);
                forked += forks.Count;
                submits++;
            }
            else if (r < 27)
            {
                var live = all.Where(s => s.Status != SequenceStatus.Finished).ToList();
                if (live.Count > 0)
                {
                    scheduler.Cancel(live[rng.Next(live.Count)]);
                    cancels++;
                }
            }
            else
            {
                step();
                steps++;
            }
        }
        for (int i = 0; scheduler.HasWork; i++)
        {
            Assert.True(i < maxSteps, "the scheduler did not finish");
            step();
        }
        return new Result(all, submits, cancels, steps, forked);
    }

    /// <summary>Every block's ref count equals the number of tables that hold it; waiting sequences hold none.</summary>
    public static void CheckRefCounts(Scheduler scheduler, BlockPool pool)
    {
        var expected = new int[pool.Blocks];
        foreach (var s in scheduler.RunningSequences)
            foreach (var b in s.BlockTable) expected[b]++;
        foreach (var s in scheduler.WaitingSequences) Assert.Equal(0, s.BlockCount);
        int used = 0;
        for (int b = 0; b < expected.Length; b++)
        {
            Assert.Equal(expected[b], pool.RefCount(b));
            if (expected[b] > 0) used++;
        }
        Assert.Equal(used, pool.Used);
    }

    /// <summary>Nothing leaked: every block is back in the pool with no reference.</summary>
    public static void CheckAllReturned(BlockPool pool)
    {
        Assert.Equal(0, pool.Used);
        Assert.Equal(pool.Blocks, pool.Available);
        for (int b = 0; b < pool.Blocks; b++) Assert.Equal(0, pool.RefCount(b));
    }

    /// <summary>
    /// Every sequence finished with exactly the ids it generates alone (<paramref name="reference"/>), a cancelled one
    /// with a prefix of them; returns (finished, cancelled).
    /// </summary>
    public static (int Finished, int Cancelled) CheckOutputs(Result run, Func<Sequence, int[]> reference)
    {
        int finished = 0, cancelled = 0;
        foreach (var s in run.Sequences)
        {
            Assert.Equal(SequenceStatus.Finished, s.Status);
            var expected = reference(s);
            if (s.FinishReason == FinishReason.Cancelled)
            {
                cancelled++;
                Assert.Equal(expected[..s.GeneratedCount], s.Generated.ToArray());
            }
            else
            {
                finished++;
                Assert.Equal(expected, s.Generated.ToArray());
            }
        }
        return (finished, cancelled);
    }
}
