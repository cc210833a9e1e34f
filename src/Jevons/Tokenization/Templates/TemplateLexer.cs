using System.Globalization;
using System.Text;

namespace Jevons.Tokenization.Templates;

enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof }

readonly record struct Token(TokenKind Kind, string Value, int Line, object? Literal = null)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;
    public bool IsOp(string op) => Kind == TokenKind.Operator && Value == op;
    public override string ToString() => Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.String => "string literal",
        _ => $"'{Value}'",
    };
}

/// <summary>A template error with the line it happened on; <see cref="JinjaTemplate"/> turns it into a JevonsException.</summary>
sealed class TemplateError(string message, int line) : Exception(message)
{
    public int Line { get; } = line;
}

/// <summary>
/// Jinja2's lexer as Hugging Face configures it: trim_blocks (the first newline after a block or
/// comment tag is dropped), lstrip_blocks (spaces and tabs before a block or comment tag that starts
/// its line are dropped), `-` strips all whitespace on that side of a tag, `+` turns
/// lstrip/trim off for that side. Tag ends inside open brackets are operators, as in Jinja2. Line
/// endings are normalized to \n and a single trailing newline is dropped.
/// </summary>
static class TemplateLexer
{
    static readonly string[] Operators =
        ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"];

    public static List<Token> Tokenize(string src, bool trimBlocks = true, bool lstripBlocks = true)
    {
        // As Jinja2 does before lexing: every line ending becomes \n and one trailing newline is
        // dropped (keep_trailing_newline = False).
        src = src.Replace("\r\n", "\n").Replace('\r', '\n');
        if (src.EndsWith('\n')) src = src[..^1];
        var tokens = new List<Token>();
        int pos = 0, line = 1;
        bool lineStarting = true;
        while (pos < src.Length)
        {
            int tag = FindTag(src, pos);
            string text = src[pos..(tag < 0 ? src.Length : tag)];
            if (tag < 0)
            {
                Emit(tokens, text, ref line);
                break;
            }
            char kind = src[tag + 1];
            char sign = tag + 2 < src.Length && (src[tag + 2] == '-' || src[tag + 2] == '+') ? src[tag + 2] : '\0';
            if (sign == '-') text = text.TrimEnd(PyWhitespace);
            else if (sign != '+' && lstripBlocks && kind != '{')
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.Length && IsAllWhitespace(text, lpos)) text = text[..lpos];
            }
            if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
            line += CountLines(src, pos, tag);
            pos = tag + 2 + (sign != '\0' ? 1 : 0);
            if (kind == '#')
            {
                int end = src.IndexOf("#}", pos, StringComparison.Ordinal);
                if (end < 0) throw new TemplateError("unclosed comment (missing '#}')", line);
                line += CountLines(src, pos, end);
                char before = end > pos ? src[end - 1] : '\0';
                pos = end + 2;
                if (before == '-') pos = SkipWhitespace(src, pos, ref line);
                else if (before != '+' && trimBlocks && pos < src.Length && src[pos] == '\n') { pos++; line++; }
                lineStarting = src[pos - 1] == '\n';
                continue;
            }
            bool block = kind == '%';
            tokens.Add(new Token(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, block ? "{%" : "{{", line));
            if (block && IsRawStart(src, pos))
            {
                pos = LexRaw(src, pos, tokens, ref line, trimBlocks);
                lineStarting = pos > 0 && src[pos - 1] == '\n';
                continue;
            }
            pos = LexTag(src, pos, block, tokens, ref line, trimBlocks);
            lineStarting = src[pos - 1] == '\n';
        }
        tokens.Add(new Token(TokenKind.Eof, "", line));
        return tokens;
    }

    static void Emit(List<Token> tokens, string text, ref int line)
    {
        if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
        foreach (var c in text) if (c == '\n') line++;
    }

    static int CountLines(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (s[i] == '\n') n++;
        return n;
    }

    internal static readonly char[] PyWhitespace = [' ', '\t', '\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\x1f', '\x85', '\xa0',
        '\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a',
        '\u2028', '\u2029', '\u202f', '\u205f', '\u3000'];

    internal static bool IsPySpace(char c) => Array.IndexOf(PyWhitespace, c) >= 0;

    static bool IsAllWhitespace(string s, int from)
    {
        for (int i = from; i < s.Length; i++) if (!IsPySpace(s[i])) return false;
        return true;
    }

    static int FindTag(string src, int from)
    {
        for (int i = src.IndexOf('{', from); i >= 0 && i + 1 < src.Length; i = src.IndexOf('{', i + 1))
            if (src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    static int SkipWhitespace(string src, int pos, ref int line)
    {
        while (pos < src.Length && IsPySpace(src[pos])) { if (src[pos] == '\n') line++; pos++; }
        return pos;
    }

    static bool IsRawStart(string src, int pos)
    {
        int p = pos;
        while (p < src.Length && IsPySpace(src[p])) p++;
        if (string.CompareOrdinal(src, p, "raw", 0, 3) != 0) return false;
        p += 3;
        while (p < src.Length && IsPySpace(src[p])) p++;
        return string.CompareOrdinal(src, p, "%}", 0, 2) == 0 || string.CompareOrdinal(src, p, "-%}", 0, 3) == 0 || string.CompareOrdinal(src, p, "+%}", 0, 3) == 0;
    }

    static int LexRaw(string src, int pos, List<Token> tokens, ref int line, bool trimBlocks)
    {
        int startLine = line;
        int p = src.IndexOf("raw", pos, StringComparison.Ordinal) + 3;
        while (IsPySpace(src[p])) p++;
        char sign = src[p] is '-' or '+' ? src[p++] : '\0';
        p += 2;
        line += CountLines(src, pos, p);
        if (sign == '-') p = SkipWhitespace(src, p, ref line);
        else if (sign != '+' && trimBlocks && p < src.Length && src[p] == '\n') { p++; line++; }
        // Find {%[-+]? endraw [-+]?%}
        for (int i = src.IndexOf("{%", p, StringComparison.Ordinal); i >= 0; i = src.IndexOf("{%", i + 2, StringComparison.Ordinal))
        {
            int q = i + 2;
            char open = q < src.Length && src[q] is '-' or '+' ? src[q++] : '\0';
            while (q < src.Length && IsPySpace(src[q])) q++;
            if (string.CompareOrdinal(src, q, "endraw", 0, 6) != 0) continue;
            q += 6;
            while (q < src.Length && IsPySpace(src[q])) q++;
            char close = q < src.Length && src[q] is '-' or '+' ? src[q++] : '\0';
            if (string.CompareOrdinal(src, q, "%}", 0, 2) != 0) continue;
            var body = src[p..i];
            if (open == '-') body = body.TrimEnd(PyWhitespace);
            tokens.Add(new Token(TokenKind.Name, "raw", line));
            tokens.Add(new Token(TokenKind.BlockEnd, "%}", line));
            if (body.Length > 0) tokens.Add(new Token(TokenKind.Text, body, line));
            line += CountLines(src, p, q);
            tokens.Add(new Token(TokenKind.BlockBegin, "{%", line));
            tokens.Add(new Token(TokenKind.Name, "endraw", line));
            tokens.Add(new Token(TokenKind.BlockEnd, "%}", line));
            q += 2;
            if (close == '-') q = SkipWhitespace(src, q, ref line);
            else if (close != '+' && trimBlocks && q < src.Length && src[q] == '\n') { q++; line++; }
            return q;
        }
        throw new TemplateError("unclosed raw block (missing '{% endraw %}')", startLine);
    }

    static int LexTag(string src, int pos, bool block, List<Token> tokens, ref int line, bool trimBlocks)
    {
        int depth = 0;
        int startLine = line;
        while (true)
        {
            pos = SkipWhitespace(src, pos, ref line);
            if (pos >= src.Length) throw new TemplateError(block ? "unclosed block tag (missing '%}')" : "unclosed expression (missing '}}')", startLine);
            char c = src[pos];
            if (depth == 0)
            {
                string end = block ? "%}" : "}}";
                bool minus = c == '-' && string.CompareOrdinal(src, pos + 1, end, 0, 2) == 0;
                bool plus = block && c == '+' && string.CompareOrdinal(src, pos + 1, end, 0, 2) == 0;
                if (minus || plus || string.CompareOrdinal(src, pos, end, 0, 2) == 0)
                {
                    tokens.Add(new Token(block ? TokenKind.BlockEnd : TokenKind.VariableEnd, end, line));
                    pos += minus || plus ? 3 : 2;
                    if (minus) pos = SkipWhitespace(src, pos, ref line);
                    else if (block && !plus && trimBlocks && pos < src.Length && src[pos] == '\n') { pos++; line++; }
                    return pos;
                }
            }
            if (char.IsAsciiLetter(c) || c == '_' || (c > 127 && char.IsLetter(c)))
            {
                int s = pos;
                while (pos < src.Length && (char.IsAsciiLetterOrDigit(src[pos]) || src[pos] == '_' || (src[pos] > 127 && char.IsLetterOrDigit(src[pos])))) pos++;
                tokens.Add(new Token(TokenKind.Name, src[s..pos], line));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                pos = LexNumber(src, pos, tokens, line);
                continue;
            }
            if (c is '\'' or '"')
            {
                pos = LexString(src, pos, tokens, ref line);
                continue;
            }
            string? op = null;
            foreach (var o in Operators)
                if (string.CompareOrdinal(src, pos, o, 0, o.Length) == 0) { op = o; break; }
            if (op is null) throw new TemplateError($"unexpected character '{c}'", line);
            if (op is "(" or "[" or "{") depth++;
            else if (op is ")" or "]" or "}") depth = Math.Max(0, depth - 1);
            tokens.Add(new Token(TokenKind.Operator, op, line));
            pos += op.Length;
        }
    }

    static int LexNumber(string src, int pos, List<Token> tokens, int line)
    {
        int s = pos;
        static int Digits(string src, int p)
        {
            while (p < src.Length && (char.IsAsciiDigit(src[p]) || (src[p] == '_' && p + 1 < src.Length && char.IsAsciiDigit(src[p + 1])))) p++;
            return p;
        }
        pos = Digits(src, pos);
        bool isFloat = false;
        if (pos + 1 < src.Length && src[pos] == '.' && char.IsAsciiDigit(src[pos + 1]))
        {
            pos = Digits(src, pos + 1);
            isFloat = true;
        }
        if (pos < src.Length && (src[pos] == 'e' || src[pos] == 'E'))
        {
            int p = pos + 1;
            if (p < src.Length && (src[p] == '+' || src[p] == '-')) p++;
            if (p < src.Length && char.IsAsciiDigit(src[p])) { pos = Digits(src, p); isFloat = true; }
        }
        var text = src[s..pos].Replace("_", "");
        if (isFloat)
            tokens.Add(new Token(TokenKind.Float, text, line, double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)));
        else if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            tokens.Add(new Token(TokenKind.Integer, text, line, v));
        else throw new TemplateError($"integer literal {text} is too large", line);
        return pos;
    }

    static int LexString(string src, int pos, List<Token> tokens, ref int line)
    {
        char quote = src[pos];
        int startLine = line;
        var sb = new StringBuilder();
        int p = pos + 1;
        while (true)
        {
            if (p >= src.Length) throw new TemplateError("unterminated string literal", startLine);
            char c = src[p];
            if (c == quote) { p++; break; }
            if (c == '\n') line++;
            if (c != '\\' || p + 1 >= src.Length) { sb.Append(c); p++; continue; }
            char e = src[p + 1];
            p += 2;
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '0' or '1' or '2' or '3' or '4' or '5' or '6' or '7':
                {
                    int v = e - '0', n = 1;
                    while (n < 3 && p < src.Length && src[p] is >= '0' and <= '7') { v = v * 8 + (src[p++] - '0'); n++; }
                    sb.Append((char)v);
                    break;
                }
                case 'x' or 'u' or 'U':
                {
                    int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (p + n > src.Length || !int.TryParse(src.AsSpan(p, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) || cp > 0x10FFFF)
                        throw new TemplateError($"invalid \\{e} escape in string literal", line);
                    sb.Append(char.ConvertFromUtf32(cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp));
                    p += n;
                    break;
                }
                case '\n': line++; break; // line continuation
                default: sb.Append('\\').Append(e); break;
            }
        }
        tokens.Add(new Token(TokenKind.String, src[pos..p], startLine, sb.ToString()));
        return p;
    }
}
