namespace Jevons.Tokenization;

/// <summary>
/// A token matched in raw text before pre-tokenization (Hugging Face added_tokens; GGUF control
/// and user-defined tokens). <see cref="Special"/> tokens are dropped by skip-special decoding;
/// <see cref="Normalized"/> ones are matched after the normalizer instead of before it.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized = false, bool LStrip = false, bool RStrip = false);

/// <summary>
/// Finds added tokens in text: leftmost match first, longest match at that position, exact
/// (ordinal) comparison.
/// </summary>
internal sealed class AddedTokenMatcher
{
    readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>A piece of text (Id &lt; 0) or an added token (Text is null).</summary>
    public readonly record struct Segment(string? Text, int Id);

    public void Split(string text, bool includeSpecial, List<Segment> output)
    {
        int textStart = 0, i = 0;
        while (i < text.Length)
        {
            var token = _byFirstChar.TryGetValue(text[i], out var candidates) ? Find(text, i, candidates, includeSpecial) : null;
            if (token is null) { i++; continue; }
            int before = i, after = i + token.Content.Length;
            if (token.LStrip) while (before > textStart && char.IsWhiteSpace(text[before - 1])) before--;
            if (token.RStrip) while (after < text.Length && char.IsWhiteSpace(text[after])) after++;
            if (before > textStart) output.Add(new Segment(text[textStart..before], -1));
            output.Add(new Segment(null, token.Id));
            textStart = i = after;
        }
        if (textStart < text.Length) output.Add(new Segment(text[textStart..], -1));
    }

    static AddedToken? Find(string text, int at, AddedToken[] candidates, bool includeSpecial)
    {
        foreach (var t in candidates)
        {
            if (t.Special && !includeSpecial) continue;
            if (t.Content.Length <= text.Length - at && string.CompareOrdinal(text, at, t.Content, 0, t.Content.Length) == 0) return t;
        }
        return null;
    }
}
