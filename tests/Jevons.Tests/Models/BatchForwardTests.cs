using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>
/// Many sequences in one pass over the weights (Model.Forward(ForwardBatch, PagedKvCache, logits)) against each
/// sequence alone (the single-sequence API): same greedy ids, logits within float summation noise.
/// </summary>
public sealed class BatchForwardTests(ITestOutputHelper output)
{
    /// <summary>A model and the source it was opened from (DeepSeek does not own its source).</summary>
    internal sealed class Opened(ModelSource source, Model model) : IDisposable
    {
        public Model Model { get; } = model;
        public void Dispose()
        {
            Model.Dispose();
            if (Model is DeepSeek) source.Dispose();
        }
    }

    internal static Opened Open(string relative, ModelOptions? options = null)
    {
        var source = ModelLoader.Open(Path.Combine(Golden.Root!, relative));
        return new Opened(source, ModelRegistry.Create(source, options ?? new ModelOptions { Threads = 2 }));
    }

    public static TheoryData<string> GoldenModels() =>
    [
        "llamacpp/qwen2-tiny-f32.gguf",
        "llamacpp/qwen2-tiny-q8_0.gguf",
        "llamacpp/llama-tiny-f32.gguf",
        "llamacpp/deepseek2-lite-tiny-f32.gguf",
        "llamacpp/deepseek2-lite-tiny-q8_0.gguf",
        "llamacpp/deepseek3-tiny-f32.gguf",
        "hf/v2lite_bf16",
        "hf/v3_bf16",
        "hf/v3_fp8",
    ];

    const int Sequences = 8, Generate = 6, BlockSize = 4;

    /// <summary>8 different prompts of 1 .. 15 tokens, seeded ids inside the vocabulary.</summary>
    static int[][] Prompts(int vocab)
    {
        var rng = new Random(1234);
        var prompts = new int[Sequences][];
        for (int i = 0; i < Sequences; i++)
        {
            prompts[i] = new int[1 + (i * 5 + 3) % 15];
            for (int j = 0; j < prompts[i].Length; j++) prompts[i][j] = rng.Next(vocab);
        }
        return prompts;
    }

    /// <summary>Greedy decode of one prompt alone: the ids and the logits row before each of them.</summary>
    internal static (int[] Ids, float[][] Logits, float[] PromptLogits) Alone(Model model, int[] prompt, int generate)
    {
        int vocab = model.VocabSize;
        var state = model.CreateState(prompt.Length + generate + 1);
        var all = new float[prompt.Length * vocab];
        model.Forward(state, prompt, all);
        var ids = new int[generate];
        var rows = new float[generate][];
        var last = all.AsSpan((prompt.Length - 1) * vocab, vocab).ToArray();
        for (int k = 0; k < generate; k++)
        {
            rows[k] = last;
            ids[k] = LlamaGoldenTests.Argmax(last);
            last = new float[vocab];
            model.Forward(state, [ids[k]], last);
        }
        return (ids, rows, all);
    }

    /// <summary>
    /// The staggered schedule: sequence i arrives at step i; a prompt is fed in chunks of up to 3 tokens, then
    /// one token per step; every step mixes prefill chunks and decode tokens of different sequences. Sequence 0
    /// asks for every prompt position's logits (All), the others for the last. Blocks are handed out from a
    /// shuffled list, so no table is contiguous.
    /// </summary>
    internal static (int[][] Ids, float[][][] Logits, float[] PromptLogits0) Batched(Model model, PagedKvCache cache, int[][] prompts, int generate, int[][]? forced = null, int seed = 7)
    {
        int vocab = model.VocabSize, n = prompts.Length;
        var free = Enumerable.Range(0, cache.Blocks).ToArray();
        new Random(seed).Shuffle(free);
        int nextFree = 0;
        var tables = new int[n][];
        for (int i = 0; i < n; i++)
        {
            int need = (prompts[i].Length + generate + cache.BlockSize - 1) / cache.BlockSize;
            tables[i] = free.AsSpan(nextFree, need).ToArray();
            nextFree += need;
        }
        var fed = new int[n];
        var ids = new int[n][];
        var rows = new float[n][][];
        for (int i = 0; i < n; i++) { ids[i] = new int[generate]; rows[i] = new float[generate][]; }
        var produced = new int[n];
        var prompt0 = new float[prompts[0].Length * vocab];
        var batch = new ForwardBatch();
        var members = new List<(int Seq, LogitsWanted Wanted, int Tokens)>();
        for (int step = 0; produced.Any(p => p < generate); step++)
        {
            batch.Clear();
            members.Clear();
            for (int i = 0; i < Math.Min(n, step + 1); i++)
            {
                if (produced[i] == generate) continue;
                int len = prompts[i].Length;
                if (fed[i] < len)
                {
                    int take = Math.Min(3 + i % 2, len - fed[i]);
                    bool ends = fed[i] + take == len;
                    var wanted = i == 0 ? LogitsWanted.All : ends ? LogitsWanted.Last : LogitsWanted.None;
                    batch.Add(new BatchEntry(prompts[i].AsMemory(fed[i], take), fed[i], tables[i], wanted));
                    members.Add((i, wanted, take));
                    fed[i] += take;
                }
                else
                {
                    int pos = len + produced[i] - 1;
                    batch.Add(new BatchEntry(new[] { (forced ?? ids)[i][produced[i] - 1] }, pos, tables[i], LogitsWanted.Last));
                    members.Add((i, LogitsWanted.Last, 1));
                }
            }
            var logits = new float[batch.LogitRows * vocab];
            model.Forward(batch, cache, logits);
            int row = 0;
            foreach (var (seq, wanted, tokens) in members)
            {
                int count = wanted == LogitsWanted.All ? tokens : wanted == LogitsWanted.Last ? 1 : 0;
                if (seq == 0 && wanted == LogitsWanted.All)
                    logits.AsSpan(row * vocab, count * vocab).CopyTo(prompt0.AsSpan((fed[0] - tokens) * vocab));
                // Last rows (decode, or a prompt's final chunk) and the final row of an All chunk that ends the prompt.
                if (wanted == LogitsWanted.Last || wanted == LogitsWanted.All && fed[seq] == prompts[seq].Length)
                {
                    var r = logits.AsSpan((row + count - 1) * vocab, vocab).ToArray();
                    rows[seq][produced[seq]] = r;
                    ids[seq][produced[seq]++] = LlamaGoldenTests.Argmax(r);
                }
                row += count;
            }
            Assert.Equal(batch.LogitRows, row);
        }
        return (ids, rows, prompt0);
    }

    static float MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = MathF.Max(m, MathF.Abs(a[i] - b[i]));
        return m;
    }

    static int BlocksFor(int[][] prompts, int generate, int blockSize) =>
        prompts.Sum(p => (p.Length + generate + blockSize - 1) / blockSize) + 5;

    [GoldenTheory]
    [MemberData(nameof(GoldenModels))]
    public void StaggeredBatchMatchesEachSequenceAlone(string relative)
    {
        using var opened = Open(relative);
        var model = opened.Model;
        var prompts = Prompts(model.VocabSize);
        var alone = prompts.Select(p => Alone(model, p, Generate)).ToArray();
        var cache = model.CreatePagedCache(BlockSize, BlocksFor(prompts, Generate, BlockSize), KvType.F32);
        var (ids, rows, prompt0) = Batched(model, cache, prompts, Generate);

        float worst = MaxAbs(prompt0, alone[0].PromptLogits);
        for (int i = 0; i < Sequences; i++)
        {
            Assert.Equal(alone[i].Ids, ids[i]);
            for (int k = 0; k < Generate; k++) worst = MathF.Max(worst, MaxAbs(rows[i][k], alone[i].Logits[k]));
        }
        output.WriteLine($"{relative}: batched vs alone max |diff| {worst:E2}");
        Assert.True(worst <= 1e-5f, $"max |diff| {worst}");
        // The generated ids are not all one token (the comparison could not pass vacuously).
        Assert.True(ids.SelectMany(x => x).Distinct().Count() > 1);
    }

    /// <summary>
    /// 16-bit caches, teacher-forced with each sequence's F32 greedy ids (so every row compares the same context):
    /// the same greedy ids on the float goldens. Measured max |logit diff| (logits up to ~9.4): dense f32 F16 2.7e-3,
    /// BF16 2.1e-2; deepseek3 F16 4.1e-3, BF16 2.3e-2; deepseek2-lite f32 F16 1.6e-2, BF16 0.73 (a flipped expert
    /// choice). On Q8_0 models activations are re-quantised before every matrix, so a rounded cache value can flip
    /// an int8 rounding or a routing choice: up to 0.12 (qwen2) / 1.4 (deepseek2-lite), 41-45 of 48 ids agree.
    /// deepseek2-lite f32 BF16's flipped expert moves logits by 0.73, enough to flip a near-tie greedy id: 48/48 agree
    /// on the vector paths, 47/48 under DOTNET_EnableHWIntrinsic=0 (scalar), so that row asks for 47.
    /// </summary>
    [GoldenTheory]
    [InlineData("llamacpp/qwen2-tiny-f32.gguf", KvType.F16, 1.0, 5e-3)]
    [InlineData("llamacpp/qwen2-tiny-f32.gguf", KvType.BF16, 1.0, 3e-2)]
    [InlineData("llamacpp/llama-tiny-f32.gguf", KvType.F16, 1.0, 5e-3)]
    [InlineData("llamacpp/llama-tiny-f32.gguf", KvType.BF16, 1.0, 3e-2)]
    [InlineData("llamacpp/qwen2-tiny-q8_0.gguf", KvType.F16, 0.9, 0.25)]
    [InlineData("llamacpp/qwen2-tiny-q8_0.gguf", KvType.BF16, 0.9, 0.25)]
    [InlineData("llamacpp/deepseek2-lite-tiny-f32.gguf", KvType.F16, 1.0, 3e-2)]
    [InlineData("llamacpp/deepseek2-lite-tiny-f32.gguf", KvType.BF16, 0.97, 1.0)]
    [InlineData("llamacpp/deepseek2-lite-tiny-q8_0.gguf", KvType.F16, 0.8, 2.0)]
    [InlineData("llamacpp/deepseek2-lite-tiny-q8_0.gguf", KvType.BF16, 0.8, 2.0)]
    [InlineData("llamacpp/deepseek3-tiny-f32.gguf", KvType.F16, 1.0, 1e-2)]
    [InlineData("llamacpp/deepseek3-tiny-f32.gguf", KvType.BF16, 1.0, 5e-2)]
    public void HalfPrecisionCachesKeepTheGreedyIds(string relative, KvType type, double minAgreement, double maxDiff)
    {
        using var opened = Open(relative);
        var model = opened.Model;
        var prompts = Prompts(model.VocabSize);
        var alone = prompts.Select(p => Alone(model, p, Generate)).ToArray();
        var cache = model.CreatePagedCache(BlockSize, BlocksFor(prompts, Generate, BlockSize), type);
        Assert.Equal(type, cache.Type);
        Assert.Equal(model.KvBytesPerToken(type) * BlockSize, cache.BytesPerBlock);
        var (ids, rows, _) = Batched(model, cache, prompts, Generate, alone.Select(a => a.Ids).ToArray());
        float worst = 0, scale = 0;
        int agree = 0;
        for (int i = 0; i < Sequences; i++)
            for (int k = 0; k < Generate; k++)
            {
                worst = MathF.Max(worst, MaxAbs(rows[i][k], alone[i].Logits[k]));
                scale = MathF.Max(scale, alone[i].Logits[k].Max(MathF.Abs));
                if (ids[i][k] == alone[i].Ids[k]) agree++;
            }
        output.WriteLine($"{relative} {type}: max |diff| {worst:E2} (logits up to {scale:F2}), {agree}/{Sequences * Generate} greedy ids agree");
        Assert.True(agree >= minAgreement * Sequences * Generate, $"{agree}/{Sequences * Generate} greedy ids agree");
        Assert.True(worst > 0, "a 16-bit cache rounds something");
        Assert.True(worst <= maxDiff, $"max |diff| {worst}");
    }

    /// <summary>More rows than one pass takes (MaxStepTokens 5): the batch is cut into passes, same logits.</summary>
    [GoldenTheory]
    [InlineData("llamacpp/qwen2-tiny-f32.gguf")]
    [InlineData("llamacpp/deepseek3-tiny-f32.gguf")]
    public void StepsLargerThanOnePassAreChunked(string relative)
    {
        using var wide = Open(relative);
        using var narrow = Open(relative, new ModelOptions { Threads = 2, MaxStepTokens = 5 });
        var prompts = Prompts(wide.Model.VocabSize);
        var batch = new ForwardBatch();
        int blocks = 0;
        foreach (var p in prompts)
        {
            int need = (p.Length + BlockSize - 1) / BlockSize;
            batch.Add(new BatchEntry(p, 0, Enumerable.Range(blocks, need).ToArray(), LogitsWanted.All));
            blocks += need;
        }
        Assert.True(batch.TotalTokens > 5);
        var a = new float[batch.LogitRows * wide.Model.VocabSize];
        var b = new float[a.Length];
        wide.Model.Forward(batch, wide.Model.CreatePagedCache(BlockSize, blocks, KvType.F32), a);
        narrow.Model.Forward(batch, narrow.Model.CreatePagedCache(BlockSize, blocks, KvType.F32), b);
        float d = MaxAbs(a, b);
        output.WriteLine($"{relative}: one pass vs passes of 5 rows max |diff| {d:E2}");
        Assert.True(d <= 1e-5f, $"max |diff| {d}");
        Assert.NotEqual(0f, a[^1]);
    }

    /// <summary>Export → import and CopyBlock move exactly the bytes, and a sequence continues identically from a copied block.</summary>
    [GoldenTheory]
    [InlineData("llamacpp/qwen2-tiny-f32.gguf", KvType.F32)]
    [InlineData("llamacpp/qwen2-tiny-f32.gguf", KvType.BF16)]
    [InlineData("llamacpp/deepseek2-lite-tiny-q8_0.gguf", KvType.F16)]
    public void BlocksCopyExportAndImportRoundTrip(string relative, KvType type)
    {
        using var opened = Open(relative);
        var model = opened.Model;
        int vocab = model.VocabSize;
        var cache = model.CreatePagedCache(BlockSize, 8, type);
        Assert.Contains(type.ToString().ToLowerInvariant(), cache.Layout);
        Assert.Contains($"block={BlockSize}", cache.Layout);
        int[] prompt = [5, 9, 2, 7, 11, 3, 8]; // positions 0..6: blocks 6 (full) and 1 (3 of 4 slots)
        var batch = new ForwardBatch();
        batch.Add(new BatchEntry(prompt, 0, new[] { 6, 1 }, LogitsWanted.Last));
        var first = new float[vocab];
        model.Forward(batch, cache, first);

        var exported = new byte[cache.BytesPerBlock];
        cache.ExportBlock(6, exported);
        Assert.Contains(exported, x => x != 0);
        cache.ImportBlock(3, exported);                      // block 3 := block 6 via bytes
        cache.CopyBlock(1, 4);                               // block 4 := block 1 (copy-on-write of the partial block)
        var again = new byte[cache.BytesPerBlock];
        cache.ExportBlock(3, again);
        Assert.Equal(exported, again);
        var b1 = new byte[cache.BytesPerBlock];
        var b4 = new byte[cache.BytesPerBlock];
        cache.ExportBlock(1, b1);
        cache.ExportBlock(4, b4);
        Assert.Equal(b1, b4);
        Assert.NotEqual(exported, b1);

        // Continue the sequence from the original blocks and from the copies: same next-token logits.
        var viaOriginal = new float[vocab];
        var viaCopies = new float[vocab];
        batch.Clear();
        batch.Add(new BatchEntry(new[] { 4 }, prompt.Length, new[] { 6, 1 }, LogitsWanted.Last));
        model.Forward(batch, cache, viaOriginal);
        batch.Clear();
        batch.Add(new BatchEntry(new[] { 4 }, prompt.Length, new[] { 3, 4 }, LogitsWanted.Last));
        model.Forward(batch, cache, viaCopies);
        Assert.Equal(viaOriginal, viaCopies);
        Assert.Throws<ArgumentException>(() => cache.ExportBlock(0, new byte[cache.BytesPerBlock - 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.CopyBlock(0, 8));
    }

    /// <summary>
    /// Prefix reuse as the scheduler's prefix cache does it: two sequences in one batch read the same full
    /// blocks of a common prompt (never writing them) and continue in blocks of their own.
    /// </summary>
    [GoldenTheory]
    [InlineData("llamacpp/llama-tiny-f32.gguf")]
    [InlineData("llamacpp/deepseek2-lite-tiny-q8_0.gguf")]
    [InlineData("hf/v3_fp8")]
    public void SequencesSharePrefixBlocks(string relative)
    {
        using var opened = Open(relative);
        var model = opened.Model;
        int vocab = model.VocabSize;
        int[] prefix = [3, 1, 4, 1, 5, 9, 2, 6];             // two full blocks of 4
        int[] tailA = [5, 3, 5], tailB = [8, 9, 7, 9, 3];
        var cache = model.CreatePagedCache(BlockSize, 8, KvType.F32);
        var batch = new ForwardBatch();
        batch.Add(new BatchEntry(prefix, 0, new[] { 5, 2 }, LogitsWanted.None));
        model.Forward(batch, cache, Span<float>.Empty);

        batch.Clear();
        batch.Add(new BatchEntry(tailA, prefix.Length, new[] { 5, 2, 7 }, LogitsWanted.Last));
        batch.Add(new BatchEntry(tailB, prefix.Length, new[] { 5, 2, 0, 4 }, LogitsWanted.Last));
        var logits = new float[2 * vocab];
        model.Forward(batch, cache, logits);

        var a = Alone(model, [.. prefix, .. tailA], 1).Logits[0];
        var b = Alone(model, [.. prefix, .. tailB], 1).Logits[0];
        Assert.True(MaxAbs(logits.AsSpan(0, vocab), a) <= 1e-5f);
        Assert.True(MaxAbs(logits.AsSpan(vocab, vocab), b) <= 1e-5f);
        Assert.True(MaxAbs(a, b) > 1e-3f, "the two continuations differ");
    }

    /// <summary>Steady-state batched decode (8 sequences, same shape each step) allocates nothing on the calling thread.</summary>
    [GoldenTheory]
    [InlineData("llamacpp/qwen2-tiny-q8_0.gguf", KvType.F32)]
    [InlineData("llamacpp/llama-tiny-f32.gguf", KvType.F16)]
    [InlineData("llamacpp/deepseek2-lite-tiny-q8_0.gguf", KvType.F32)]
    [InlineData("llamacpp/deepseek3-tiny-f32.gguf", KvType.BF16)]
    public void BatchedDecodeAllocatesNothing(string relative, KvType type)
    {
        // One worker thread: the pool's cross-thread wake-ups occasionally allocate a few bytes.
        using var opened = Open(relative, new ModelOptions { Threads = 1 });
        var model = opened.Model;
        int vocab = model.VocabSize, blocksPer = 32;
        var cache = model.CreatePagedCache(BlockSize, Sequences * blocksPer, type);
        var tables = Enumerable.Range(0, Sequences).Select(i => Enumerable.Range(0, blocksPer).Select(b => b * Sequences + i).ToArray()).ToArray();
        var tokens = Enumerable.Range(0, Sequences).Select(i => new[] { 1 + i }).ToArray();
        var batch = new ForwardBatch();
        var logits = new float[Sequences * vocab];
        void Step(int pos)
        {
            batch.Clear();
            for (int i = 0; i < Sequences; i++)
            {
                tokens[i][0] = (pos * 7 + i) % vocab;
                batch.Add(new BatchEntry(tokens[i], pos, tables[i], LogitsWanted.Last));
            }
            model.Forward(batch, cache, logits);
        }
        for (int pos = 0; pos < 8; pos++) Step(pos); // warm-up (JIT, tiering, scratch)
        var windows = SteadyAllocation.Windows(32, i => Step(8 + i));
        output.WriteLine($"{relative} {type}: {string.Join(", ", windows)} bytes over windows of 32 batched decode steps of {Sequences} sequences");
        Assert.Equal(0, windows[^1]);
        Assert.Contains(logits, x => x != 0);
    }

    [GoldenFact]
    public void BadBatchesAreClearErrors()
    {
        using var opened = Open("llamacpp/qwen2-tiny-f32.gguf");
        var model = opened.Model;
        int vocab = model.VocabSize, context = model.Description.ContextLength;
        var cache = model.CreatePagedCache(BlockSize, 4, KvType.F32);
        var batch = new ForwardBatch();

        batch.Add(new BatchEntry(new[] { 1, vocab }, 0, new[] { 0 }, LogitsWanted.Last));
        var ex = Assert.Throws<JevonsException>(() => model.Forward(batch, cache, new float[vocab]));
        Assert.Contains($"token id {vocab}", ex.Message);

        batch.Clear();
        batch.Add(new BatchEntry(new[] { 1, 2, 3, 4, 5 }, 0, new[] { 0 }, LogitsWanted.Last)); // 5 positions need 2 blocks
        var arg = Assert.Throws<ArgumentException>(() => model.Forward(batch, cache, new float[vocab]));
        Assert.Contains("need 2 blocks", arg.Message);

        batch.Clear();
        batch.Add(new BatchEntry(new[] { 1 }, 0, new[] { 4 }, LogitsWanted.Last)); // block 4 of 0..3
        arg = Assert.Throws<ArgumentException>(() => model.Forward(batch, cache, new float[vocab]));
        Assert.Contains("block id 4", arg.Message);

        batch.Clear();
        batch.Add(new BatchEntry(new[] { 1 }, context, new int[context / BlockSize + 1], LogitsWanted.Last));
        ex = Assert.Throws<JevonsException>(() => model.Forward(batch, cache, new float[vocab]));
        Assert.Contains($"context length of {context}", ex.Message);

        batch.Clear();
        batch.Add(new BatchEntry(new[] { 1 }, 0, new[] { 0 }, LogitsWanted.Last));
        Assert.Throws<ArgumentException>(() => model.Forward(batch, cache, new float[vocab + 1]));
        using var other = Open("llamacpp/qwen2-tiny-f32.gguf");
        Assert.Throws<ArgumentException>(() => model.Forward(batch, other.Model.CreatePagedCache(BlockSize, 4, KvType.F32), new float[vocab]));
        Assert.Throws<ArgumentException>(() => batch.Add(new BatchEntry(Array.Empty<int>(), 0, new[] { 0 }, LogitsWanted.Last)));

        // An absurd cache is refused up front, not an OutOfMemoryException.
        ex = Assert.Throws<JevonsException>(() => model.CreatePagedCache(1024, int.MaxValue / 2, KvType.F32));
        Assert.Contains("use fewer blocks", ex.Message);
    }

    [GoldenFact]
    public void FingerprintIsStableAndTellsModelsApart()
    {
        string Fp(string relative)
        {
            using var o = Open(relative);
            return o.Model.Fingerprint;
        }
        string a = Fp("llamacpp/qwen2-tiny-f32.gguf");
        Assert.Equal(a, Fp("llamacpp/qwen2-tiny-f32.gguf"));
        Assert.StartsWith("qwen2-", a);
        Assert.Equal("qwen2-".Length + 32, a.Length);
        Assert.NotEqual(a, Fp("llamacpp/qwen2-tiny-q8_0.gguf"));   // same shapes, other tensor types
        Assert.NotEqual(Fp("llamacpp/deepseek2-lite-tiny-f32.gguf"), Fp("llamacpp/deepseek3-tiny-f32.gguf"));
    }

    [GoldenFact]
    public void KvBytesPerTokenFollowsTheElementType()
    {
        using var qwen = Open("llamacpp/qwen2-tiny-f32.gguf");
        using var ds = Open("llamacpp/deepseek2-lite-tiny-f32.gguf");
        var q = (Llama)qwen.Model;
        var d = (DeepSeek)ds.Model;
        Assert.Equal(2L * q.Config.Layers * q.Config.KvHeads * q.Config.HeadDim * 4, q.KvBytesPerToken(KvType.F32));
        Assert.Equal(q.KvBytesPerToken(KvType.F32) / 2, q.KvBytesPerToken(KvType.BF16));
        Assert.Equal(q.Description.KvBytesPerToken, q.KvBytesPerToken(KvType.F32));
        Assert.Equal((long)d.Config.Layers * (d.Config.KvLoraRank + d.Config.QkRopeHeadDim) * 2, d.KvBytesPerToken(KvType.F16));
        Assert.Equal(d.KvBytesPerToken(KvType.F16) * 16 * 3, d.CreatePagedCache(16, 3, KvType.F16).Bytes);
    }

    [GoldenFact]
    public void SingleSequenceStateWithA16BitCache()
    {
        using var opened = Open("llamacpp/qwen2-tiny-f32.gguf");
        var model = (DecoderModel)opened.Model;
        int[] prompt = [11, 22, 33, 44, 55, 66];
        var f32 = new float[model.VocabSize];
        var f16 = new float[model.VocabSize];
        model.Forward(model.CreateState(16), prompt, f32);
        var state = (DecoderState)model.CreateState(16, KvType.F16);
        Assert.Equal(KvType.F16, state.Cache.Type);
        model.Forward(state, prompt, f16);
        Assert.Equal(prompt.Length, state.Length);
        Assert.Equal(LlamaGoldenTests.Argmax(f32), LlamaGoldenTests.Argmax(f16));
        float d = MaxAbs(f32, f16);
        Assert.True(d > 0 && d < 5e-3f, $"max |diff| {d}");
    }
}
