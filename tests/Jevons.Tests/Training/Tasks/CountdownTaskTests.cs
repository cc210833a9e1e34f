using System.Text.RegularExpressions;
using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training.Tasks;

public class CountdownTaskTests
{
    static readonly CountdownTask Task = new();

    static List<Problem> Draw(int n, ulong seed, Split split = Split.Train, Difficulty? d = null) => Task.Draw(n, seed, split, d);

    [Fact]
    public void QuestionsHaveTheExactPromptFormatAndSolvableTargetsInRange()
    {
        var pattern = new Regex(@"^Using the numbers \[(\d+(?:, \d+)*)\], make (\d+)\. Use each number once with \+ - \* /\.$");
        int three = 0, four = 0;
        foreach (var p in Draw(1000, 5))
        {
            var m = pattern.Match(p.Question);
            Assert.True(m.Success, p.Question);
            var numbers = m.Groups[1].Value.Split(", ").Select(int.Parse).ToArray();
            int target = int.Parse(m.Groups[2].Value);
            Assert.InRange(numbers.Length, 3, 4);
            Assert.All(numbers, n => Assert.InRange(n, 1, 99));
            Assert.Equal(numbers.Order(), numbers);
            Assert.InRange(target, 1, 999);
            Assert.True(Task.IsCorrect(p, p.Answer, out var why), why);
            Assert.Contains(p.Answer, CountdownTask.AllSolutions(numbers, target));
            if (numbers.Length == 3) three++; else four++;
        }
        Assert.InRange(three, 400, 600);
    }

    [Fact]
    public void TheExampleFromTheBrief()
    {
        var p = Task.Parse("Using the numbers [3, 7, 25, 50], make 82. Use each number once with + - * /.")!;
        Assert.True(Task.IsCorrect(p, "(50-25)*3+7", out _));
        var all = CountdownTask.AllSolutions([3, 7, 25, 50], 82);
        Assert.Contains("(50-25)*3+7", all);
        Assert.All(all, s => Assert.True(Task.IsCorrect(p, s, out var why), $"{s}: {why}"));
        var completion = Task.Solve(p);
        Assert.StartsWith("<think>\n", completion);
        Assert.Matches(@"\n</think>\n[^\n]+ = 82\n\\boxed\{[^\n]+\}$", completion);
        Assert.True(Verifier.Score(p, completion) is { Correct: true, FormatOk: true });
    }

    [Fact]
    public void AllSolutionsFindsEveryExpressionAndNoneForUnreachableTargets()
    {
        Assert.Empty(CountdownTask.AllSolutions([1, 1, 1], 999));
        var eights = CountdownTask.AllSolutions([2, 2, 2], 8);
        Assert.Equal(["(2+2)*2", "2*2*2"], eights);
        var p = new CountdownTask().Parse("Using the numbers [2, 3, 4], make 10. Use each number once with + - * /.")!;
        var tens = CountdownTask.AllSolutions([2, 3, 4], 10);
        Assert.Contains("3*2+4", tens);
        Assert.Contains("4*3-2", tens);
        Assert.All(tens, s => Assert.True(Task.IsCorrect(p, s, out var why), $"{s}: {why}"));
    }

    [Fact]
    public void TracesAreTheSearchAndEndInTheSolution()
    {
        foreach (var p in Draw(500, 9))
        {
            var (numbers, target) = CountdownTask.ParseQuestion(p.Question)!.Value;
            var trace = CountdownTask.Search(numbers, target, int.MaxValue)!;
            Assert.InRange(trace.DeadEnds, 0, numbers.Length == 3 ? 4 : 6);
            Assert.Equal(trace.DeadEnds + 1, trace.Lines.Count);
            Assert.All(trace.Lines.SkipLast(1), l => Assert.EndsWith(" no", l));
            Assert.EndsWith($"={target} yes", trace.Lines[^1]);
            Assert.Equal(numbers.Length - 1, trace.Lines[^1].Split(", ").Length);
        }
    }

    [Fact]
    public void EverySampledSolutionVerifies() => TaskSamples.AssertSolutionsVerifyInTheirSplit(Task, 1000, 11);

    [Fact]
    public void DifficultyPicksTheCountOfNumbers()
    {
        Assert.All(Draw(200, 2, d: Difficulty.Easy), p => Assert.Equal(3, CountdownTask.ParseQuestion(p.Question)!.Value.Numbers.Length));
        Assert.All(Draw(200, 2, d: Difficulty.Hard), p => Assert.Equal(4, CountdownTask.ParseQuestion(p.Question)!.Value.Numbers.Length));
    }

    [Fact]
    public void SeedsReproduce() => Assert.Equal(Draw(100, 3), Draw(100, 3));
}
