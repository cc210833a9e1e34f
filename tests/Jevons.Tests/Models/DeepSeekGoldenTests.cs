using System.Text.Json;
using Jevons.Models;
using Jevons.Models.Blocks;
using Jevons.Numerics;
using Jevons.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>DeepSeek against ../shared/golden/hf (official reference model.py) and ../shared/golden/llamacpp (deepseek2).</summary>
public sealed class DeepSeekGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> HfCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var variant in new[] { "v2lite_bf16", "v3_bf16", "v3_fp8" })
            foreach (var c in new[] { "prompt_a", "prompt_b", "prompt_single" })
                data.Add(variant, c);
        return data;
    }

    static JsonElement GoldenCase(string variant, string caseName, out JsonElement golden)
    {
        golden = JsonDocument.Parse(File.ReadAllText(Golden.File("hf", variant, "golden.json")!)).RootElement;
        return golden.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("name").GetString() == caseName);
    }

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = MathF.Max(m, MathF.Abs(a[i] - b[i]));
        return m;
    }

    [GoldenTheory]
    [MemberData(nameof(HfCases))]
    public void HfLogitsHiddenRoutingAndGreedyMatchReference(string variant, string caseName)
    {
        var dir = Golden.File("hf", variant)!;
        var c = GoldenCase(variant, caseName, out _);
        var ids = Ints(c.GetProperty("prompt_ids"));
        int n = ids.Length;
        using var source = DeepSeekTestFiles.OpenHf(dir);
        using var model = DeepSeek.Create(source, new ModelOptions { Threads = 2 }, MlaAttentionMode.Absorbed);
        int vocab = model.VocabSize, hidden = model.Config.HiddenSize;

        // Hidden states per layer and routing decisions.
        var goldenHidden = Golden.ReadF32(Path.Combine(dir, c.GetProperty("hidden_file").GetString()!));
        var layerDiffs = new float[model.Config.Layers];
        model.OnLayer = (l, x) => layerDiffs[l] = MaxAbsDiff(x[..(n * hidden)], goldenHidden.AsSpan((l + 1) * n * hidden, n * hidden));
        var routes = new Dictionary<(int Layer, int Token), (int[] Experts, float[] Weights)>();
        model.OnRouting = (l, t, e, w) => routes[(l, t)] = (e.ToArray(), w.ToArray());

        var state = model.CreateState(n + 24);
        var logits = new float[n * vocab];
        model.Forward(state, ids, logits);
        model.OnLayer = null;
        model.OnRouting = null;

        var golden = Golden.ReadF32(Path.Combine(dir, c.GetProperty("logits_file").GetString()!));
        float diff = MaxAbsDiff(logits, golden);
        output.WriteLine($"{variant}/{caseName}: prompt max-abs logit diff {diff:E2}; per-layer hidden diffs {string.Join(", ", layerDiffs.Select(d => d.ToString("E1")))}");
        Assert.True(diff < 1e-3, $"max-abs logit diff {diff} (hidden diffs per layer: {string.Join(", ", layerDiffs)})");
        var argmax = Ints(c.GetProperty("argmax"));
        for (int t = 0; t < n; t++) Assert.Equal(argmax[t], ArgMax(logits.AsSpan(t * vocab, vocab)));

        // Routing: same expert sets, weights within 1e-4.
        int checkedRoutes = 0;
        foreach (var layerRouting in c.GetProperty("routing").EnumerateArray())
        {
            int l = layerRouting.GetProperty("layer").GetInt32();
            var experts = layerRouting.GetProperty("experts").EnumerateArray().ToArray();
            var weights = layerRouting.GetProperty("weights").EnumerateArray().ToArray();
            for (int t = 0; t < n; t++)
            {
                var want = Ints(experts[t]);
                var wantW = weights[t].EnumerateArray().Select(x => x.GetSingle()).ToArray();
                var (gotE, gotW) = routes[(l, t)];
                var order = Enumerable.Range(0, gotE.Length).OrderBy(i => gotE[i]).ToArray();
                Assert.Equal(want, order.Select(i => gotE[i]).ToArray());
                for (int k = 0; k < want.Length; k++) Assert.True(MathF.Abs(wantW[k] - gotW[order[k]]) < 1e-4, $"layer {l} token {t} weight {k}");
                checkedRoutes++;
            }
        }
        Assert.True(checkedRoutes > 0 || model.Config.RoutedExperts == 0);

        // Greedy through the cache, one token at a time; step k's logits against the reference's.
        var greedy = c.GetProperty("greedy");
        var wantIds = Ints(greedy.GetProperty("ids"));
        var stepGolden = Golden.ReadF32(Path.Combine(dir, greedy.GetProperty("step_logits_file").GetString()!));
        var step = logits.AsSpan((n - 1) * vocab, vocab).ToArray();
        float stepDiff = 0;
        var got = new int[wantIds.Length];
        for (int k = 0; k < wantIds.Length; k++)
        {
            stepDiff = MathF.Max(stepDiff, MaxAbsDiff(step, stepGolden.AsSpan(k * vocab, vocab)));
            got[k] = ArgMax(step);
            if (k + 1 < wantIds.Length) model.Forward(state, [got[k]], step);
        }
        output.WriteLine($"{variant}/{caseName}: greedy step max-abs logit diff {stepDiff:E2}");
        Assert.Equal(wantIds, got);
        Assert.True(stepDiff < 1e-3, $"greedy step logits max-abs diff {stepDiff}");
    }
}
