using System.Diagnostics;
using System.Text;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

public class SyntheticVocabularyTests
{
    [Theory]
    [InlineData(151936, "deepseek-r1-qwen")]
    [InlineData(128256, "llama-bpe")]
    [InlineData(129280, "deepseek-v3")]
    [InlineData(300, "deepseek-v3")]
    public void RealSizesAreQuickSelfConsistentAndRoundTrip(int size, string pre)
    {
        var sw = Stopwatch.StartNew();
        var v = SyntheticVocabulary.Create(size, pre);
        var t = Tokenizer.FromGguf(v.ToMetadata());
        sw.Stop();
        Assert.True(sw.Elapsed.TotalSeconds < 3, $"create + load took {sw.Elapsed.TotalSeconds:F2} s");

        Assert.Equal(size, v.Tokens.Length);
        Assert.Equal(size, v.TokenTypes.Length);
        Assert.Equal(size - 256 - 6, v.Merges.Length);
        Assert.Equal(size, v.Tokens.Distinct().Count());
        Assert.Equal(size, t.VocabSize);
        Assert.Equal(size - 6, t.BosId);
        Assert.Equal([size - 5], t.EosIds);
        Assert.Equal("<｜begin▁of▁sentence｜>", t.TokenText(size - 6));
        Assert.Equal(3, v.TokenTypes[size - 6]);
        Assert.Equal(4, v.TokenTypes[size - 1]);
        // Every merge joins two existing tokens into a later one.
        var index = v.Tokens.Select((s, i) => (s, i)).ToDictionary(x => x.s, x => x.i);
        foreach (var m in v.Merges.Take(2000))
        {
            var parts = m.Split(' ');
            Assert.True(index[parts[0]] < index[parts[0] + parts[1]] && index[parts[1]] < index[parts[0] + parts[1]], m);
        }

        const string text = "Hello world! The answer to 17 × 23 is 391.\n\t<think>reasoning</think> 你好, emoji 🤗 and é\u0301 \u0000";
        var ids = t.Encode(text, addSpecialTokens: true);
        Assert.Equal(t.BosId, ids[0]);
        Assert.Equal(text, t.Decode(ids, skipSpecialTokens: true));
        Assert.Contains(size - 2, ids); // <think> is matched as a token
        if (size > 1000) Assert.True(ids.Length < Encoding.UTF8.GetByteCount(text) * 0.8, "merges should shorten English text");
    }

    [Fact]
    public void IsDeterministic()
    {
        var a = SyntheticVocabulary.Create(5000);
        var b = SyntheticVocabulary.Create(5000);
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.Merges, b.Merges);
        Assert.Equal("Ġ t", a.Merges[0]);
    }

    [Fact]
    public void TooSmallOrUnknownPreTokenizerIsRejected()
    {
        Assert.Contains("too small", Assert.Throws<JevonsException>(() => SyntheticVocabulary.Create(100)).Message);
        Assert.Contains("nope", Assert.Throws<JevonsException>(() => SyntheticVocabulary.Create(1000, "nope")).Message);
    }
}
