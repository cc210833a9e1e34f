using System.Text;

namespace Jevons.Training.Tasks;

/// <summary>An integer expression tree: a number, or a binary operation (+ - * /) on two subtrees.</summary>
public abstract record Expr
{
    /// <summary>The value with exact integer division, or null when a division is inexact or by zero.</summary>
    public abstract long? Evaluate();

    public abstract int Precedence { get; }

    /// <summary>Every number leaf, left to right.</summary>
    public abstract void CollectNumbers(List<long> into);

    /// <summary>Minimal parentheses; <paramref name="spaced"/> writes "17 + 5", else "17+5".</summary>
    public string Format(bool spaced)
    {
        var sb = new StringBuilder();
        Write(sb, spaced);
        return sb.ToString();
    }

    internal abstract void Write(StringBuilder sb, bool spaced);

    public override string ToString() => Format(spaced: true);
}

public sealed record Num(long Value) : Expr
{
    public override long? Evaluate() => Value;
    public override int Precedence => 3;
    public override void CollectNumbers(List<long> into) => into.Add(Value);
    internal override void Write(StringBuilder sb, bool spaced) => sb.Append(Value);
}

public sealed record Bin(char Op, Expr Left, Expr Right) : Expr
{
    public override long? Evaluate()
    {
        if (Left.Evaluate() is not long l || Right.Evaluate() is not long r) return null;
        return Apply(Op, l, r);
    }

    /// <summary>One operation; null for inexact division, division by zero or overflow.</summary>
    public static long? Apply(char op, long l, long r)
    {
        try
        {
            return op switch
            {
                '+' => checked(l + r),
                '-' => checked(l - r),
                '*' => checked(l * r),
                '/' => r != 0 && l % r == 0 ? l / r : null,
                _ => null,
            };
        }
        catch (OverflowException) { return null; }
    }

    public override int Precedence => Op is '+' or '-' ? 1 : 2;

    public override void CollectNumbers(List<long> into)
    {
        Left.CollectNumbers(into);
        Right.CollectNumbers(into);
    }

    internal override void Write(StringBuilder sb, bool spaced)
    {
        bool leftParens = Left.Precedence < Precedence;
        bool rightParens = Right.Precedence < Precedence || (Right.Precedence == Precedence && Op is '-' or '/');
        Wrap(sb, Left, leftParens, spaced);
        if (spaced) sb.Append(' ').Append(Op).Append(' ');
        else sb.Append(Op);
        Wrap(sb, Right, rightParens, spaced);
    }

    static void Wrap(StringBuilder sb, Expr e, bool parens, bool spaced)
    {
        if (parens) sb.Append('(');
        e.Write(sb, spaced);
        if (parens) sb.Append(')');
    }
}

/// <summary>
/// Parses the expressions the tasks print and models answer with: non-negative integer literals,
/// + - * /, parentheses and spaces, usual precedence, left associative. Anything else (unary
/// minus, letters, other symbols, more than a few hundred characters) is rejected.
/// </summary>
public static class ExprParser
{
    public const int MaxLength = 200;

    public static Expr? TryParse(string text)
    {
        if (text.Length > MaxLength) return null;
        int pos = 0;
        var e = ParseSum(text, ref pos, depth: 0);
        SkipSpaces(text, ref pos);
        return e is not null && pos == text.Length ? e : null;
    }

    static Expr? ParseSum(string s, ref int pos, int depth)
    {
        var left = ParseProduct(s, ref pos, depth);
        while (left is not null)
        {
            SkipSpaces(s, ref pos);
            if (pos >= s.Length || s[pos] is not ('+' or '-')) break;
            char op = s[pos++];
            var right = ParseProduct(s, ref pos, depth);
            if (right is null) return null;
            left = new Bin(op, left, right);
        }
        return left;
    }

    static Expr? ParseProduct(string s, ref int pos, int depth)
    {
        var left = ParseAtom(s, ref pos, depth);
        while (left is not null)
        {
            SkipSpaces(s, ref pos);
            if (pos >= s.Length || s[pos] is not ('*' or '/')) break;
            char op = s[pos++];
            var right = ParseAtom(s, ref pos, depth);
            if (right is null) return null;
            left = new Bin(op, left, right);
        }
        return left;
    }

    static Expr? ParseAtom(string s, ref int pos, int depth)
    {
        SkipSpaces(s, ref pos);
        if (pos >= s.Length || depth > 32) return null;
        if (s[pos] == '(')
        {
            pos++;
            var inner = ParseSum(s, ref pos, depth + 1);
            SkipSpaces(s, ref pos);
            if (inner is null || pos >= s.Length || s[pos] != ')') return null;
            pos++;
            return inner;
        }
        int start = pos;
        while (pos < s.Length && s[pos] is >= '0' and <= '9' && pos - start < 12) pos++;
        if (pos == start || (pos < s.Length && s[pos] is >= '0' and <= '9')) return null;
        return new Num(long.Parse(s.AsSpan(start, pos - start), System.Globalization.CultureInfo.InvariantCulture));
    }

    static void SkipSpaces(string s, ref int pos)
    {
        while (pos < s.Length && s[pos] == ' ') pos++;
    }
}
