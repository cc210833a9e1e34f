using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training.Tasks;

public class VerifierTests
{
    static readonly Problem Sum = new ArithmeticTask().Parse("What is 4821 + 377?")!;
    static readonly Problem Countdown = new CountdownTask().Parse("Using the numbers [3, 7, 25, 50], make 82. Use each number once with + - * /.")!;

    static Verdict Score(Problem p, string completion) => Verifier.Score(p, completion);

    [Fact]
    public void AcceptsAWellFormedRightAnswer()
    {
        var v = Score(Sum, "<think>\nadd\n</think>\nThe sum is 5198.\n\\boxed{5198}");
        Assert.True(v.Correct);
        Assert.True(v.FormatOk);
        Assert.Equal("5198", v.Extracted);
        Assert.Null(v.Reason);
        Assert.Equal(1, v.Reward);
        Assert.True(Score(Sum, "<think>\nadd\n</think>\n\\boxed{5198}\n<｜end▁of▁sentence｜>").FormatOk); // EOS decoded as text
    }

    [Theory]
    [InlineData("<think>\nx\n</think>\n\\boxed{5199}")]
    [InlineData("<think>\nx\n</think>\n\\boxed{51 98}")]
    [InlineData("<think>\nx\n</think>\n\\boxed{5198 or 5199}")]
    [InlineData("<think>\nx\n</think>\n\\boxed{4821+377}")]
    [InlineData("<think>\nx\n</think>\n\\boxed{}")]
    [InlineData("<think>\nx\n</think>\n\\boxed{5198}\n\\boxed{1}")]
    [InlineData("<think>\nx\n</think>\n5198")]
    public void RejectsWrongOrMissingAnswers(string completion)
    {
        var v = Score(Sum, completion);
        Assert.False(v.Correct);
        Assert.Equal(0, v.Reward);
        Assert.NotNull(v.Reason);
    }

    [Theory]
    [InlineData("\\boxed{5198}")]                                       // no think block
    [InlineData("<think>\nx\n\\boxed{5198}")]                            // unclosed
    [InlineData("x\n<think>\nx\n</think>\n\\boxed{5198}")]               // text before the block
    [InlineData("<think>\nx\n</think>\n<think>\ny\n</think>\n\\boxed{5198}")] // two blocks
    [InlineData("<think>\n<think>\nx\n</think>\n\\boxed{5198}")]         // nested open
    [InlineData("<think>\nx\n</think>\n</think>\n\\boxed{5198}")]        // two closes
    [InlineData("<think>\nx\n</think>\n\\boxed{5198} junk")]             // junk after the box
    [InlineData("<think>\nx\n</think>\n\\boxed{5198}\nmore text")]       // box not on the last line
    [InlineData("<think>\nx\n</think>\n\\boxed{5198}<｜end▁of▁sentence｜>more")]
    [InlineData("<think>\n\\boxed{5198}\n</think>")]                     // nothing after the block
    public void RejectsBadFormatEvenWhenTheNumberIsRight(string completion)
    {
        var v = Score(Sum, completion);
        Assert.False(v.FormatOk, completion);
        Assert.Equal(0, v.Reward);
    }

    [Theory]
    [InlineData("(50-25)*3+7", true)]
    [InlineData("7+3*(50-25)", true)]
    [InlineData(" ( 50 - 25 ) * 3 + 7 ", true)]
    [InlineData("(50-25)*3+7+0", false)]     // a number not given
    [InlineData("(50-25)*3+7-3+3", false)]   // reuses 3
    [InlineData("(50-25)*3", false)]         // omits 7
    [InlineData("82", false)]
    [InlineData("50+25+7", false)]           // omits 3 and misses
    [InlineData("50/3+7+25", false)]         // inexact division
    [InlineData("50/(25-25)+3+7", false)]
    [InlineData("(50-25)*3+7; 1", false)]    // injected junk
    [InlineData("(50-25)×3+7", false)]
    [InlineData("(50-25)*3+7)", false)]
    [InlineData("-(25-50)*3+7", false)]      // unary minus is not allowed
    [InlineData("0x32-25", false)]
    public void CountdownChecksTheExpression(string answer, bool correct)
    {
        var v = Score(Countdown, $"<think>\ntry\n</think>\n{answer} = 82\n\\boxed{{{answer}}}");
        Assert.Equal(correct, v.Correct);
        Assert.True(v.FormatOk);
        if (!correct) Assert.NotNull(v.Reason);
    }

    [Fact]
    public void NestedBracesInTheBoxAreMatched()
    {
        Assert.Equal("\\frac{1}{2}", Verifier.LastBoxed("x \\boxed{\\frac{1}{2}}"));
        Assert.Null(Verifier.LastBoxed("\\boxed{5198"));
        Assert.False(Score(Sum, "<think>\nx\n</think>\n\\boxed{5198").Correct);
    }
}
