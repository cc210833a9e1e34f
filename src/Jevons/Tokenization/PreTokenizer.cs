using System.Globalization;
using System.Text.RegularExpressions;

namespace Jevons.Tokenization;

/// <summary>How a split keeps the pieces a pattern matches (Hugging Face SplitDelimiterBehavior).</summary>
public enum SplitBehavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>
/// One pre-tokenization step: it splits each piece of text into smaller pieces. Steps run in
/// order, each over every piece the previous one produced; BPE then runs on each final piece.
/// </summary>
public abstract class PreTokenizer
{
    public abstract void Split(string piece, List<string> output);

    /// <summary>Runs the steps in order over one text segment.</summary>
    public static List<string> Run(IReadOnlyList<PreTokenizer> steps, string text)
    {
        var pieces = new List<string> { text };
        var next = new List<string>();
        foreach (var step in steps)
        {
            next.Clear();
            foreach (var p in pieces) step.Split(p, next);
            (pieces, next) = (next, pieces);
        }
        pieces.RemoveAll(p => p.Length == 0);
        return pieces;
    }
}

/// <summary>
/// Splits on a regular expression written in the Oniguruma / Rust dialect the references use.
/// .NET matches UTF-16 code units, so \p{L} and friends never match a character outside the
/// BMP (an emoji, a math digit); text holding surrogate pairs is therefore matched on a proxy
/// string with one BMP stand-in of the same general category per code point.
/// </summary>
public sealed class RegexSplit : PreTokenizer
{
    readonly Regex _regex;
    readonly SplitBehavior _behavior;
    readonly bool _invert;

    /// <summary>
    /// Longest one match may take. Patterns come from tokenizer files; a catastrophic one (nested
    /// quantifiers) must fail with a message, not hang the process. Real pre-tokenizer patterns
    /// match a word in microseconds.
    /// </summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(1);

    /// <param name="file">The tokenizer file the pattern came from, for messages.</param>
    public RegexSplit(string pattern, SplitBehavior behavior = SplitBehavior.Isolated, bool invert = false, bool literal = false, string? file = null)
    {
        Pattern = pattern;
        _regex = CreateRegex(literal ? Regex.Escape(pattern) : Translate(pattern), RegexOptions.CultureInvariant | RegexOptions.Compiled, file, "Split pre-tokenizer", pattern);
        _behavior = behavior;
        _invert = invert;
    }

    public string Pattern { get; }

    /// <summary>A regex from a tokenizer file, with <see cref="MatchTimeout"/>; an invalid pattern is a <see cref="JevonsException"/> naming it.</summary>
    internal static Regex CreateRegex(string pattern, RegexOptions options, string? file, string what, string? original = null)
    {
        try
        {
            return new Regex(pattern, options, MatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new JevonsException($"{what} regex '{Clip(original ?? pattern)}' is not supported: {e.Message}", file, inner: e);
        }
    }

    /// <summary>Runs one regex operation; a match that times out is a <see cref="JevonsException"/> naming the pattern.</summary>
    internal static T Guard<T>(string pattern, Func<T> run)
    {
        try
        {
            return run();
        }
        catch (RegexMatchTimeoutException e)
        {
            return TimedOut<T>(pattern, e);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    static T TimedOut<T>(string pattern, RegexMatchTimeoutException e) =>
        throw new JevonsException($"tokenizer regex '{Clip(pattern)}' took over {MatchTimeout.TotalSeconds:0.#} s on one match (catastrophic backtracking); the tokenizer file's pattern is unusable", inner: e);

    static string Clip(string s) => s.Length > 80 ? s[..80] + "..." : s;

    /// <summary>Rewrites the few constructs whose meaning differs in .NET: '$' means end of input.</summary>
    static string Translate(string pattern)
    {
        var sb = new System.Text.StringBuilder(pattern.Length);
        bool inClass = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length) { sb.Append(c).Append(pattern[++i]); continue; }
            if (c == '[') inClass = true;
            else if (c == ']') inClass = false;
            if (c == '$' && !inClass) { sb.Append(@"\z"); continue; }
            sb.Append(c);
        }
        return sb.ToString();
    }

    public override void Split(string piece, List<string> output)
    {
        if (piece.Length == 0) return;
        var spans = new List<(int Start, int End, bool Match)>();
        int last = 0;
        bool proxied = HasSurrogates(piece);
        int[]? map = null;
        string subject = proxied ? BuildProxy(piece, out map) : piece;
        try
        {
            for (var m = _regex.Match(subject); m.Success; m = m.NextMatch())
            {
                if (m.Length == 0) continue;
                int start = proxied ? map![m.Index] : m.Index;
                int end = proxied ? map![m.Index + m.Length] : m.Index + m.Length;
                if (start > last) spans.Add((last, start, _invert));
                spans.Add((start, end, !_invert));
                last = end;
            }
        }
        catch (RegexMatchTimeoutException e)
        {
            TimedOut<int>(Pattern, e);
        }
        if (last < piece.Length) spans.Add((last, piece.Length, _invert));
        Emit(piece, spans, _behavior, output);
    }

    internal static void Emit(string piece, List<(int Start, int End, bool Match)> spans, SplitBehavior behavior, List<string> output)
    {
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var s in spans) output.Add(piece[s.Start..s.End]);
                break;
            case SplitBehavior.Removed:
                foreach (var s in spans) if (!s.Match) output.Add(piece[s.Start..s.End]);
                break;
            case SplitBehavior.MergedWithPrevious:
            {
                int start = 0;
                for (int i = 0; i < spans.Count; i++)
                {
                    if (spans[i].Match || i + 1 == spans.Count || !spans[i + 1].Match)
                    {
                        output.Add(piece[start..spans[i].End]);
                        start = spans[i].End;
                    }
                }
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                int start = 0;
                for (int i = 0; i < spans.Count; i++)
                {
                    if (spans[i].Match && i + 1 < spans.Count && !spans[i + 1].Match) continue; // joins what follows
                    output.Add(piece[start..spans[i].End]);
                    start = spans[i].End;
                }
                break;
            }
            case SplitBehavior.Contiguous:
            {
                int i = 0;
                while (i < spans.Count)
                {
                    int j = i;
                    while (j + 1 < spans.Count && spans[j + 1].Match == spans[i].Match) j++;
                    output.Add(piece[spans[i].Start..spans[j].End]);
                    i = j + 1;
                }
                break;
            }
        }
    }

    static bool HasSurrogates(string s)
    {
        foreach (var c in s) if (char.IsSurrogate(c)) return true;
        return false;
    }

    /// <summary>
    /// One BMP character per code point, of the same general category; map[i] is the index in
    /// the original string of proxy character i (map[length] = original length). The stand-ins
    /// lie outside every explicit range the supported patterns name.
    /// </summary>
    static string BuildProxy(string s, out int[] map)
    {
        var chars = new char[s.Length];
        map = new int[s.Length + 1];
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            map[n] = i;
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                chars[n++] = StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(s[i], s[i + 1])));
                i++;
            }
            else chars[n++] = s[i];
        }
        map[n] = s.Length;
        return new string(chars, 0, n);
    }

    static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter => '\uA790',
        UnicodeCategory.LowercaseLetter => '\uA791',
        UnicodeCategory.ModifierLetter => '\uA015',
        UnicodeCategory.OtherLetter => '\uA000',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\uA823',
        UnicodeCategory.EnclosingMark => '\uA670',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\uA6E6',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => '\u00A1',
        UnicodeCategory.MathSymbol => '\u00AC',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u00B4',
        UnicodeCategory.OtherSymbol => '\u00A6',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378', // unassigned
    };
}

/// <summary>Splits out digits (Hugging Face "Digits"): each digit alone, or runs of digits.</summary>
public sealed class DigitsSplit : PreTokenizer
{
    readonly RegexSplit _split;
    public DigitsSplit(bool individualDigits) => _split = new RegexSplit(individualDigits ? @"\p{N}" : @"\p{N}+");
    public override void Split(string piece, List<string> output) => _split.Split(piece, output);
}

/// <summary>
/// The byte-level step: optionally a space before each piece that lacks one, optionally GPT-2's
/// own split regex. (The mapping to the byte alphabet itself happens inside BPE.)
/// </summary>
public sealed class ByteLevelSplit : PreTokenizer
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    readonly RegexSplit? _split;
    readonly bool _addPrefixSpace;

    public ByteLevelSplit(bool addPrefixSpace, bool useRegex)
    {
        _addPrefixSpace = addPrefixSpace;
        if (useRegex) _split = new RegexSplit(Gpt2Pattern);
    }

    public override void Split(string piece, List<string> output)
    {
        if (_addPrefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
        if (_split is null) output.Add(piece);
        else _split.Split(piece, output);
    }
}
