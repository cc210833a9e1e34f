using System.Text.Json;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Models;

/// <summary>Llama / Qwen2 forward pass against llama.cpp's logits in ../shared/golden/llamacpp.</summary>
public sealed class LlamaGoldenTests(ITestOutputHelper output)
{
    internal sealed record Manifest(int[] PromptIds, int Vocab, int[] Argmax, int[] Greedy, float[] Logits, float[] GenLogits);

    internal static Manifest Load(string name)
    {
        var dir = Golden.File("llamacpp")!;
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, name + ".json")));
        var root = doc.RootElement;
        int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();
        return new Manifest(
            Ints(root.GetProperty("prompt_ids")),
            root.GetProperty("logits").GetProperty("shape")[1].GetInt32(),
            Ints(root.GetProperty("logits").GetProperty("argmax_per_position")),
            Ints(root.GetProperty("greedy").GetProperty("ids")),
            Golden.ReadF32(Path.Combine(dir, name + ".logits.f32")),
            Golden.ReadF32(Path.Combine(dir, name + ".gen_logits.f32")));
    }

    internal static ModelSource OpenSource(string path) => ModelLoader.Open(path);

    /// <summary>A golden model by name, or any GGUF by path.</summary>
    internal static Model Open(string nameOrPath, int threads = 2) =>
        Llama.Create(OpenSource(nameOrPath.EndsWith(".gguf") ? nameOrPath : Golden.File("llamacpp", nameOrPath + ".gguf")!), new ModelOptions { Threads = threads });

    internal static int Argmax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    static float MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = MathF.Max(m, MathF.Abs(a[i] - b[i]));
        return m;
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("llama-tiny-f32")]
    public void PromptLogitsMatchLlamaCpp(string name)
    {
        var g = Load(name);
        using var model = Open(name);
        Assert.Equal(g.Vocab, model.VocabSize);
        var state = model.CreateState(128);
        var logits = new float[g.PromptIds.Length * g.Vocab];
        model.Forward(state, g.PromptIds, logits);
        Assert.Equal(g.PromptIds.Length, state.Length);

        float worst = 0;
        for (int p = 0; p < g.PromptIds.Length; p++)
        {
            var row = logits.AsSpan(p * g.Vocab, g.Vocab);
            float d = MaxAbs(row, g.Logits.AsSpan(p * g.Vocab, g.Vocab));
            worst = MathF.Max(worst, d);
            Assert.True(d < 1e-3f, $"position {p}: max |diff| {d}");
            Assert.Equal(g.Argmax[p], Argmax(row));
        }
        output.WriteLine($"{name}: prompt max |diff| {worst:E2} over {g.PromptIds.Length} positions");
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("llama-tiny-f32")]
    public void TeacherForcedDecodeMatchesLlamaCpp(string name)
    {
        var g = Load(name);
        using var model = Open(name);
        var state = model.CreateState(128);
        var logits = new float[g.Vocab];
        model.Forward(state, g.PromptIds, logits);
        Assert.True(MaxAbs(logits, g.Logits.AsSpan((g.PromptIds.Length - 1) * g.Vocab, g.Vocab)) < 1e-3f, "last-position logits");
        float worst = 0;
        for (int step = 0; step < g.Greedy.Length; step++)
        {
            model.Forward(state, [g.Greedy[step]], logits);
            float d = MaxAbs(logits, g.GenLogits.AsSpan(step * g.Vocab, g.Vocab));
            worst = MathF.Max(worst, d);
            Assert.True(d < 1e-3f, $"decode step {step}: max |diff| {d}");
        }
        Assert.Equal(g.PromptIds.Length + g.Greedy.Length, state.Length);
        output.WriteLine($"{name}: decode max |diff| {worst:E2} over {g.Greedy.Length} steps");
    }

    [GoldenTheory]
    [InlineData("qwen2-tiny-f32")]
    [InlineData("llama-tiny-f32")]
    public void FreeRunningGreedyReproducesLlamaCppIds(string name)
    {
        var g = Load(name);
        using var model = Open(name);
        var state = model.CreateState(g.PromptIds.Length + g.Greedy.Length);
        var logits = new float[g.Vocab];
        model.Forward(state, g.PromptIds, logits);
        var ids = new int[g.Greedy.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = Argmax(logits);
            model.Forward(state, [ids[i]], logits);
        }
        Assert.Equal(g.Greedy, ids);
    }

    [GoldenFact]
    public void Q8_0MatchesLlamaCppStatistically()
    {
        const string name = "qwen2-tiny-q8_0";
        var g = Load(name);
        using var model = Open(name);
        var state = model.CreateState(128);
        int n = g.PromptIds.Length, v = g.Vocab;
        var prompt = new float[n * v];
        model.Forward(state, g.PromptIds, prompt);
        double sum = 0;
        float max = 0;
        int agree = 0, rows = 0;
        void Compare(ReadOnlySpan<float> mine, ReadOnlySpan<float> reference)
        {
            for (int i = 0; i < v; i++)
            {
                float d = MathF.Abs(mine[i] - reference[i]);
                sum += d;
                max = MathF.Max(max, d);
            }
            if (Argmax(mine) == Argmax(reference)) agree++;
            rows++;
        }
        for (int p = 0; p < n; p++) Compare(prompt.AsSpan(p * v, v), g.Logits.AsSpan(p * v, v));
        var step = new float[v];
        for (int s = 0; s < g.Greedy.Length; s++)
        {
            model.Forward(state, [g.Greedy[s]], step);
            Compare(step, g.GenLogits.AsSpan(s * v, v));
        }
        double mean = sum / ((double)rows * v), agreement = (double)agree / rows;
        output.WriteLine($"{name}: mean |diff| {mean:E2}, max |diff| {max:E2}, top-1 agreement {agreement:P1} over {rows} rows");
        // The kernels reproduce llama.cpp's Q8_0 activation quantisation, so the README's tighter bound applies.
        Assert.True(mean <= 0.05, $"mean |diff| {mean}");
        Assert.True(agreement >= 0.90, $"top-1 agreement {agreement}");
    }
}
