using Jevons.Inference;
using Xunit;

namespace Jevons.Tests.Inference;

public class SamplerTests
{
    static float[] Logits(params float[] v) => v;

    [Fact]
    public void GreedyPicksHighestLowestIdOnTie()
    {
        var s = new Sampler(SamplerOptions.Greedy);
        Assert.Equal(2, s.Sample(Logits(0.1f, 1f, 3f, 3f, -2f), []));
        Assert.Equal(1, s.Sample(Logits(float.NaN, 5f, 4f), []));
    }

    [Fact]
    public void SameSeedSameSequenceDifferentSeedDiffers()
    {
        var rng = new Random(1);
        var logits = Enumerable.Range(0, 500).Select(_ => (float)rng.NextDouble() * 4).ToArray();
        int[] Run(ulong seed)
        {
            var s = new Sampler(new SamplerOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = seed });
            return Enumerable.Range(0, 64).Select(_ => s.Sample((float[])logits.Clone(), [])).ToArray();
        }
        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    [Fact]
    public void TopKOneIsGreedy()
    {
        var s = new Sampler(new SamplerOptions { Temperature = 5f, TopK = 1, TopP = 1, MinP = 0, Seed = 3 });
        for (int i = 0; i < 20; i++) Assert.Equal(3, s.Sample(Logits(1, 2, 0, 2.5f, 2.4f), []));
    }

    [Fact]
    public void TopKRestrictsToKBest()
    {
        var s = new Sampler(new SamplerOptions { Temperature = 100f, TopK = 2, TopP = 1, MinP = 0, Seed = 3 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 200; i++) seen.Add(s.Sample(Logits(1, 2, 0, 2.5f, 2.4f), []));
        Assert.Equal(new HashSet<int> { 3, 4 }, seen);
    }

    [Fact]
    public void TopPKeepsSmallestNucleus()
    {
        // probabilities ~ [0.7, 0.2, 0.1]: top-p 0.8 keeps ids 0 and 1 only.
        var l = Logits(MathF.Log(0.7f), MathF.Log(0.2f), MathF.Log(0.1f));
        var s = new Sampler(new SamplerOptions { Temperature = 1f, TopK = 0, TopP = 0.8f, MinP = 0, Seed = 11 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 300; i++) seen.Add(s.Sample((float[])l.Clone(), []));
        Assert.Equal(new HashSet<int> { 0, 1 }, seen);
    }

    [Fact]
    public void MinPDropsUnlikely()
    {
        var l = Logits(MathF.Log(0.6f), MathF.Log(0.35f), MathF.Log(0.05f));
        var s = new Sampler(new SamplerOptions { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0.1f, Seed = 5 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 300; i++) seen.Add(s.Sample((float[])l.Clone(), []));
        Assert.Equal(new HashSet<int> { 0, 1 }, seen);
    }

    [Fact]
    public void PenaltiesFollowTheirDefinitions()
    {
        var l = Logits(2f, -2f, 1f, 0.5f);
        var s = new Sampler(new SamplerOptions { Temperature = 0, RepetitionPenalty = 2f, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f, PenaltyLastN = -1 });
        s.Sample(l, [0, 1, 1]);
        Assert.Equal(2f / 2 - 0.5f - 0.25f, l[0], 6);
        Assert.Equal(-2f * 2 - 0.5f - 0.5f, l[1], 6);
        Assert.Equal(1f, l[2]);
        // id 0 was penalised below id 2: greedy now picks 2.
        Assert.Equal(2, new Sampler(new SamplerOptions { Temperature = 0, RepetitionPenalty = 3f }).Sample(Logits(2f, -2f, 1f), [0]));
    }

    [Fact]
    public void OpenAiPenaltiesCountOnlyGeneratedTokensAndRepetitionCountsThePromptToo()
    {
        var o = new SamplerOptions { Temperature = 0, RepetitionPenalty = 2f, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f, PenaltyLastN = -1, PenalizeOutputOnly = true };
        // History: prompt [0, 1, 1], generated [1, 3].
        var l = Logits(2f, -2f, 1f, 0.5f);
        new Sampler(o).Sample(l, [0, 1, 1, 1, 3], promptLength: 3);
        Assert.Equal(2f / 2, l[0], 6);                      // prompt only: repetition, no presence / frequency
        Assert.Equal(-2f * 2 - 0.5f - 0.25f, l[1], 6);      // generated once (its prompt occurrences do not count)
        Assert.Equal(1f, l[2]);
        Assert.Equal(0.5f / 2 - 0.5f - 0.25f, l[3], 6);
        // Nothing generated yet: presence and frequency do nothing.
        var fresh = Logits(2f, -2f, 1f, 0.5f);
        new Sampler(o with { RepetitionPenalty = 1 }).Sample(fresh, [0, 1, 1], promptLength: 3);
        Assert.Equal(Logits(2f, -2f, 1f, 0.5f), fresh);
        // A window that starts inside the output.
        var w = Logits(2f, -2f, 1f, 0.5f);
        new Sampler(o with { RepetitionPenalty = 1, PenaltyLastN = 1 }).Sample(w, [0, 1, 1, 1, 3], promptLength: 3);
        Assert.Equal(new[] { 2f, -2f, 1f, 0.5f - 0.75f }, w);
        // The server asks for these semantics.
        Assert.True(Jevons.Server.RequestMapping.Sampling(null, null, null, null, 1, 1, null, 1, null, 10).PenalizeOutputOnly);
    }

    [Theory]
    [InlineData(-1f, 40, 0.9f, "temperature")]
    [InlineData(1f, -3, 0.9f, "top-k")]
    [InlineData(1f, 40, 0f, "top-p")]
    [InlineData(1f, 40, 1.5f, "top-p")]
    public void BadParametersNameTheParameter(float t, int k, float p, string name)
    {
        var e = Assert.Throws<JevonsException>(() => new Sampler(new SamplerOptions { Temperature = t, TopK = k, TopP = p }));
        Assert.Contains(name, e.Message);
    }
}

public class StopSequencesTests
{
    [Fact]
    public void StopsAndNeverEmitsAPartialStop()
    {
        var s = new StopSequences(["</answer>", "STOP"]);
        var emitted = s.Push("Hello </ans");
        Assert.Equal("Hello ", emitted);
        emitted += s.Push("wer> and more");
        Assert.True(s.Stopped);
        Assert.Equal("Hello ", emitted);
        Assert.Equal("</answer>", s.Matched);
        Assert.Equal("", s.Push("x"));
    }

    [Fact]
    public void HeldBackTextIsReleasedWhenItIsNotAStop()
    {
        var s = new StopSequences(["STOP"]);
        Assert.Equal("a ", s.Push("a ST"));
        Assert.Equal("STa", s.Push("a"));
        Assert.Equal("S", s.Push("S") + s.Flush());
        Assert.False(s.Stopped);
    }

    [Fact]
    public void NoStopsPassesThrough()
    {
        var s = new StopSequences([]);
        Assert.Equal("abc", s.Push("abc"));
    }
}
