using System.Text.RegularExpressions;
using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training.Tasks;

public class ArithmeticTaskTests
{
    static readonly ArithmeticTask Task = new();

    static List<Problem> Draw(int n, ulong seed, Split split = Split.Train, Difficulty? d = null) => Task.Draw(n, seed, split, d);

    [Fact]
    public void QuestionsHaveTheExactPromptFormat()
    {
        var binary = new Regex(@"^What is (\d{1,4}) ([+\-*]) (\d{1,4})\?$");
        var three = new Regex(@"^What is \(?\d{1,2} [+\-*] \(?\d{1,2}\)? [+\-*] \d{1,2}\)?\?$");
        int binaries = 0, threes = 0, parens = 0;
        foreach (var p in Draw(5000, 1))
        {
            Assert.Equal("arithmetic", p.Task);
            var m = binary.Match(p.Question);
            if (m.Success)
            {
                long a = long.Parse(m.Groups[1].Value), b = long.Parse(m.Groups[3].Value);
                char op = m.Groups[2].Value[0];
                if (op == '*') Assert.True(a <= 999 && b <= 99, p.Question);
                long expected = op switch { '+' => a + b, '-' => a - b, _ => a * b };
                Assert.Equal(expected.ToString(), p.Answer);
                binaries++;
                continue;
            }
            Assert.Matches(three, p.Question);
            threes++;
            if (p.Question.Contains('(')) parens++;
        }
        Assert.InRange(binaries, 3000, 4200); // three binary kinds and one expression kind in four
        Assert.True(parens > 100, $"{parens} of {threes} expressions have parentheses");
    }

    [Theory]
    [InlineData("What is 4821 + 377?", "5198")]
    [InlineData("What is 377 - 4821?", "-4444")]
    [InlineData("What is 482 * 37?", "17834")]
    [InlineData("What is (17 + 5) * 3?", "66")]
    [InlineData("What is 17 + 5 * 3?", "32")]
    [InlineData("What is 9999 + 9999?", "19998")]
    [InlineData("What is 1000 - 999?", "1")]
    [InlineData("What is 0 * 0?", "0")]
    [InlineData("What is 99 - (98 - 97)?", "98")]
    public void WorkedSolutionsVerify(string question, string answer)
    {
        var p = Task.Parse(question)!;
        Assert.Equal(answer, p.Answer);
        var completion = Task.Solve(p);
        Assert.EndsWith($"\n\\boxed{{{answer}}}", completion);
        var v = Verifier.Score(p, completion);
        Assert.True(v.Correct && v.FormatOk, v.Reason);
    }

    [Fact]
    public void AdditionIsWrittenColumnByColumn()
    {
        var p = Task.Parse("What is 4821 + 377?")!;
        Assert.Equal(
            "<think>\n" +
            "4821 + 377 = [4821+377]\n" +
            "4821+377: 1+7+0=8 c0 → 8\n" +
            "482+37: 2+7+0=9 c0 → 98\n" +
            "48+3: 8+3+0=11 c1 → 198\n" +
            "4+0: 4+0+1=5 c0 → 5198\n" +
            "4821+377=5198\n" +
            "[4821+377] = 5198\n" +
            "</think>\n" +
            "4821 + 377 = 5198\n" +
            "\\boxed{5198}", Task.Solve(p));
    }

    [Fact]
    public void SubtractionComparesThenBorrowsAndNegativeResultsSwap()
    {
        Assert.Equal(
            "<think>\n" +
            "377 - 4821 = [377-4821]\n" +
            "cmp 377 4821: 3d<4d\n" +
            "377-4821=-(4821-377)\n" +
            "4821-377: 1-7-0=-6+10=4 b1 → 4\n" +
            "482-37: 2-7-1=-6+10=4 b1 → 44\n" +
            "48-3: 8-3-1=4 b0 → 444\n" +
            "4-0: 4-0-0=4 b0 → 4444\n" +
            "377-4821=-4444\n" +
            "[377-4821] = -4444\n" +
            "</think>\n" +
            "377 - 4821 = -4444\n" +
            "\\boxed{-4444}", Task.Solve(Task.Parse("What is 377 - 4821?")!));
        Assert.StartsWith("<think>\n4821 - 4837 = [4821-4837]\ncmp 4821 4837: 4=4, 821 837: 8=8, 21 37: 2<3\n4821-4837=-(4837-4821)\n", Task.Solve(Task.Parse("What is 4821 - 4837?")!));
        Assert.StartsWith("<think>\n55 - 55 = [55-55]\ncmp 55 55: 5=5, 5 5: 5=5\n55-55: 5-5-0=0 b0 → 0\n", Task.Solve(Task.Parse("What is 55 - 55?")!));
    }

    [Fact]
    public void MultiplicationIsPartialProductsThenColumns()
    {
        Assert.Equal(
            "<think>\n" +
            "482 * 37 = [482*37]\n" +
            "482*37=482*7+482*30\n" +
            "482*7: 2*7=14+0=14 c1 → 4\n" +
            "48*7: 8*7=56+1=57 c5 → 74\n" +
            "4*7: 4*7=28+5=33 c3 → 3374\n" +
            "482*7=3374\n" +
            "482*3: 2*3=6+0=6 c0 → 6\n" +
            "48*3: 8*3=24+0=24 c2 → 46\n" +
            "4*3: 4*3=12+2=14 c1 → 1446\n" +
            "482*30=14460\n" +
            "3374+14460: 4+0+0=4 c0 → 4\n" +
            "337+1446: 7+6+0=13 c1 → 34\n" +
            "33+144: 3+4+1=8 c0 → 834\n" +
            "3+14: 3+4+0=7 c0 → 7834\n" +
            "0+1: 0+1+0=1 c0 → 17834\n" +
            "482*37=17834\n" +
            "[482*37] = 17834\n" +
            "</think>\n" +
            "482 * 37 = 17834\n" +
            "\\boxed{17834}", Task.Solve(Task.Parse("What is 482 * 37?")!));
    }

    [Fact]
    public void ExpressionsReduceInnermostFirst()
    {
        Assert.Equal(
            "<think>\n" +
            "(17 + 5) * 3 = [17+5] * 3\n" +
            "17+5: 7+5+0=12 c1 → 2\n" +
            "1+0: 1+0+1=2 c0 → 22\n" +
            "17+5=22\n" +
            "[17+5] * 3 = 22 * 3\n" +
            "22 * 3 = [22*3]\n" +
            "22*3: 2*3=6+0=6 c0 → 6\n" +
            "2*3: 2*3=6+0=6 c0 → 66\n" +
            "22*3=66\n" +
            "[22*3] = 66\n" +
            "</think>\n" +
            "(17 + 5) * 3 = 66\n" +
            "\\boxed{66}", Task.Solve(Task.Parse("What is (17 + 5) * 3?")!));
    }

    [Fact]
    public void NegativeIntermediatesFollowSignRulesAndTheQuestionsSpellingIsKept()
    {
        var completion = Task.Solve(Task.Parse("What is (5 - 17) * 3?")!);
        Assert.Contains("\n5-17=-12\n[5-17] * 3 = -12 * 3\n-12 * 3 = [-12*3]\n-12*3=-(12*3)\n", completion);
        Assert.StartsWith("<think>\n(5 - 17) * 3 = [5-17] * 3\n", completion);
        Assert.EndsWith("\n(5 - 17) * 3 = -36\n\\boxed{-36}", completion);
        var grouped = Task.Solve(Task.Parse("What is (4 * 5) + 3?")!);
        Assert.StartsWith("<think>\n(4 * 5) + 3 = [4*5] + 3\n", grouped);
        Assert.Contains("\n4*5=20\n[4*5] + 3 = 20 + 3\n20 + 3 = [20+3]\n", grouped);
        Assert.EndsWith("\n(4 * 5) + 3 = 23\n\\boxed{23}", grouped);
        Assert.Contains("\n3-17=-14\n5 - [3-17] = 5 - -14\n5 - -14 = [5--14]\n5--14=5+14\n", Task.Solve(Task.Parse("What is 5 - (3 - 17)?")!));
        Assert.Equal("What is 4 * 5 + 3?", ArithmeticTask.CanonicalOf("What is (4 * 5) + 3?"));
    }

    [Fact]
    public void EverySampledSolutionVerifies() => TaskSamples.AssertSolutionsVerifyInTheirSplit(Task, 3000, 7);

    [Fact]
    public void DifficultiesSampleTheirKinds()
    {
        Assert.All(Draw(500, 3, d: Difficulty.Easy), p => Assert.Matches(@"^What is \d{1,2} [+-] \d{1,2}\?$", p.Question));
        Assert.All(Draw(500, 3, d: Difficulty.Medium), p => Assert.Matches(@"^What is \d{1,4} [+\-*] \d{1,4}\?$", p.Question));
        Assert.All(Draw(500, 3, d: Difficulty.Hard), p => Assert.Equal(3, Regex.Matches(p.Question, @"\d+").Count));
    }

    [Fact]
    public void TheTrainingSplitDrillsCloseDifferencesAndSwappedProducts()
    {
        static bool Close(Problem p) =>
            Regex.Match(p.Question, @"^What is (\d+) - (\d+)\?$") is { Success: true } m
            && m.Groups[1].Length == m.Groups[2].Length && m.Groups[1].Length >= 3 && m.Groups[1].Value[0] == m.Groups[2].Value[0];
        static bool Swapped(Problem p) => Regex.IsMatch(p.Question, @"^What is \d+ \* \(\d+ [+*] \d+\)\?$");
        var train = Draw(4000, 5);
        var test = Draw(4000, 5, Split.Test);
        // Uniform 4-digit operands share their leading digit a tenth of the time, half the operands are drawn by
        // digit count: ~3% of subtractions by chance; the drill adds a quarter of them.
        double closeTrain = train.Count(Close) / (double)train.Count(p => p.Question.Contains(" - ") && !p.Question.Contains('(')),
               closeTest = test.Count(Close) / (double)test.Count(p => p.Question.Contains(" - ") && !p.Question.Contains('('));
        Assert.InRange(closeTrain, 0.2, 0.4);
        Assert.InRange(closeTest, 0, 0.1);
        Assert.InRange(train.Count(Swapped) / (double)train.Count(p => p.Question.Contains('(')), 0.3, 0.5);
        Assert.InRange(test.Count(Swapped) / (double)test.Count(p => p.Question.Contains('(')), 0, 0.15);
        Assert.Contains(train.Where(Swapped), p => Regex.IsMatch(Task.Solve(p), @"\n(\d{1,2})\*(\d{3,})=\2\*\1\n"));
        Assert.All(Draw(500, 5, d: Difficulty.Easy), p => Assert.DoesNotContain("(", p.Question));
    }

    [Fact]
    public void SeedsReproduceAndDiffer()
    {
        Assert.Equal(Draw(200, 42), Draw(200, 42));
        Assert.NotEqual(Draw(200, 42).Select(p => p.Question), Draw(200, 43).Select(p => p.Question));
    }
}
