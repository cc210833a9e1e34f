using System.Globalization;
using System.Text.RegularExpressions;

namespace Jevons.Training.Tasks;

/// <summary>
/// Countdown: 3 or 4 numbers from 1–99 and a target from 1–999 that some expression reaches
/// using each number exactly once with + − × ÷ (exact division). Problems are made by building a
/// random expression tree over the numbers (every intermediate a positive integer), so every
/// target is reachable. The worked solution is the trace of a depth-first search that combines
/// two numbers at a time, trying the moves that land closest to the target first: one line per
/// dead end (its moves, then the final move that comes closest, "no") and the line that reaches
/// the target ("yes"). Problems whose search needs more than a few dead ends are not drawn, so
/// every trace is the real search and stays short.
/// </summary>
public sealed partial class CountdownTask : IReasoningTask
{
    /// <summary>Dead ends a trace may show before its solution, by count of numbers.</summary>
    public int MaxDeadEnds3 { get; init; } = 4;
    public int MaxDeadEnds4 { get; init; } = 6;

    public string Name => "countdown";

    public Problem Sample(ref TaskRng rng, Split split, Difficulty? difficulty = null)
    {
        int n = difficulty switch { Difficulty.Easy => 3, Difficulty.Medium or Difficulty.Hard => 4, _ => 3 + rng.Next(2) };
        while (true)
        {
            var numbers = new int[n];
            for (int i = 0; i < n; i++) numbers[i] = rng.Next(1, 99);
            if (RandomTree(ref rng, numbers) is not long target || target is < 1 or > 999) continue;
            Array.Sort(numbers);
            var question = Question(numbers, (int)target);
            if (ReasoningTasks.SplitOf(question) != split) continue;
            if (Search(numbers, (int)target, n == 3 ? MaxDeadEnds3 : MaxDeadEnds4) is not { } trace) continue;
            return new Problem(Name, question, trace.Solution.Format(spaced: false));
        }
    }

    /// <summary>Combines random pairs with random operations until one value is left; null when a step is not a positive integer.</summary>
    static long? RandomTree(ref TaskRng rng, int[] numbers)
    {
        var values = numbers.Select(v => (long)v).ToList();
        while (values.Count > 1)
        {
            int i = rng.Next(values.Count), j = rng.Next(values.Count - 1);
            if (j >= i) j++;
            var v = Bin.Apply("+-*/"[rng.Next(4)], values[i], values[j]);
            if (v is not long r || r <= 0) return null;
            values[Math.Min(i, j)] = r;
            values.RemoveAt(Math.Max(i, j));
        }
        return values[0];
    }

    public static string Question(IReadOnlyList<int> numbers, int target) =>
        $"Using the numbers [{string.Join(", ", numbers)}], make {target}. Use each number once with + - * /.";

    [GeneratedRegex(@"^Using the numbers \[(\d{1,3}(?:, \d{1,3}){1,5})\], make (\d{1,4})\. Use each number once with \+ - \* /\.$")]
    private static partial Regex QuestionPattern();

    /// <summary>The numbers and target of a Countdown question, or null.</summary>
    public static (int[] Numbers, int Target)? ParseQuestion(string question)
    {
        var m = QuestionPattern().Match(question.Trim());
        if (!m.Success) return null;
        var numbers = m.Groups[1].Value.Split(", ").Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return (numbers, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    public Problem? Parse(string question)
    {
        if (ParseQuestion(question) is not var (numbers, target)) return null;
        var sorted = numbers.Order().ToArray();
        var trace = Search(sorted, target, int.MaxValue);
        return trace is null ? null : new Problem(Name, question.Trim(), trace.Solution.Format(spaced: false));
    }

    public string Solve(Problem problem)
    {
        var (numbers, target) = ParseQuestion(problem.Question) ?? throw new JevonsException($"not a Countdown question: '{problem.Question}'");
        var trace = Search(numbers.Order().ToArray(), target, int.MaxValue)
            ?? throw new JevonsException($"no solution: '{problem.Question}'");
        var answer = trace.Solution.Format(spaced: false);
        return Completion.Format(trace.Lines, $"{answer} = {target}", answer);
    }

    public bool IsCorrect(Problem problem, string answer, out string? reason)
    {
        var (numbers, target) = ParseQuestion(problem.Question) ?? throw new JevonsException($"not a Countdown question: '{problem.Question}'");
        var e = ExprParser.TryParse(answer.Trim());
        if (e is null) { reason = $"'{answer}' is not an expression of numbers, + - * / and parentheses"; return false; }
        var used = new List<long>();
        e.CollectNumbers(used);
        if (!used.Order().SequenceEqual(numbers.Select(v => (long)v).Order()))
        {
            reason = $"uses [{string.Join(", ", used)}], not each of [{string.Join(", ", numbers)}] exactly once";
            return false;
        }
        if (e.Evaluate() is not long value) { reason = "a division is inexact or by zero"; return false; }
        reason = value == target ? null : $"evaluates to {value}, not {target}";
        return value == target;
    }

    /// <summary>A search trace: its lines and the expression it found.</summary>
    public sealed record Trace(IReadOnlyList<string> Lines, Expr Solution, int DeadEnds);

    readonly record struct Item(long Value, Expr Expr);
    readonly record struct Move(int I, int J, char Op, long Value, Item A, Item B)
    {
        public Expr Expr => new Bin(Op, A.Expr, B.Expr);
        public string Text => $"{A.Value}{Op}{B.Value}={Value}";
    }

    /// <summary>The depth-first search the worked solution shows; null when it needs more than maxDeadEnds dead ends.</summary>
    public static Trace? Search(IReadOnlyList<int> numbers, int target, int maxDeadEnds)
    {
        var lines = new List<string>();
        var items = numbers.Select(v => new Item(v, new Num(v))).ToList();
        int deadEnds = 0;
        var found = Dfs(items, target, [], lines, ref deadEnds, maxDeadEnds);
        return found is null ? null : new Trace(lines, found, deadEnds);
    }

    static Expr? Dfs(List<Item> items, int target, List<string> path, List<string> lines, ref int deadEnds, int maxDeadEnds)
    {
        var moves = Moves(items, target);
        if (items.Count == 2)
        {
            int hitAt = moves.FindIndex(m => m.Value == target);
            if (hitAt >= 0)
            {
                lines.Add(string.Join(", ", path.Append(moves[hitAt].Text)) + " yes");
                return moves[hitAt].Expr;
            }
            if (++deadEnds > maxDeadEnds) return null;
            lines.Add(string.Join(", ", moves.Count > 0 ? path.Append(moves[0].Text) : path) + " no");
            return null;
        }
        foreach (var m in moves)
        {
            var next = new List<Item>(items.Count - 1);
            for (int k = 0; k < items.Count; k++) if (k != m.I && k != m.J) next.Add(items[k]);
            next.Add(new Item(m.Value, m.Expr));
            path.Add(m.Text);
            var found = Dfs(next, target, path, lines, ref deadEnds, maxDeadEnds);
            path.RemoveAt(path.Count - 1);
            if (found is not null) return found;
            if (deadEnds > maxDeadEnds) return null;
        }
        return null;
    }

    /// <summary>Every pair and operation with a positive integer result (larger operand first for − and ÷), closest to the target first.</summary>
    static List<Move> Moves(List<Item> items, int target)
    {
        var moves = new List<Move>();
        for (int i = 0; i < items.Count; i++)
            for (int j = i + 1; j < items.Count; j++)
            {
                var (a, b) = items[i].Value >= items[j].Value ? (items[i], items[j]) : (items[j], items[i]);
                foreach (var op in "+-*/")
                {
                    if (Bin.Apply(op, a.Value, b.Value) is not long v || v <= 0) continue;
                    moves.Add(new Move(i, j, op, v, a, b));
                }
            }
        // Stable: ties keep pair, then operation order.
        var keys = moves.Select((m, k) => (Math.Abs(m.Value - target), k)).ToArray();
        Array.Sort(keys);
        return keys.Select(k => moves[k.Item2]).ToList();
    }

    /// <summary>Every distinct expression (minimal parentheses, as written) that reaches the target with positive integer steps.</summary>
    public static IReadOnlyList<string> AllSolutions(IReadOnlyList<int> numbers, int target)
    {
        var found = new SortedSet<string>(StringComparer.Ordinal);
        void Walk(List<Item> items)
        {
            if (items.Count == 1)
            {
                if (items[0].Value == target) found.Add(items[0].Expr.Format(spaced: false));
                return;
            }
            foreach (var m in Moves(items, target))
            {
                var next = new List<Item>(items.Count - 1);
                for (int k = 0; k < items.Count; k++) if (k != m.I && k != m.J) next.Add(items[k]);
                next.Add(new Item(m.Value, m.Expr));
                Walk(next);
            }
        }
        Walk(numbers.Select(v => new Item(v, new Num(v))).ToList());
        return found.ToArray();
    }
}
