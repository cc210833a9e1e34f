using System.Globalization;

namespace Jevons.Training.Tasks;

/// <summary>
/// Integer arithmetic: a + b and a − b with 0–9999 (results may be negative), a × b with a ≤ 999
/// and b ≤ 99, and three-number expressions of 0–99 with + − × and parentheses (intermediates may be
/// negative; the question writes the inner operation in parentheses whenever it is grouped, or, half
/// the time, only where precedence needs them). Operands are drawn half uniformly over their whole
/// range (so mostly of full length, as a user's random questions are) and half with a uniformly drawn
/// digit count (so short ones are seen too). The question is "What is 4821 + 377?"; the split is decided
/// by its canonical (minimal-parentheses) text, so the two spellings of a problem share a split.
/// The training split (except Easy) also drills the two rarest steps a quarter of the time: a − b of
/// operands sharing their leading digits, and three-number expressions "a * (b + c)" / "a * (b * c)",
/// whose product opens by swapping its factors; the test split keeps the distribution above.
/// Each operation of the worked solution opens with the expression in its current spelling and the
/// operation to do in brackets ("38 + 96 + 5 = [38+96] + 5") and closes with its result ("38+96=134")
/// and the bracketed line with the result put in ("[38+96] + 5 = 134 + 5"), so whether work remains is
/// on the line just written. Between them it goes column by column, least
/// significant digit first, one line per column;
/// each line restates the digits still to be used (so the digits it needs are the last ones in view),
/// the column's one small fact, the carry (or borrow) out, and the result so far. A subtraction first
/// compares its operands (digit counts, else leading digits, restating the rest after each equal pair)
/// and swaps when the result is negative. × with two nonzero multiplier digits first writes its plan
/// ("482*37=482*7+482*30"), then one line per multiplicand digit per nonzero multiplier digit (the product fact,
/// then the carry added), a line with each shifted partial product, then adds them by columns.
/// Negative operands are reduced by sign rules to the same column procedures. Expressions are reduced
/// innermost operation first.
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
            bool drill = split == Split.Train && difficulty != Difficulty.Easy && rng.Next(4) == 0;
            Expr e = kind switch
            {
                Kind.Add => new Bin('+', new Num(Operand(ref rng, maxDigits)), new Num(Operand(ref rng, maxDigits))),
                Kind.Sub when drill => CloseDifference(ref rng),
                Kind.Sub => new Bin('-', new Num(Operand(ref rng, maxDigits)), new Num(Operand(ref rng, maxDigits))),
                Kind.Mul => new Bin('*', new Num(Operand(ref rng, 3)), new Num(Operand(ref rng, 2))),
                _ when drill => SwappedProduct(ref rng),
                _ => ThreeNumbers(ref rng),
            };
            var canonical = Question(e.Format(spaced: true));
            if (ReasoningTasks.SplitOf(canonical) != split) continue;
            bool grouped = kind == Kind.Expression && rng.Next(2) == 0;
            var question = grouped ? Question(Grouped(e)) : canonical;
            return new Problem(Name, question, e.Evaluate()!.Value.ToString(CultureInfo.InvariantCulture));
        }
    }

    static string Question(string expression) => $"What is {expression}?";

    /// <summary>
    /// The canonical question of an arithmetic question (its expression with minimal parentheses), which
    /// decides the split; null when the text is not an arithmetic question.
    /// </summary>
    public static string? CanonicalOf(string question) =>
        ExpressionOf(question.Trim()) is { } e ? Question(e.Format(spaced: true)) : null;

    public string Canonical(string question) => CanonicalOf(question) ?? question;

    /// <summary>A three-number expression with its inner operation always in parentheses: "(17 + 5) + 3".</summary>
    static string Grouped(Expr e)
    {
        var b = (Bin)e;
        string Side(Expr x) => x is Bin ? $"({x.Format(spaced: true)})" : x.Format(spaced: true);
        return $"{Side(b.Left)} {b.Op} {Side(b.Right)}";
    }

    /// <summary>
    /// A number of at most <paramref name="maxDigits"/> digits: half the time uniform over the whole
    /// range, else with a uniformly drawn digit count (1..maxDigits), then uniform among those.
    /// </summary>
    static long Operand(ref TaskRng rng, int maxDigits)
    {
        if (rng.Next(2) == 0) return rng.Next(0, Pow10(maxDigits) - 1);
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

    /// <summary>
    /// A training drill: a − b of equal length (3 or 4 digits) sharing their leading digits, so the
    /// comparison runs past the first pair ("cmp 7215 7264: 7=7, 215 264: 2=2, 15 64: 1<6"); uniform
    /// operands share a leading digit only a tenth of the time.
    /// </summary>
    static Expr CloseDifference(ref TaskRng rng)
    {
        int digits = rng.Next(3) == 0 ? 3 : 4, tail = Pow10(rng.Next(1, digits - 1));
        long a = rng.Next(Pow10(digits - 1), Pow10(digits) - 1), b = a - a % tail + rng.Next(0, tail - 1);
        return rng.Next(2) == 0 ? new Bin('-', new Num(a), new Num(b)) : new Bin('-', new Num(b), new Num(a));
    }

    /// <summary>
    /// A training drill: "a * (b + c)" or "a * (b * c)", whose product has the shorter factor first and
    /// so opens with the swap "16*136=136*16" (a two-number question never needs it: there b ≤ 99).
    /// </summary>
    static Expr SwappedProduct(ref TaskRng rng)
    {
        Expr a = new Num(Operand(ref rng, 2)), b = new Num(Operand(ref rng, 2)), c = new Num(Operand(ref rng, 2));
        return new Bin('*', a, new Bin(rng.Next(2) == 0 ? '+' : '*', b, c));
    }

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
        var question = problem.Question.Trim();
        var e = ExpressionOf(question)
            ?? throw new JevonsException($"not an arithmetic question: '{problem.Question}'");
        string written = question["What is ".Length..^1].Trim();
        var lines = new List<string>();
        long value = Reduce(e, written, lines);
        return Completion.Format(lines, $"{written} = {value}", value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Evaluates innermost-first (deepest leftmost operation on two numbers), writing the work. Each
    /// operation opens with the expression as last written (the question's own spelling first) and the
    /// same expression with that operation in brackets, "(17 + 5) * 3 = [17+5] * 3"; it closes with
    /// "17+5=22" and then that bracketed line again with the result put in, "[17+5] * 3 = 22 * 3", so the
    /// writer always copies the bracketed line and whether work remains is on the line just written
    /// (after the last operation the line is "[22*3] = 66" and the think block ends); the next operation
    /// starts from "22 * 3".
    /// </summary>
    static long Reduce(Expr e, string written, List<string> lines)
    {
        while (e is Bin)
        {
            string marked = Mark(e).Format(spaced: true);
            lines.Add($"{written} = {marked}");
            e = ReduceOnce(e, lines);
            written = e.Format(spaced: true);
            lines.Add($"{marked} = {written}");
        }
        return ((Num)e).Value;
    }

    /// <summary>The expression with the operation <see cref="ReduceOnce"/> takes next written "[l op r]".</summary>
    static Expr Mark(Expr e)
    {
        var b = (Bin)e;
        if (b.Left is Bin) return b with { Left = Mark(b.Left) };
        if (b.Right is Bin) return b with { Right = Mark(b.Right) };
        return new Marked($"[{b.Format(spaced: false)}]");
    }

    /// <summary>A bracketed operation inside a written expression; a leaf for the formatter.</summary>
    sealed record Marked(string Text) : Expr
    {
        public override long? Evaluate() => null;
        public override int Precedence => 3;
        public override void CollectNumbers(List<long> into) { }
        internal override void Write(System.Text.StringBuilder sb, bool spaced) => sb.Append(Text);
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
    static string S(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// One operation on any signs (sign rules reduce it to + − × of non-negative numbers), closed by the
    /// line "l op r=value" unless the last line already says exactly that.
    /// </summary>
    public static long Apply(char op, long l, long r, List<string> lines)
    {
        long value = Signed(op, l, r, lines);
        string summary = $"{S(l)}{op}{S(r)}={S(value)}";
        if (lines.Count == 0 || lines[^1] != summary) lines.Add(summary);
        return value;
    }

    static long Signed(char op, long l, long r, List<string> lines)
    {
        if (op == '/')
        {
            long v = Bin.Apply(op, l, r) ?? throw new JevonsException($"cannot evaluate {l} {op} {r}");
            lines.Add($"{l}/{r}={v}");
            return v;
        }
        long x = Math.Abs(l), y = Math.Abs(r);
        string head = $"{S(l)}{op}{S(r)}";
        switch (op)
        {
            case '*':
                if (l < 0 && r < 0) { lines.Add($"{head}={S(x)}*{S(y)}"); return Multiply(x, y, lines); }
                if (l < 0 || r < 0) { lines.Add($"{head}=-({S(x)}*{S(y)})"); return -Multiply(x, y, lines); }
                return Multiply(l, r, lines);
            case '+':
                if (l < 0 && r < 0) { lines.Add($"{head}=-({S(x)}+{S(y)})"); return -Add(x, y, lines); }
                if (l < 0) { lines.Add($"{head}={S(y)}-{S(x)}"); return Difference(y, x, lines); }
                if (r < 0) { lines.Add($"{head}={S(x)}-{S(y)}"); return Difference(x, y, lines); }
                return Add(l, r, lines);
            default:
                if (l < 0 && r < 0) { lines.Add($"{head}={S(y)}-{S(x)}"); return Difference(y, x, lines); }
                if (l < 0) { lines.Add($"{head}=-({S(x)}+{S(y)})"); return -Add(x, y, lines); }
                if (r < 0) { lines.Add($"{head}={S(x)}+{S(y)}"); return Add(x, y, lines); }
                return Difference(l, r, lines);
        }
    }

    /// <summary>"482+37: 2+7+0=9 c0 → 98": rest of the operands, column sum with carry in, carry out, result so far.</summary>
    public static long Add(long a, long b, List<string> lines)
    {
        string A = S(a), B = S(b), done = "";
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

    /// <summary>
    /// a − b of non-negative numbers: "cmp 377 4821: 3d<4d" (digit counts) or, for equal lengths, the
    /// leading digits up to the first difference, restating the digits left after each equal pair:
    /// "cmp 4821 4837: 4=4, 821 837: 8=8, 21 37: 2<3"; then, when a &lt; b, "377-4821=-(4821-377)", then
    /// the columns of the larger minus the smaller.
    /// </summary>
    public static long Difference(long a, long b, List<string> lines)
    {
        string A = S(a), B = S(b);
        if (A.Length != B.Length)
            lines.Add($"cmp {A} {B}: {A.Length}d{(A.Length < B.Length ? '<' : '>')}{B.Length}d");
        else
        {
            var line = new System.Text.StringBuilder($"cmp {A} {B}: ");
            for (int i = 0; i < A.Length; i++)
            {
                char rel = A[i] == B[i] ? '=' : A[i] < B[i] ? '<' : '>';
                line.Append(A[i]).Append(rel).Append(B[i]);
                if (rel != '=' || i == A.Length - 1) break;
                line.Append($", {A[(i + 1)..]} {B[(i + 1)..]}: ");
            }
            lines.Add(line.ToString());
        }
        if (a >= b) return Subtract(a, b, lines);
        lines.Add($"{A}-{B}=-({B}-{A})");
        return -Subtract(b, a, lines);
    }

    /// <summary>a ≥ b. "482-37: 2-7-1=-6+10=4 b1 → 44": column difference with borrow in, +10 when negative, borrow out.</summary>
    public static long Subtract(long a, long b, List<string> lines)
    {
        string A = S(a), B = S(b), done = "";
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
    /// With two nonzero multiplier digits, first the plan "482*37=482*7+482*30". Per nonzero multiplier
    /// digit d (the shorter operand is the multiplier), one line per multiplicand
    /// digit, right to left, restating the digits left: "48*7: 8*7=56+1=57 c5 → 74" (the product fact, the
    /// carry in added, the carry out, the digits so far; the last line puts the carry in front), then
    /// "482*7=3374" or, for the tens digit, "482*30=14460"; then the partial products added by columns.
    /// </summary>
    public static long Multiply(long a, long b, List<string> lines)
    {
        if (S(b).Length > S(a).Length)
        {
            lines.Add($"{S(a)}*{S(b)}={S(b)}*{S(a)}");
            (a, b) = (b, a);
        }
        string A = S(a), B = S(b);
        if (a == 0 || b == 0)
        {
            lines.Add($"{A}*{B}=0");
            return 0;
        }
        var terms = Enumerable.Range(0, B.Length).Where(k => B[B.Length - 1 - k] != '0')
            .Select(k => $"{A}*{B[B.Length - 1 - k]}{new string('0', k)}").ToList();
        if (terms.Count > 1) lines.Add($"{A}*{B}={string.Join("+", terms)}");
        var partials = new List<long>();
        for (int k = 0; k < B.Length; k++)
        {
            int d = B[B.Length - 1 - k] - '0';
            if (d == 0) continue;
            string done = "";
            int carry = 0;
            for (int i = A.Length - 1; i >= 0; i--)
            {
                int x = A[i] - '0', p = x * d, v = p + carry;
                done = i == 0 ? S(v) + done : (char)('0' + v % 10) + done;
                lines.Add($"{A[..(i + 1)]}*{d}: {x}*{d}={p}+{carry}={v} c{v / 10} → {done}");
                carry = v / 10;
            }
            long partial = a * d;
            string zeros = new('0', k);
            for (int z = 0; z < k; z++) partial *= 10;
            lines.Add($"{A}*{d}{zeros}={S(partial)}");
            partials.Add(partial);
        }
        long sum = partials[0];
        for (int i = 1; i < partials.Count; i++) sum = Add(sum, partials[i], lines);
        return sum;
    }
}

/// <summary>The completion layout every task shares.</summary>
internal static class Completion
{
    public const string ThinkOpen = "<think>", ThinkClose = "</think>";

    /// <summary>"&lt;think&gt;\n{lines}\n&lt;/think&gt;\n{answer line}\n\\boxed{answer}".</summary>
    public static string Format(IEnumerable<string> reasoning, string answerLine, string boxed) =>
        $"{ThinkOpen}\n{string.Join("\n", reasoning)}\n{ThinkClose}\n{answerLine}\n\\boxed{{{boxed}}}";
}
