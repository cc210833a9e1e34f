using System.Text.Json;
using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Numerics;
using Jevons.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>DeepSeek pieces: YaRN, routers, MLA modes, the split GGUF form, FP8 bytes, description, errors.</summary>
public sealed unsafe class DeepSeekTests(ITestOutputHelper output)
{
    static JsonElement GoldenJson(string variant) =>
        JsonDocument.Parse(File.ReadAllText(Golden.File("hf", variant, "golden.json")!)).RootElement;

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    // ------------------------------------------------------------------ YaRN

    [GoldenTheory]
    [InlineData("v2lite_bf16")]
    [InlineData("v3_bf16")]
    public void InverseFrequenciesAndSoftmaxScaleMatchReference(string variant)
    {
        var derived = GoldenJson(variant).GetProperty("derived");
        using var source = DeepSeekTestFiles.OpenHf(Golden.File("hf", variant)!);
        var cfg = DeepSeekConfig.Read(source);
        var inv = Yarn.InverseFrequencies(cfg.QkRopeHeadDim, cfg.RopeTheta, cfg.Yarn);
        var want = derived.GetProperty("rope_inv_freq").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.Equal(want.Length, inv.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(inv[i] - want[i]) <= 1e-6 * want[i], $"inv_freq[{i}] {inv[i]} vs {want[i]}");
        Assert.Equal(derived.GetProperty("softmax_scale").GetDouble(), Yarn.SoftmaxScale(cfg.QkHeadDim, cfg.Yarn), 6);
    }

    [Fact]
    public void YarnRampBlendsBetweenCorrectionDims()
    {
        // d = 64, θ = 10000, L = 4096, β 32/1: low = floor(10.2) = 10, high = ceil(22.9) = 23.
        var plain = Yarn.InverseFrequencies(64, 10000, null);
        var yarn = Yarn.InverseFrequencies(64, 10000, new YarnSettings(40, 4096, 32, 1, 0.0707));
        for (int i = 0; i <= 10; i++) Assert.Equal(plain[i], yarn[i]);
        for (int i = 23; i < 32; i++) Assert.Equal(plain[i] / 40, yarn[i], 1e-12f);
        float ramp = (16 - 10) / 13f;
        Assert.Equal(plain[16] / 40 * ramp + plain[16] * (1 - ramp), yarn[16], 1e-9f);
        // V2-Lite: m = 1 + 0.0707·ln 40, scale = 192^-0.5 · m².
        double m = 1 + 0.0707 * Math.Log(40);
        Assert.Equal(m * m / Math.Sqrt(192), Yarn.SoftmaxScale(192, new YarnSettings(40, 4096, 32, 1, 0.0707)), 6);
        Assert.Equal(1 / Math.Sqrt(192), Yarn.SoftmaxScale(192, null), 6);
    }

    // ------------------------------------------------------------------ routers

    static Router MakeRouter(int experts, int topK, int groups, int topKGroups, ScoringFunction scoring, TopkMethod method,
        bool norm, float scale, float[]? bias)
    {
        // The gate is not used by Select; a 1-column F32 weight keeps it valid.
        var data = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(experts * 4));
        var gate = new Linear("gate", DType.F32, experts, 1, data, "test");
        return new Router(gate, bias, topK, groups, topKGroups, scoring, method, norm, scale);
    }

    static (int[] Experts, float[] Weights) Select(Router r, float[] logits)
    {
        var e = new int[r.TopK];
        var w = new float[r.TopK];
        r.Select((float[])logits.Clone(), e, w, new float[r.ScratchSize]);
        var order = Enumerable.Range(0, e.Length).OrderBy(i => e[i]).ToArray();
        return (order.Select(i => e[i]).ToArray(), order.Select(i => w[i]).ToArray());
    }

    [Fact]
    public void SoftmaxGreedyTakesTopProbabilitiesWithoutRenormalising()
    {
        float[] logits = [0.1f, 2f, -1f, 1.5f, 0.3f, 0f];
        var r = MakeRouter(6, 2, 1, 1, ScoringFunction.Softmax, TopkMethod.Greedy, false, 1.5f, null);
        var (e, w) = Select(r, logits);
        Assert.Equal([1, 3], e);
        double z = logits.Sum(v => Math.Exp(v));
        Assert.Equal(Math.Exp(2) / z * 1.5, w[0], 5);
        Assert.Equal(Math.Exp(1.5) / z * 1.5, w[1], 5);
    }

    [Fact]
    public void GroupLimitedGreedyKeepsGroupsByTheirMaxProbability()
    {
        // 3 groups of 2: group maxima 0.9 (g0), 1.0 (g1), 0.95 (g2); keep 2 groups → g1, g2.
        // The globally second-best expert 0 (in g0) must be excluded.
        float[] logits = [0.9f, 0.85f, 1.0f, -3f, 0.95f, -2f];
        var r = MakeRouter(6, 2, 3, 2, ScoringFunction.Softmax, TopkMethod.GroupLimitedGreedy, false, 1f, null);
        var (e, _) = Select(r, logits);
        Assert.Equal([2, 4], e);
        var greedy = MakeRouter(6, 2, 3, 2, ScoringFunction.Softmax, TopkMethod.Greedy, false, 1f, null);
        Assert.Equal([2, 4], Select(greedy, logits).Experts); // same top-2 here; now force a difference
        float[] l2 = [0.99f, 0.98f, 1.0f, -3f, 0.5f, -2f]; // maxima g0 0.99, g1 1.0, g2 0.5
        var r1 = MakeRouter(6, 2, 3, 1, ScoringFunction.Softmax, TopkMethod.GroupLimitedGreedy, false, 1f, null);
        Assert.Equal([2, 3], Select(r1, l2).Experts); // only g1 survives
    }

    [Fact]
    public void NoAuxTcSelectsByBiasedScoresAndWeightsByUnbiasedNormalisedSigmoid()
    {
        // 4 groups of 2, keep 2 by the sum of the top-2 biased scores, top-2 overall.
        float[] logits = [2f, -2f, 0f, 0f, 1f, 1f, -1f, 3f];
        float[] bias = [0f, 0f, 0.6f, 0.6f, 0f, 0f, 0f, -1.5f];
        var r = MakeRouter(8, 2, 4, 2, ScoringFunction.Sigmoid, TopkMethod.NoAuxTc, true, 2.5f, bias);
        static float Sig(float v) => 1 / (1 + MathF.Exp(-v));
        // biased: g0 {0.881, 0.119} sum 1.0; g1 {1.1, 1.1} sum 2.2; g2 {0.731, 0.731} 1.462; g3 {0.269, -0.547} -0.28
        // keep g1, g2 → top-2 biased: experts 2, 3 (1.1 each) → weights sig(0)/(2 sig(0)) · 2.5 = 1.25.
        var (e, w) = Select(r, logits);
        Assert.Equal([2, 3], e);
        Assert.Equal(1.25f, w[0], 5);
        Assert.Equal(1.25f, w[1], 5);
        // Without groups, expert 0 (0.881) and 2/3 (1.1) compete: top-2 = 2, 3 still; top-3 adds 0.
        var r3 = MakeRouter(8, 3, 1, 1, ScoringFunction.Sigmoid, TopkMethod.NoAuxTc, true, 1f, bias);
        var (e3, w3) = Select(r3, logits);
        Assert.Equal([0, 2, 3], e3);
        float sum = Sig(2) + 2 * Sig(0);
        Assert.Equal(Sig(2) / sum, w3[0], 5);
    }

    // ------------------------------------------------------------------ MLA modes, split form, FP8, MTP

    [GoldenTheory]
    [InlineData("v2lite_bf16")]
    [InlineData("v3_bf16")]
    [InlineData("v3_fp8")]
    public void AbsorbedAndDecompressedAgree(string variant)
    {
        var dir = Golden.File("hf", variant)!;
        using var source = DeepSeekTestFiles.OpenHf(dir);
        using var absorbed = DeepSeek.Create(source, new ModelOptions { Threads = 1 }, MlaAttentionMode.Absorbed);
        using var plain = DeepSeek.Create(source, new ModelOptions { Threads = 1 }, MlaAttentionMode.Decompressed);
        var c = GoldenJson(variant).GetProperty("cases")[0];
        var ids = Ints(c.GetProperty("prompt_ids")).Concat(Ints(c.GetProperty("greedy").GetProperty("ids"))[..6]).ToArray();
        int n = ids.Length, vocab = absorbed.VocabSize;
        var a = new float[n * vocab];
        var b = new float[n * vocab];
        // Prefill half, then decode one at a time, so both the batched and the cached paths are compared.
        foreach (var (model, logits) in new[] { (absorbed, a), (plain, b) })
        {
            var st = model.CreateState(n);
            int half = n / 2;
            model.Forward(st, ids.AsSpan(0, half), logits.AsSpan(0, half * vocab));
            for (int t = half; t < n; t++) model.Forward(st, ids.AsSpan(t, 1), logits.AsSpan(t * vocab, vocab));
        }
        float maxDiff = 0, maxMag = 0;
        for (int i = 0; i < a.Length; i++)
        {
            maxDiff = MathF.Max(maxDiff, MathF.Abs(a[i] - b[i]));
            maxMag = MathF.Max(maxMag, MathF.Abs(b[i]));
        }
        output.WriteLine($"{variant}: absorbed vs decompressed max-abs {maxDiff:E2}, relative {maxDiff / maxMag:E2}");
        Assert.True(maxDiff / maxMag < 1e-4, $"relative diff {maxDiff / maxMag}");
        var golden = Golden.ReadF32(Path.Combine(dir, c.GetProperty("logits_file").GetString()!));
        int prompt = c.GetProperty("n_tokens").GetInt32();
        for (int i = 0; i < prompt * vocab; i++) Assert.True(MathF.Abs(b[i] - golden[i]) < 1e-3);
    }

    /// <summary>Rewrites a deepseek2 GGUF to llama.cpp's newer split form: attn_k_b [heads, kv_lora, nope], attn_v_b [heads, v, kv_lora].</summary>
    static void SplitKvB(DeepSeekTestFiles.MemoryWeights w, Dictionary<string, object> meta)
    {
        int heads = Convert.ToInt32(meta["deepseek2.attention.head_count"]);
        int kvLora = Convert.ToInt32(meta["deepseek2.attention.kv_lora_rank"]);
        int rope = Convert.ToInt32(meta["deepseek2.rope.dimension_count"]);
        int nope = Convert.ToInt32(meta["deepseek2.attention.key_length"]) - rope;
        int v = Convert.ToInt32(meta["deepseek2.attention.value_length"]);
        foreach (var name in w.Tensors.Keys.Where(k => k.EndsWith(".attn_kv_b.weight")).ToList())
        {
            var kvb = w.Tensors[name].ToFloatArray(); // [heads·(nope+v), kvLora]
            var kb = new float[heads * kvLora * nope];
            var vb = new float[heads * v * kvLora];
            for (int h = 0; h < heads; h++)
                for (int c = 0; c < kvLora; c++)
                {
                    for (int d = 0; d < nope; d++) kb[(h * kvLora + c) * nope + d] = kvb[(h * (nope + v) + d) * kvLora + c];
                    for (int j = 0; j < v; j++) vb[(h * v + j) * kvLora + c] = kvb[(h * (nope + v) + nope + j) * kvLora + c];
                }
            var prefix = name[..^"attn_kv_b.weight".Length];
            w.AddF32(prefix + "attn_k_b.weight", [heads, kvLora, nope], kb);
            w.AddF32(prefix + "attn_v_b.weight", [heads, v, kvLora], vb);
            w.Tensors.Remove(name);
        }
        meta["deepseek2.attention.key_length"] = (uint)(kvLora + rope);
        meta["deepseek2.attention.value_length"] = (uint)kvLora;
        meta["deepseek2.attention.key_length_mla"] = (uint)(nope + rope);
        meta["deepseek2.attention.value_length_mla"] = (uint)v;
    }

    [GoldenTheory]
    [InlineData(MlaAttentionMode.Absorbed)]
    [InlineData(MlaAttentionMode.Decompressed)]
    public void SplitKbVbGgufMatchesLlamaCpp(MlaAttentionMode mode)
    {
        const string name = "deepseek3-tiny-f32";
        using var source = DeepSeekTestFiles.OpenGguf(Golden.File("llamacpp", name + ".gguf")!, SplitKvB);
        Assert.False(source.Weights.Contains("blk.0.attn_kv_b.weight"));
        using var model = DeepSeek.Create(source, new ModelOptions { Threads = 1 }, mode);
        Assert.Equal(32, model.Config.QkNopeHeadDim);
        var manifest = JsonDocument.Parse(File.ReadAllText(Golden.File("llamacpp", name + ".json")!)).RootElement;
        var ids = Ints(manifest.GetProperty("prompt_ids"));
        var logits = new float[ids.Length * model.VocabSize];
        model.Forward(model.CreateState(ids.Length), ids, logits);
        var golden = Golden.ReadF32(Golden.File("llamacpp", name + ".logits.f32")!);
        float max = 0;
        for (int i = 0; i < logits.Length; i++) max = MathF.Max(max, MathF.Abs(logits[i] - golden[i]));
        output.WriteLine($"split k_b/v_b ({mode}): max-abs {max:E2}");
        Assert.True(max < 1e-3, $"max-abs {max}");
    }

    [GoldenFact]
    public void Fp8CheckpointKeepsOneBytePerWeightAndReportsMtp()
    {
        var dir = Golden.File("hf", "v3_fp8")!;
        using var source = DeepSeekTestFiles.OpenHf(dir);
        using var model = DeepSeek.Create(source, new ModelOptions { Threads = 1 }, MlaAttentionMode.Absorbed);
        var d = model.Description;
        var c = model.Config;
        // Every quantised projection of the 3 decoder layers, counted from the config.
        long attention = (long)c.QLoraRank * c.HiddenSize + (long)c.Heads * c.QkHeadDim * c.QLoraRank
            + (long)(c.KvLoraRank + c.QkRopeHeadDim) * c.HiddenSize + (long)c.Heads * (c.QkNopeHeadDim + c.VHeadDim) * c.KvLoraRank
            + (long)c.HiddenSize * c.Heads * c.VHeadDim;
        long dense = 3L * c.IntermediateSize * c.HiddenSize;
        long moe = 3L * c.MoeIntermediateSize * c.HiddenSize * (c.RoutedExperts + c.SharedExperts);
        int moeLayers = Enumerable.Range(0, c.Layers).Count(c.IsMoeLayer);
        long fp8Params = c.Layers * attention + (c.Layers - moeLayers) * dense + moeLayers * moe;
        Assert.Equal(fp8Params, d.WeightBytesByType[DType.F8_E4M3]);
        // The file's F8 tensors of the decoder layers (not the MTP layer) are exactly these.
        long inFile = source.Weights.TensorNames.Select(source.Weights.Get)
            .Where(t => t.Type == DType.F8_E4M3 && !t.Name.StartsWith("model.layers.3.")).Sum(t => t.ByteLength);
        Assert.Equal(inFile, fp8Params);
        Assert.True(d.WeightBytesByType[DType.F32] > 0); // scales and the router bias
        Assert.Equal(1, c.MtpLayers);
        var mtp = Assert.Single(model.MtpLayers);
        Assert.Equal(3, mtp.Index);
        Assert.Contains(mtp.Tensors, t => t.Name == "model.layers.3.eh_proj.weight");
        output.WriteLine($"v3_fp8: {string.Join(", ", d.WeightBytesByType.Select(kv => $"{kv.Key}={kv.Value}"))}; total {d.TotalParameters}, active {d.ActiveParameters}");
        foreach (var (k, v) in d.Details) output.WriteLine($"  {k}: {v}");
    }

    [GoldenFact]
    public void DescriptionReportsLatentCacheAndActiveParameters()
    {
        using var source = DeepSeekTestFiles.OpenHf(Golden.File("hf", "v2lite_bf16")!);
        using var model = DeepSeek.Create(source, new ModelOptions { Threads = 1 });
        var d = model.Description;
        // 3 layers × (kv_lora 64 + rope 16) × 4 bytes; MHA: 3 × 4 heads × (48 + 32) × 4.
        Assert.Equal(3 * (64 + 16) * 4, d.KvBytesPerToken);
        Assert.Equal(3 * 4 * (48 + 32) * 4, d.EquivalentMhaKvBytesPerToken);
        long expertParams = 3L * 64 * 128;
        Assert.Equal(d.TotalParameters - 2 * (8 - 2) * expertParams, d.ActiveParameters);
        long fileParams = source.Weights.TensorNames.Select(source.Weights.Get).Sum(t => t.ElementCount);
        Assert.Equal(fileParams, d.TotalParameters);
        Assert.Equal(fileParams * 2, d.WeightBytesByType[DType.BF16]);
        Assert.Equal(2048, d.ContextLength);
        Assert.Contains(d.Details, x => x.Key == "routing" && x.Value.StartsWith("softmax greedy, top-2 of 8"));
    }

    // ------------------------------------------------------------------ errors

    static JevonsException LoadFails(string variant, Action<DeepSeekTestFiles.MemoryWeights>? edit = null, Func<string, string>? editConfig = null)
    {
        using var source = DeepSeekTestFiles.OpenHf(Golden.File("hf", variant)!, edit, editConfig);
        return Assert.Throws<JevonsException>(() => DeepSeek.Create(source, new ModelOptions { Threads = 1 }));
    }

    [GoldenFact]
    public void MissingScaleInvIsAOneLineError()
    {
        const string name = "model.layers.1.self_attn.kv_b_proj.weight";
        var e = LoadFails("v3_fp8", w => w.Tensors.Remove(name + "_scale_inv"));
        Assert.Equal(name, e.Tensor);
        Assert.Contains("weight_scale_inv", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [GoldenFact]
    public void ShapeThatDisagreesWithConfigNamesTensorAndExpectation()
    {
        var e = LoadFails("v3_bf16", editConfig: j => j.Replace("\"kv_lora_rank\": 112", "\"kv_lora_rank\": 96"));
        Assert.Equal("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", e.Tensor);
        Assert.Contains("[128, 192]", e.Message); // 96 + 32 rows expected
        Assert.Contains("[144, 192]", e.Message); // what the file has
    }

    [GoldenFact]
    public void UnsupportedRoutingSettingsAreNamed()
    {
        var e1 = LoadFails("v3_bf16", editConfig: j => j.Replace("\"noaux_tc\"", "\"aux_free\""));
        Assert.Equal("topk_method", e1.Tensor);
        Assert.Contains("aux_free", e1.Message);
        var e2 = LoadFails("v2lite_bf16", editConfig: j => j.Replace("\"scoring_func\": \"softmax\"", "\"scoring_func\": \"relu\""));
        Assert.Equal("scoring_func", e2.Tensor);
        Assert.Contains("config.json", e2.Message);
    }

    [GoldenFact]
    public void MissingTensorIsNamed()
    {
        const string name = "model.layers.2.mlp.experts.5.up_proj.weight";
        var e = LoadFails("v2lite_bf16", w => w.Tensors.Remove(name));
        Assert.Equal(name, e.Tensor);
        Assert.Contains("missing", e.Message);
    }
}
