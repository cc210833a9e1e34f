using System.Text.Json;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Tests.Cli;
using Xunit;

namespace Jevons.Tests.Inference;

/// <summary>
/// KV memory at DeepSeek-V2-Lite's cache shape: 16 sequences x 4096 tokens of F16 latent cache fit the budget
/// `inspect` reports (KV bytes per token x tokens), and a request no pool can hold is a one-line error. The
/// model keeps V2-Lite's cache dimensions (kv_lora_rank 512, qk_rope_head_dim 64) with 1 layer of 27, so the
/// pool is 75 MB instead of 1.9 GiB (the full size is measured in docs/performance.md).
/// </summary>
public sealed class KvMemoryTests : IDisposable
{
    const int Sequences = 16, TokensEach = 4096, BlockSize = ModelRunner.DefaultBlockSize;

    static readonly DeepSeekSynthPreset V2Lite = DeepSeekSynthPreset.All.Single(p => p.Name == "deepseek-v2-lite");

    readonly string _dir = Path.Combine(Path.GetTempPath(), $"jevons-kvmem-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    string OneLayerV2Lite()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "v2-lite-cache-shape.gguf");
        var preset = V2Lite with
        {
            Name = "v2-lite-cache-shape", Layers = 1, VocabSize = 320, HiddenSize = 64, Heads = 1, QkNopeHeadDim = 16, VHeadDim = 16,
            IntermediateSize = 64, MoeIntermediateSize = 16, RoutedExperts = 4, ExpertsPerToken = 2, SharedExperts = 1,
        };
        new Synthesis(preset.Plan(), seed: 1).WriteGguf(path, DType.F32);
        return path;
    }

    [Fact]
    public void SixteenSequencesOf4096TokensFitTheBudgetInspectReports()
    {
        // The full shape: 27 layers x (512 + 64) values x 2 bytes = 31,104 B/token; 65,536 tokens = 2,038,431,744 bytes.
        Assert.Equal(31_104, LatentPagedCache.BytesPerToken(V2Lite.Layers, V2Lite.KvLoraRank, V2Lite.QkRopeHeadDim, KvType.F16));

        var path = OneLayerV2Lite();
        var inspect = CliHarness.Run("inspect", "--model", path, "--json");
        Assert.True(inspect.ExitCode == 0, inspect.Error);
        var d = JsonDocument.Parse(inspect.Out).RootElement;
        long perToken = d.GetProperty("kv_bytes_per_token_by_type").GetProperty("f16").GetInt64();
        Assert.Equal(1 * (512 + 64) * 2, perToken);
        Assert.Equal(2 * perToken, d.GetProperty("kv_bytes_per_token").GetInt64());
        Assert.Equal(perToken, d.GetProperty("kv_bytes_per_token_by_type").GetProperty("bf16").GetInt64());

        using var loaded = LoadedModel.Load(path, new ModelOptions { Threads = 1 }, loadTokenizer: false);
        long budget = Sequences * TokensEach * perToken;
        var runner = new ModelRunner(loaded.Model, KvBudget.FromBytes(budget), KvType.F16, BlockSize);
        Assert.Equal(Sequences * TokensEach / BlockSize, runner.Blocks);
        Assert.Equal(budget, runner.BytesPerBlock * runner.Blocks);
        Assert.Equal(budget, runner.Cache.Bytes);

        // Admission on that pool: each 4096-token request passes, and prompt + max_tokens one past the whole pool does not.
        var scheduler = new Scheduler(runner, new BlockPool(runner));
        Assert.Equal(Sequences * TokensEach + 1, scheduler.PoolRequestTokens);
        scheduler.Validate(new int[8], TokensEach + 1 - 8);   // 4096 positions of KV (the last sampled token needs none)
        scheduler.Validate(new int[8], Sequences * TokensEach + 1 - 8);
        var e = Assert.Throws<JevonsException>(() => scheduler.Validate(new int[8], Sequences * TokensEach + 2 - 8));
        Assert.Equal($"the request needs 4097 KV blocks of 16 tokens (8 prompt + {Sequences * TokensEach + 2 - 8} max_tokens); the pool holds 4096 (raise --kv-budget)", e.Message);
    }

    [Fact]
    public void SixteenFullContextsRunTogetherOnThatPoolWithoutAPreemption()
    {
        // The same pool geometry (4096 blocks of 16) under the fake runner, whose prefill is cheap. Each request is
        // 4000 prompt + 97 max_tokens: 4096 positions of KV, 256 blocks. All 16 are admitted together and at the
        // peak hold every block of the pool, with no preemption.
        var runner = new FakeRunner(Sequences * TokensEach / BlockSize, BlockSize, vocab: 64, context: 163_840) { Record = false };
        var pool = new BlockPool(runner);
        var scheduler = new Scheduler(runner, pool, new SchedulerOptions { MaxBatchTokens = 8192, MaxSequences = 64 });
        var rng = new Random(3);
        var options = new SequenceOptions { MaxTokens = 97, IgnoreEos = true };
        var seqs = Enumerable.Range(0, Sequences).Select(i => new Sequence(i, SchedulerSoak.RandomTokens(rng, 4000, 64), options)).ToArray();
        foreach (var s in seqs) scheduler.Add(s);
        int peak = 0, together = 0;
        while (scheduler.HasWork)
        {
            scheduler.Step();
            peak = Math.Max(peak, pool.Used);
            together = Math.Max(together, scheduler.Running);
        }
        Assert.Equal(Sequences, together);
        Assert.Equal(pool.Blocks, peak);
        Assert.Equal(0, scheduler.Counters.Preemptions);
        foreach (var s in seqs) Assert.Equal(FakeRunner.Reference(s.Prompt, s.Options, 64), s.Generated.ToArray());
        SchedulerSoak.CheckAllReturned(pool);
    }

    [Fact]
    public void ABudgetBeyondMemoryIsAClearErrorNotAnOutOfMemory()
    {
        using var loaded = LoadedModel.Load(OneLayerV2Lite(), new ModelOptions { Threads = 1 }, loadTokenizer: false);
        var e = Assert.Throws<JevonsException>(() => new ModelRunner(loaded.Model, KvBudget.Parse("1TiB"), KvType.F16));
        Assert.EndsWith("; use fewer blocks", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
