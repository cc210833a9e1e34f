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
            Assert.Equal(trace.DeadEnds, trace.Lines.Count(l => l.EndsWith(" no", StringComparison.Ordinal)));
            Assert.Single(trace.Lines, l => l.EndsWith(" yes", StringComparison.Ordinal));
            Assert.Equal($"want {target} from {string.Join(" ", numbers)}", trace.Lines[0]);
            Assert.EndsWith($"={target}, want {target} yes", trace.Lines[^1]);
            Assert.Null(Replay(trace.Lines, target));
        }
    }

    [Fact]
    public void ATraceReadsAsTheSearchLineByLine()
    {
        var trace = CountdownTask.Search([43, 45, 59], 147, int.MaxValue)!;
        Assert.Equal(
        [
            "want 147 from 43 45 59",
            "59+45, rest 43",
            "59+45: 9+5+0=14 c1 → 4", "5+4: 5+4+1=10 c1 → 04", "0+0: 0+0+1=1 c0 → 104",
            "59+45=104",
            "want 147 from 43 104",
            "104+43, rest none",
            "104+43: 4+3+0=7 c0 → 7", "10+4: 0+4+0=4 c0 → 47", "1+0: 1+0+0=1 c0 → 147",
            "104+43=147, want 147 yes",
        ], trace.Lines);
        // A replay catches each kind of slip a model makes in the bookkeeping.
        Assert.Null(Replay(trace.Lines, 147));
        Assert.Contains("rest", Replay(trace.Lines.Select(l => l == "59+45, rest 43" ? "59+45, rest 45" : l).ToList(), 147));
        Assert.Contains("not in", Replay(trace.Lines.Select(l => l == "59+45, rest 43" ? "59+44, rest 43" : l).ToList(), 147));
        Assert.Contains("yes", Replay(trace.Lines.Select(l => l == "104+43=147, want 147 yes" ? "104+43=147, want 147 no" : l).ToList(), 147));
        Assert.Contains("state", Replay(trace.Lines.Select(l => l == "want 147 from 43 104" ? "want 147 from 45 104" : l).ToList(), 147));
    }

    /// <summary>
    /// Replays a trace against the search's state; the first line that does not follow from the
    /// lines above it, or null. Each move's operands come from the current state and its "rest" is
    /// that state less them, in order; its result is the operation's; the next state is the rest
    /// plus the result; "yes" is said of the target only; "back:" restates a state still on the path.
    /// </summary>
    static string? Replay(IReadOnlyList<string> lines, int target)
    {
        var path = new List<List<long>>();
        List<long>? next = null, rest = null;
        (long A, char Op, long B)? move = null;
        static List<long> Numbers(string s) => s == "none" ? [] : s.Split(' ').Select(long.Parse).ToList();
        var want = $"want {target}";
        foreach (var l in lines)
        {
            Match m;
            if (l.StartsWith($"{want} from ", StringComparison.Ordinal))
            {
                var state = Numbers(l[(want.Length + 6)..]);
                if (path.Count > 0 && (next is null || !state.SequenceEqual(next))) return $"'{l}': not the state the move left";
                path.Add(state);
                next = null;
            }
            else if (l.StartsWith($"back: {want} from ", StringComparison.Ordinal))
            {
                var state = Numbers(l[(want.Length + 12)..]);
                int at = path.FindLastIndex(s => s.SequenceEqual(state));
                if (at < 0) return $"'{l}': not a state on the path";
                path.RemoveRange(at + 1, path.Count - at - 1);
            }
            else if ((m = Regex.Match(l, @"^(\d+)([-+*/])(\d+), rest (none|\d+(?: \d+)*)$")).Success)
            {
                long a = long.Parse(m.Groups[1].Value), b = long.Parse(m.Groups[3].Value);
                var left = path[^1].ToList();
                if (!left.Remove(a) || !left.Remove(b)) return $"'{l}': an operand is not in the state";
                rest = Numbers(m.Groups[4].Value);
                if (!rest.SequenceEqual(left)) return $"'{l}': the rest is not the state less the operands";
                move = (a, m.Groups[2].Value[0], b);
            }
            else if ((m = Regex.Match(l, @"^(\d+)([-+*/])(\d+)=(\d+)(, want \d+ (yes|no))?$")).Success
                && move is var (a, op, b) && long.Parse(m.Groups[1].Value) == a && m.Groups[2].Value[0] == op && long.Parse(m.Groups[3].Value) == b)
            {
                long v = long.Parse(m.Groups[4].Value);
                if (Bin.Apply(op, a, b) != v) return $"'{l}': false";
                if (m.Groups[5].Success)
                {
                    if (rest!.Count != 0) return $"'{l}': numbers are left";
                    if (!m.Groups[5].Value.StartsWith($", {want} ", StringComparison.Ordinal)) return $"'{l}': not the target";
                    if ((m.Groups[6].Value == "yes") != (v == target)) return $"'{l}': wrong yes/no";
                }
                else if (rest!.Count == 0) return $"'{l}': the last move does not compare";
                next = [.. rest, v];
                move = null;
            }
            // The move's column work: the arithmetic task's lines.
            else if (move is null || !Regex.IsMatch(l, @"^(\d+[-+*]\d+: .+|cmp .+|\d+\*\d+=\d+\*\d+(\+\d+\*\d+)*|\d+\*\d+=\d+)$"))
                return $"'{l}': not a column line of a move";
        }
        return null;
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
