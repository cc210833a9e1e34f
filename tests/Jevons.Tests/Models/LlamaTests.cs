using System.Text.Json;
using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Numerics;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Models;

/// <summary>Loading errors, sequence handling and the description of the Llama / Qwen2 model.</summary>
public sealed class LlamaTests
{
    static readonly ModelOptions Options = new() { Threads = 2 };

    static string GoldenPath(string name) => Golden.File("llamacpp", name + ".gguf")!;

    static LlamaTestSource Wrap(string name) => LlamaTestSource.Wrap(LlamaGoldenTests.OpenSource(GoldenPath(name)));

    static JevonsException LoadFails(LlamaTestSource src, string arch = "qwen2")
    {
        var ex = Assert.Throws<JevonsException>(() => Llama.Create(src.ToModelSource(ModelFormat.Gguf, arch), Options));
        Assert.DoesNotContain('\n', ex.Message);
        return ex;
    }

    [GoldenFact]
    public void MissingTensorNamesFileAndTensor()
    {
        var ex = LoadFails(Wrap("qwen2-tiny-f32").Hide("blk.1.ffn_up.weight"));
        Assert.Contains("qwen2-tiny-f32.gguf", ex.Message);
        Assert.Contains("'blk.1.ffn_up.weight'", ex.Message);
        Assert.Contains("missing", ex.Message);
    }

    [GoldenFact]
    public void MissingQwen2BiasIsAnError()
    {
        var ex = LoadFails(Wrap("qwen2-tiny-f32").Hide("blk.0.attn_k.bias"));
        Assert.Contains("'blk.0.attn_k.bias'", ex.Message);
    }

    [GoldenFact]
    public void TensorShapeDisagreeingWithConfigIsAnError()
    {
        // attn_q must be [n_embd, n_embd] for qwen2; same bytes, wrong shape.
        var ex = LoadFails(Wrap("qwen2-tiny-f32").Reshape("blk.0.attn_q.weight", [64, 256]));
        Assert.Contains("qwen2-tiny-f32.gguf", ex.Message);
        Assert.Contains("'blk.0.attn_q.weight'", ex.Message);
        Assert.Contains("[64, 256]", ex.Message);
        Assert.Contains("expected [128, 128]", ex.Message);
    }

    [GoldenFact]
    public void ConfigDisagreeingWithTensorsIsAnError()
    {
        // 4 KV heads of 32 would make attn_k [128, 128]; the file has [64, 128].
        var ex = LoadFails(Wrap("qwen2-tiny-f32").Set("qwen2.attention.head_count_kv", 4L));
        Assert.Contains("'blk.0.attn_k.weight'", ex.Message);
        Assert.Contains("expected [128, 128]", ex.Message);
    }

    [GoldenFact]
    public void MissingRequiredFieldIsNamed()
    {
        var ex = LoadFails(Wrap("qwen2-tiny-f32").Set("qwen2.embedding_length", null));
        Assert.Contains("'qwen2.embedding_length'", ex.Message);
        Assert.Contains("missing", ex.Message);
    }

    [GoldenFact]
    public void UnsupportedRopeScalingIsNamed()
    {
        var ex = LoadFails(Wrap("qwen2-tiny-f32").Set("qwen2.rope.scaling.type", "yarn"));
        Assert.Contains("'qwen2.rope.scaling.type'", ex.Message);
        Assert.Contains("yarn", ex.Message);
    }

    [GoldenFact]
    public void ForeignArchitectureIsRejected()
    {
        var ex = LoadFails(Wrap("qwen2-tiny-f32"), "gpt2");
        Assert.Contains("'gpt2'", ex.Message);
        Assert.False(Llama.Supports("gpt2"));
        Assert.True(Llama.Supports("Qwen2ForCausalLM") && Llama.Supports("LlamaForCausalLM") && Llama.Supports("llama") && Llama.Supports("qwen2"));
    }

    [GoldenTheory]
    [InlineData(2006)]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    public void TokenOutOfVocabularyIsAnError(int id)
    {
        using var model = LlamaGoldenTests.Open("qwen2-tiny-f32");
        var state = model.CreateState(16);
        var ex = Assert.Throws<JevonsException>(() => model.Forward(state, [5, id], new float[model.VocabSize]));
        Assert.Contains($"token id {id}", ex.Message);
        Assert.Contains("2006", ex.Message);
        Assert.Equal(0, state.Length);
    }

    [GoldenFact]
    public void SequenceLongerThanCapacityIsAnError()
    {
        using var model = LlamaGoldenTests.Open("qwen2-tiny-f32");
        var state = model.CreateState(8);
        var logits = new float[model.VocabSize];
        var ex = Assert.Throws<JevonsException>(() => model.Forward(state, [1, 2, 3, 4, 5, 6, 7, 8, 9], logits));
        Assert.Contains("capacity of 8", ex.Message);
        model.Forward(state, [1, 2, 3, 4, 5], logits);
        ex = Assert.Throws<JevonsException>(() => model.Forward(state, [6, 7, 8, 9], logits));
        Assert.Contains("9 tokens", ex.Message);
        Assert.Equal(5, state.Length);
        model.Forward(state, [6, 7, 8], logits);
        Assert.Equal(8, state.Length);
    }

    [GoldenFact]
    public void WrongLogitsLengthIsAnArgumentError()
    {
        using var model = LlamaGoldenTests.Open("qwen2-tiny-f32");
        var state = model.CreateState(8);
        Assert.Throws<ArgumentException>(() => model.Forward(state, [1, 2], new float[model.VocabSize + 1]));
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("llama-tiny-f32")]
    public void PrefillInPiecesAndAfterTruncateMatchesOneBatch(string name)
    {
        var g = LlamaGoldenTests.Load(name);
        using var model = LlamaGoldenTests.Open(name);
        int n = g.PromptIds.Length, v = g.Vocab, split = 10;
        var state = model.CreateState(64);
        var logits = new float[n * v];
        model.Forward(state, g.PromptIds.AsSpan(0, split), logits.AsSpan(0, split * v));
        model.Forward(state, g.PromptIds.AsSpan(split), logits.AsSpan(split * v));
        AssertClose(g.Logits, logits, 1e-3f);

        // Prefix reuse: forget the tail and evaluate it again, token by token.
        state.Truncate(split);
        var row = new float[v];
        for (int p = split; p < n; p++)
        {
            model.Forward(state, [g.PromptIds[p]], row);
            AssertClose(g.Logits.AsSpan(p * v, v), row, 1e-3f);
        }
    }

    [GoldenFact]
    public void TiedEmbeddingsUseTheTokenEmbeddingAsOutput()
    {
        // Two views of the same numbers: token_embd := output.weight, once tied (output absent), once untied.
        var tied = Wrap("qwen2-tiny-f32").Alias("token_embd.weight", "output.weight").Hide("output.weight");
        var untied = Wrap("qwen2-tiny-f32").Alias("token_embd.weight", "output.weight");
        using var a = (Llama)Llama.Create(tied.ToModelSource(ModelFormat.Gguf, "qwen2"), Options);
        using var b = (Llama)Llama.Create(untied.ToModelSource(ModelFormat.Gguf, "qwen2"), Options);
        Assert.True(a.Config.TiedEmbeddings);
        Assert.False(b.Config.TiedEmbeddings);
        int[] ids = [3, 300, 1200, 7];
        var la = new float[ids.Length * a.VocabSize];
        var lb = new float[ids.Length * b.VocabSize];
        a.Forward(a.CreateState(8), ids, la);
        b.Forward(b.CreateState(8), ids, lb);
        Assert.Equal(lb, la);
        Assert.True(a.Description.TotalParameters < b.Description.TotalParameters);
        Assert.Equal(a.Description.TotalParameters, a.Description.ActiveParameters);
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32", 2, 2, 1024L)]
    [InlineData("llama-tiny-f32", 3, 1, 768L)]
    public void DescriptionReportsParametersBytesAndKvCache(string name, int layers, int kvHeads, long kvBytesPerToken)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Golden.File("llamacpp", name + ".json")!));
        var tensors = doc.RootElement.GetProperty("tensors").EnumerateArray()
            .Select(t => (Name: t.GetProperty("name").GetString()!, Count: t.GetProperty("ne").EnumerateArray().Aggregate(1L, (p, e) => p * e.GetInt64())))
            .ToList();
        long total = tensors.Where(t => t.Name != "rope_freqs.weight").Sum(t => t.Count); // rope factors are not parameters
        long bytes = tensors.Sum(t => t.Count) * 4;
        long embed = tensors.Single(t => t.Name == "token_embd.weight").Count;

        using var model = LlamaGoldenTests.Open(name);
        var d = model.Description;
        Assert.Equal(layers, d.Layers);
        Assert.Equal(kvBytesPerToken, d.KvBytesPerToken);
        Assert.Equal(layers * 2L * kvHeads * 32 * 4, d.KvBytesPerToken);
        Assert.Equal(total, d.TotalParameters);
        Assert.Equal(total - embed + d.HiddenSize, d.ActiveParameters);
        Assert.Equal(bytes, d.WeightBytesByType[DType.F32]);
        Assert.Single(d.WeightBytesByType);
        Assert.Equal(2006, d.VocabSize);
        Assert.Contains(d.Details, kv => kv.Key == "kv heads" && kv.Value == kvHeads.ToString());
    }

    [GoldenFact]
    public void DescriptionOfQ8_0CountsQuantisedBytes()
    {
        using var model = LlamaGoldenTests.Open("qwen2-tiny-q8_0");
        var d = model.Description;
        Assert.True(d.WeightBytesByType[DType.Q8_0] > 0);
        Assert.True(d.WeightBytesByType[DType.F32] > 0); // norms and biases stay F32
        Assert.Equal(4096, d.ContextLength); // qwen2.context_length
    }

    internal static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(MathF.Abs(expected[i] - actual[i]) < tolerance))
                Assert.Fail($"index {i} (row {i / 2006}): expected {expected[i]}, got {actual[i]}");
    }
}

/// <summary>RoPE frequencies and rotation layouts, KV cache sizing.</summary>
public sealed class LlamaBlocksTests
{
    [Fact]
    public void RotateNormPairsAdjacentAndNeoxPairsHalves()
    {
        float[] cos = [0, 1], sin = [1, 0]; // pair 0 turns 90 degrees, pair 1 stays
        float[] norm = [1, 2, 3, 4], neox = [1, 2, 3, 4];
        RopeFrequencies.Rotate(norm, cos, sin, neox: false);
        RopeFrequencies.Rotate(neox, cos, sin, neox: true);
        Assert.Equal([-2f, 1, 3, 4], norm);
        Assert.Equal([-3f, 2, 1, 4], neox);
    }

    [Fact]
    public void PlainFrequenciesAreBasePowers()
    {
        var r = RopeFrequencies.Create(8, 10000, RopeScaling.None, [], neox: true);
        Assert.Equal(4, r.Pairs);
        Assert.Equal(1.0, r.InverseFrequency(0));
        Assert.Equal(0.1, r.InverseFrequency(1), 12);
        Assert.Equal(0.001, r.InverseFrequency(3), 12);
        var lin = RopeFrequencies.Create(8, 10000, new RopeScaling(RopeScalingKind.Linear, 4), [], neox: true);
        Assert.Equal(0.025, lin.InverseFrequency(1), 12);
        float[] cos = new float[4], sin = new float[4];
        r.Angles(3, cos, sin);
        Assert.Equal(MathF.Cos(0.3f), cos[1], 6);
        Assert.Equal(MathF.Sin(3f), sin[0], 6);
    }

    [GoldenFact]
    public void Llama3ScalingReproducesTheGgufRopeFreqsFactors()
    {
        // llama-tiny-f32 stores llama.cpp's rope_freqs (factor 8, low 1, high 4, original 8192, theta 5e5, head_dim 32).
        using var src = LlamaGoldenTests.OpenSource(Golden.File("llamacpp", "llama-tiny-f32.gguf")!);
        var factors = src.Weights.Get("rope_freqs.weight").ToFloatArray();
        var fromFactors = RopeFrequencies.Create(32, 500000, RopeScaling.None, factors, neox: false);
        var fromConfig = RopeFrequencies.Create(32, 500000, new RopeScaling(RopeScalingKind.Llama3, 8, 1, 4, 8192), [], neox: true);
        int scaled = 0;
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(fromFactors.InverseFrequency(i), fromConfig.InverseFrequency(i), fromFactors.InverseFrequency(i) * 1e-6);
            if (factors[i] != 1) scaled++;
        }
        Assert.True(scaled > 0 && factors[0] == 1 && factors[15] == 8, "the file exercises unscaled, smoothed and fully scaled pairs");
    }

    [Fact]
    public void KvBytesPerTokenOfRealModels()
    {
        Assert.Equal(28L * 2 * 2 * 128 * 4, GqaPagedCache.BytesPerToken(28, 2, 128, KvType.F32));   // R1-Distill-Qwen-1.5B: 57344
        Assert.Equal(32L * 2 * 8 * 128 * 4, GqaPagedCache.BytesPerToken(32, 8, 128, KvType.F32));   // R1-Distill-Llama-8B: 262144
        Assert.Equal(32L * 2 * 8 * 128 * 2, GqaPagedCache.BytesPerToken(32, 8, 128, KvType.BF16));
        var cache = new GqaPagedCache(new object(), blockSize: 4, blocks: 2, KvType.F32, layers: 2, kvHeads: 2, headDim: 4, maxStepTokens: 8);
        Assert.Equal(2L * 2 * 8 * 8 * 4, cache.Bytes);
        Span<float> ones = [1, 1, 1, 1, 1, 1, 1, 1];
        cache.Keys(1).Write(4, ones);                      // block 1, slot 0
        Assert.Equal(1, cache.Keys(1).Read(4, 7, 1, default)[0]);
        Assert.Equal(0, cache.Keys(0).Read(4, 7, 1, default)[0]);
        Assert.Equal(0, cache.Values(1).Read(4, 7, 1, default)[0]);
    }
}

/// <summary>The decode loop allocates nothing: KV cache and scratch live in the state.</summary>
public sealed class LlamaAllocationTests
{
    // One worker thread: the pool's cross-thread wake-ups (outside this model) occasionally allocate a few bytes.
    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("qwen2-tiny-q8_0")]
    [InlineData("llama-tiny-f32")]
    public void DecodeStepsAllocateNothing(string name)
    {
        using var model = LlamaGoldenTests.Open(name, threads: 1);
        var state = model.CreateState(160);
        var logits = new float[model.VocabSize];
        model.Forward(state, [1, 2, 3, 4, 5], logits);
        for (int i = 0; i < 8; i++) model.Forward(state, [7 + i], logits); // warm up (JIT, tiering)
        var windows = SteadyAllocation.Windows(32, i => model.Forward(state, [100 + i], logits));
        Assert.True(windows[^1] == 0, $"bytes per window of 32 decode steps: {string.Join(", ", windows)}");
    }
}
