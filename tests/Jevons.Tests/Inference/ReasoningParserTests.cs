using Jevons.Inference;
using Xunit;

namespace Jevons.Tests.Inference;

public class ReasoningParserTests
{
    static (string Reasoning, string Content) Run(IEnumerable<string> pieces, bool startInReasoning)
    {
        var p = new ReasoningParser(startInReasoning);
        string r = "", c = "";
        foreach (var piece in pieces)
        {
            var d = p.Push(piece);
            Assert.DoesNotContain("<think>", d.Content + d.Reasoning);
            Assert.DoesNotContain("</think>", d.Content + d.Reasoning);
            r += d.Reasoning;
            c += d.Content;
        }
        var f = p.Flush();
        return (r + f.Reasoning, c + f.Content);
    }

    /// <summary>The one-piece result, every 2-piece split and char by char all agree.</summary>
    static (string, string) RunEverySplit(string text, bool startInReasoning)
    {
        var whole = Run([text], startInReasoning);
        for (int i = 0; i <= text.Length; i++)
            Assert.Equal(whole, Run([text[..i], text[i..]], startInReasoning));
        Assert.Equal(whole, Run(text.Select(ch => ch.ToString()), startInReasoning));
        return whole;
    }

    [Theory]
    [InlineData("<think>\nThe user wants 2.\n</think>\n\nThe answer is 2.", false, "\nThe user wants 2.\n", "\n\nThe answer is 2.")]
    [InlineData("The user wants 2.\n</think>\n\nIt is 2.", true, "The user wants 2.\n", "\n\nIt is 2.")]
    [InlineData("Plain answer, no think block.", false, "", "Plain answer, no think block.")]
    [InlineData("still thinking <thi", true, "still thinking <thi", "")]
    [InlineData("a < b and </thin k> is text", false, "", "a < b and </thin k> is text")]
    [InlineData("<think></think>", false, "", "")]
    [InlineData("pre<think>r1</think>mid<think>r2</think>post", false, "r1r2", "premidpost")]
    [InlineData("ends with a partial <th", false, "", "ends with a partial <th")]
    public void SplitsReasoningFromContentWhereverThePiecesAreCut(string text, bool startInReasoning, string reasoning, string content)
    {
        Assert.Equal((reasoning, content), RunEverySplit(text, startInReasoning));
    }

    [Theory]
    [InlineData("{\"a\": \"<think>x</think>\"}", false, "", "{\"a\": \"<think>x</think>\"}")]
    [InlineData("hmm</think>{\"a\": \"<think>\"}", true, "hmm", "{\"a\": \"<think>\"}")]
    public void OutsideIsFinalKeepsLaterTagsInTheContent(string text, bool startInReasoning, string reasoning, string content)
    {
        foreach (var cut in Enumerable.Range(0, text.Length + 1))
        {
            var p = new ReasoningParser(startInReasoning, outsideIsFinal: true);
            var a = p.Push(text[..cut]);
            var b = p.Push(text[cut..]);
            var f = p.Flush();
            Assert.Equal((reasoning, content), (a.Reasoning + b.Reasoning + f.Reasoning, a.Content + b.Content + f.Content));
        }
    }

    [Fact]
    public void CountsReasoningTokens()
    {
        var p = new ReasoningParser();
        foreach (var t in new[] { "<think>", "\n", "hmm", "</think>", "\n\n", "Yes", "." }) p.Push(t);
        Assert.Equal(4, p.ReasoningTokens);
        var q = new ReasoningParser(startInReasoning: true);
        foreach (var t in new[] { "a", "b", "</think>", "c" }) q.Push(t);
        Assert.Equal(3, q.ReasoningTokens);
        Assert.False(q.InReasoning);
    }

    [Theory]
    [InlineData("<｜User｜>hi<｜Assistant｜><think>\n", true)]
    [InlineData("<|im_start|>assistant\n<think>\n\n</think>\n\n", false)]
    [InlineData("<|im_start|>assistant\n", false)]
    [InlineData("<think> x", false)]
    [InlineData("<think>", true)]
    public void PromptTailDecidesTheInitialState(string prompt, bool opens)
    {
        Assert.Equal(opens, ReasoningParser.PromptOpensReasoning(prompt));
    }
}
