using Jevons.Inference;
using Xunit;

namespace Jevons.Tests.Inference;

public class SamplingExtrasTests
{
    [Fact]
    public void LogitBiasShiftsTheLogitsBeforeEverythingElse()
    {
        var s = new Sampler(new SamplerOptions { Temperature = 0, LogitBias = new Dictionary<int, float> { [0] = 3f, [2] = -1f, [9] = 5f } });
        float[] logits = [1f, 2f, 3f, 0.5f];
        Assert.Equal(0, s.Sample(logits, []));
        Assert.Equal([4f, 2f, 2f, 0.5f], logits);
        // -100 bans a token even under sampling.
        var ban = new Sampler(new SamplerOptions { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0, LogitBias = new Dictionary<int, float> { [1] = -100f } });
        for (int i = 0; i < 200; i++) Assert.NotEqual(1, ban.Sample([0f, 3f, 0f], []));
        Assert.Contains("logit-bias[3]", Assert.Throws<JevonsException>(() => new Sampler(new SamplerOptions { LogitBias = new Dictionary<int, float> { [3] = 101f } })).Message);
    }

    [Fact]
    public void LogprobsAreTheLogSoftmaxOfTheBiasedLogits()
    {
        var s = new Sampler(new SamplerOptions { Temperature = 0, LogitBias = new Dictionary<int, float> { [0] = 3f, [2] = -1f } });
        float[] logits = [1f, 2f, 3f, 0.5f];
        int id = s.Sample(logits, []);
        var top = new TokenLogprob[3];
        float chosen = Sampler.Logprobs(logits, id, top);
        // By hand: adjusted logits [4, 2, 2, 0.5]; log Z = ln(e^4 + 2 e^2 + e^0.5).
        double logZ = Math.Log(Math.Exp(4) + 2 * Math.Exp(2) + Math.Exp(0.5));
        Assert.Equal(4 - logZ, chosen, 5);
        Assert.Equal(-0.2630, chosen, 3);
        Assert.Equal([0, 1, 2], top.Select(t => t.Id));       // the tie 2 = 2 goes to the lower id
        Assert.Equal(4 - logZ, top[0].Logprob, 5);
        Assert.Equal(2 - logZ, top[1].Logprob, 5);
        Assert.Equal(2 - logZ, top[2].Logprob, 5);
    }

    [Fact]
    public void LogprobsOfASampledTokenAndFewerAlternativesThanAsked()
    {
        float[] logits = [0f, MathF.Log(3f)];
        var top = new TokenLogprob[1];
        Assert.Equal(Math.Log(0.25), Sampler.Logprobs(logits, 0, top), 5);
        Assert.Equal(1, top[0].Id);
        Assert.Equal(Math.Log(0.75), top[0].Logprob, 5);
    }

    [Theory]
    [InlineData("2GiB", 2L << 30, 0)]
    [InlineData("512MiB", 512L << 20, 0)]
    [InlineData("1.5GB", 1_500_000_000L, 0)]
    [InlineData("4096blocks", 0, 4096)]
    [InlineData("1000000", 1_000_000L, 0)]
    public void KvBudgetParses(string text, long bytes, int blocks)
    {
        var b = KvBudget.Parse(text);
        Assert.Equal(bytes, b.Bytes);
        Assert.Equal(blocks, b.Blocks);
    }

    [Theory]
    [InlineData("3XB")]
    [InlineData("-1GiB")]
    [InlineData("0blocks")]
    [InlineData("")]
    public void KvBudgetRejectsNonsenseInOneLine(string text)
    {
        var e = Assert.Throws<JevonsException>(() => KvBudget.Parse(text));
        Assert.Contains($"kv-budget '{text}'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void KvBudgetBuysWholeBlocks()
    {
        Assert.Equal(3, KvBudget.Parse("1000B").BlocksFor(300));
        Assert.Equal(7, KvBudget.Parse("7blocks").BlocksFor(300));
        Assert.Contains("holds no KV block", Assert.Throws<JevonsException>(() => KvBudget.Parse("100B").BlocksFor(300)).Message);
    }
}
