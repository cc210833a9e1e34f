using System.Globalization;

namespace Jevons.Training.Tasks;

/// <summary>
/// Integer arithmetic: a + b and a − b with 0–9999 (results may be negative), a × b with a ≤ 999
/// and b ≤ 99, and three-number expressions of 0–99 with + − × (at most one ×, which keeps the
/// worked solution inside a 512-token context) and parentheses, every intermediate ≥ 0. The question is
/// "What is 4821 + 377?". The worked solution goes column by column, least significant digit
/// first, one line per column; each line restates the digits still to be used (so the digits
/// it needs are the last ones in view), the column sum with its carry in, the carry out, and
/// the result so far. × writes one line per multiplier digit (multiplicand digits right to left,
/// each product plus the carry in), then adds the partial products by columns. Expressions are
/// reduced innermost operation first, each reduction followed by the rewritten expression.
/// </summary>
public sealed class ArithmeticTask : IReasoningTask
{
    public string Name => "arithmetic";

    enum Kind { Add, Sub, Mul, Expression }

    public Problem Sample(ref TaskRng rng, Split split, Difficulty? difficulty = null)
    {
        while (true)
        {
            var kind = difficulty switch
            {
                Difficulty.Easy => rng.Next(2) == 0 ? Kind.Add : Kind.Sub,
                Difficulty.Medium => (Kind)rng.Next(3),
                Difficulty.Hard => Kind.Expression,
                _ => (Kind)rng.Next(4),
            };
            int maxDigits = difficulty == Difficulty.Easy ? 2 : 4;
            Expr e = kind switch
            {
                Kind.Add => new Bin('+', new Num(Operand(ref rng, maxDigits)), new Num(Operand(ref rng, maxDigits))),
                Kind.Sub => new Bin('-', new Num(Operand(ref rng, maxDigits)), new Num(Operand(ref rng, maxDigits))),
                Kind.Mul => new Bin('*', new Num(Operand(ref rng, 3)), new Num(Operand(ref rng, 2))),
                _ => ThreeNumbers(ref rng),
            };
            if (kind == Kind.Expression && (!IntermediatesNonNegative(e) || e.Format(spaced: false).Count(c => c == '*') > 1)) continue;
            var question = Question(e);
            if (ReasoningTasks.SplitOf(question) != split) continue;
            return new Problem(Name, question, e.Evaluate()!.Value.ToString(CultureInfo.InvariantCulture));
        }
    }

    static string Question(Expr e) => $"What is {e.Format(spaced: true)}?";

    /// <summary>A number with a uniformly drawn digit count (1..maxDigits), then uniform among those.</summary>
    static long Operand(ref TaskRng rng, int maxDigits)
    {
        int digits = rng.Next(1, maxDigits);
        return digits == 1 ? rng.Next(0, 9) : rng.Next(Pow10(digits - 1), Pow10(digits) - 1);
    }

    static int Pow10(int n) => n switch { 0 => 1, 1 => 10, 2 => 100, 3 => 1000, _ => 10000 };

    static Expr ThreeNumbers(ref TaskRng rng)
    {
        const string ops = "+-*";
        Expr a = new Num(Operand(ref rng, 2)), b = new Num(Operand(ref rng, 2)), c = new Num(Operand(ref rng, 2));
        char inner = ops[rng.Next(3)], outer = ops[rng.Next(3)];
        return rng.Next(2) == 0 ? new Bin(outer, new Bin(inner, a, b), c) : new Bin(outer, a, new Bin(inner, b, c));
    }

    /// <summary>Every value below the root is ≥ 0 (only the final result may be negative).</summary>
    static bool IntermediatesNonNegative(Expr e) =>
        e is not Bin b || (Inner(b.Left) && Inner(b.Right));

    static bool Inner(Expr e) => e is Num || (e is Bin b && b.Evaluate() >= 0 && Inner(b.Left) && Inner(b.Right));

    public Problem? Parse(string question)
    {
        question = question.Trim();
        var e = ExpressionOf(question);
        if (e is null || e.Evaluate() is not long value) return null;
        return new Problem(Name, question, value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>The expression of "What is …?" (+ − × only), or null.</summary>
    static Expr? ExpressionOf(string question) =>
        question.StartsWith("What is ", StringComparison.Ordinal) && question.EndsWith('?') && !question.Contains('/')
            ? ExprParser.TryParse(question["What is ".Length..^1]) : null;

    public bool IsCorrect(Problem problem, string answer, out string? reason)
    {
        var a = answer.Trim();
        bool integer = a.Length is > 0 and <= 19 && (a[0] == '-' ? a.Length > 1 && a[1..].All(char.IsAsciiDigit) : a.All(char.IsAsciiDigit));
        if (!integer || !long.TryParse(a, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
        {
            reason = $"'{a}' is not an integer";
            return false;
        }
        bool ok = v == long.Parse(problem.Answer, CultureInfo.InvariantCulture);
        reason = ok ? null : $"{a} is wrong (expected {problem.Answer})";
        return ok;
    }

    public string Solve(Problem problem)
    {
        var e = ExpressionOf(problem.Question)
            ?? throw new JevonsException($"not an arithmetic question: '{problem.Question}'");
        var lines = new List<string>();
        long value = Reduce(e, lines);
        return Completion.Format(lines, $"{e.Format(spaced: true)} = {value}", value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Evaluates innermost-first (deepest leftmost operation on two numbers), writing the work.</summary>
    static long Reduce(Expr e, List<string> lines)
    {
        while (e is Bin)
        {
            var before = e;
            e = ReduceOnce(e, lines);
            if (e is Bin) lines.Add($"{before.Format(spaced: true)} = {e.Format(spaced: true)}");
        }
        return ((Num)e).Value;
    }

    static Expr ReduceOnce(Expr e, List<string> lines)
    {
        var b = (Bin)e;
        if (b.Left is Bin) return b with { Left = ReduceOnce(b.Left, lines) };
        if (b.Right is Bin) return b with { Right = ReduceOnce(b.Right, lines) };
        long l = ((Num)b.Left).Value, r = ((Num)b.Right).Value;
        return new Num(Columns.Apply(b.Op, l, r, lines));
    }
}

/// <summary>The column procedures of the worked solutions, shared by the arithmetic steps.</summary>
internal static class Columns
{
    public static long Apply(char op, long l, long r, List<string> lines)
    {
        if (l < 0 || r < 0 || op == '/')
        {
            long v = Bin.Apply(op, l, r) ?? throw new JevonsException($"cannot evaluate {l} {op} {r}");
            lines.Add($"{l}{op}{r}={v}");
            return v;
        }
        switch (op)
        {
            case '+': return Add(l, r, lines);
            case '-':
                if (l >= r) return Subtract(l, r, lines);
                lines.Add($"{l}-{r}=-({r}-{l})");
                return -Subtract(r, l, lines);
            default: return Multiply(l, r, lines);
        }
    }

    /// <summary>"482+37: 2+7+0=9 c0 → 98": rest of the operands, column sum with carry in, carry out, result so far.</summary>
    public static long Add(long a, long b, List<string> lines)
    {
        string A = a.ToString(CultureInfo.InvariantCulture), B = b.ToString(CultureInfo.InvariantCulture), done = "";
        int carry = 0;
        while (A.Length > 0 || B.Length > 0 || carry > 0)
        {
            string ra = A.Length > 0 ? A : "0", rb = B.Length > 0 ? B : "0";
            int x = ra[^1] - '0', y = rb[^1] - '0', s = x + y + carry;
            done = (char)('0' + s % 10) + done;
            lines.Add($"{ra}+{rb}: {x}+{y}+{carry}={s} c{s / 10} → {done}");
            carry = s / 10;
            A = A.Length > 0 ? A[..^1] : "";
            B = B.Length > 0 ? B[..^1] : "";
        }
        return a + b;
    }

    /// <summary>a ≥ b. "482-37: 2-7-1=-6+10=4 b1 → 44": column difference with borrow in, +10 when negative, borrow out.</summary>
    public static long Subtract(long a, long b, List<string> lines)
    {
        string A = a.ToString(CultureInfo.InvariantCulture), B = b.ToString(CultureInfo.InvariantCulture), done = "";
        int borrow = 0;
        while (A.Length > 0)
        {
            string rb = B.Length > 0 ? B : "0";
            int x = A[^1] - '0', y = rb[^1] - '0', v = x - y - borrow;
            int next = v < 0 ? 1 : 0, digit = v < 0 ? v + 10 : v;
            done = (char)('0' + digit) + done;
            lines.Add(v < 0
                ? $"{A}-{rb}: {x}-{y}-{borrow}={v}+10={digit} b1 → {done}"
                : $"{A}-{rb}: {x}-{y}-{borrow}={v} b0 → {done}");
            borrow = next;
            A = A[..^1];
            B = B.Length > 0 ? B[..^1] : "";
        }
        return a - b;
    }

    /// <summary>
    /// "482*30: 2*3+0=6, 8*3+0=24, 4*3+2=14 → 14460" per nonzero multiplier digit (the shorter
    /// operand is the multiplier), then the partial products added by columns.
    /// </summary>
    public static long Multiply(long a, long b, List<string> lines)
    {
        if (Digits(b) > Digits(a))
        {
            lines.Add($"{a}*{b}={b}*{a}");
            (a, b) = (b, a);
        }
        string A = a.ToString(CultureInfo.InvariantCulture), B = b.ToString(CultureInfo.InvariantCulture);
        var partials = new List<long>();
        for (int k = 0; k < B.Length; k++)
        {
            int d = B[B.Length - 1 - k] - '0';
            if (d == 0 && b != 0) continue;
            string zeros = new('0', k);
            var steps = new List<string>();
            int carry = 0;
            for (int i = A.Length - 1; i >= 0; i--)
            {
                int x = A[i] - '0', v = x * d + carry;
                steps.Add($"{x}*{d}+{carry}={v}");
                carry = v / 10;
            }
            long p = a * d;
            for (int z = 0; z < k; z++) p *= 10;
            lines.Add($"{A}*{d}{zeros}: {string.Join(", ", steps)} → {p}");
            partials.Add(p);
        }
        long sum = partials[0];
        for (int i = 1; i < partials.Count; i++) sum = Add(sum, partials[i], lines);
        return sum;
    }

    static int Digits(long v) => v.ToString(CultureInfo.InvariantCulture).Length;
}

/// <summary>The completion layout every task shares.</summary>
internal static class Completion
{
    public const string ThinkOpen = "<think>", ThinkClose = "</think>";

    /// <summary>"&lt;think&gt;\n{lines}\n&lt;/think&gt;\n{answer line}\n\\boxed{answer}".</summary>
    public static string Format(IEnumerable<string> reasoning, string answerLine, string boxed) =>
        $"{ThinkOpen}\n{string.Join("\n", reasoning)}\n{ThinkClose}\n{answerLine}\n\\boxed{{{boxed}}}";
}
