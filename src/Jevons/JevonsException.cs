using System.Diagnostics.CodeAnalysis;

namespace Jevons;

/// <summary>
/// The one exception type for bad input: a file, tensor, field or parameter that is wrong.
/// <see cref="Exception.Message"/> is a single line that names the culprit; the CLI prints it as is.
/// </summary>
public sealed class JevonsException : Exception
{
    public JevonsException(string message, string? file = null, string? tensor = null, long? offset = null, Exception? inner = null)
        : base(Compose(message, file, tensor, offset), inner)
    {
        File = file;
        Tensor = tensor;
        Offset = offset;
    }

    /// <summary>The file the problem is in, when there is one.</summary>
    public string? File { get; }

    /// <summary>The tensor (or field) the problem is in, when there is one.</summary>
    public string? Tensor { get; }

    /// <summary>The byte offset in <see cref="File"/>, when known.</summary>
    public long? Offset { get; }

    static string Compose(string message, string? file, string? tensor, long? offset)
    {
        var prefix = file is null ? "" : file + (offset is long o ? $" (offset {o})" : "") + ": ";
        var t = tensor is null ? "" : $"tensor '{tensor}': ";
        return Printable((prefix + t + message).ReplaceLineEndings(" "));
    }

    /// <summary>
    /// <paramref name="text"/> safe to print on a terminal: control characters (NUL, ESC, ...),
    /// invisible format characters (bidi overrides) and lone surrogates become \xNN / \uNNNN
    /// escapes, so bytes copied from a corrupt file cannot move the cursor or hide text.
    /// </summary>
    public static string Printable(string text)
    {
        int i = 0;
        while (i < text.Length && !NeedsEscape(text, i)) i++;
        if (i == text.Length) return text;
        var sb = new System.Text.StringBuilder(text.Length + 16);
        sb.Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb.Append(c).Append(text[++i]);
                continue;
            }
            if (!NeedsEscape(text, i)) sb.Append(c);
            else if (c < 0x100) sb.Append("\\x").Append(((int)c).ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    static bool NeedsEscape(string s, int i)
    {
        char c = s[i];
        if (c >= 0x20 && c < 0x7F) return false;
        if (char.IsControl(c)) return true;
        if (char.IsHighSurrogate(c)) return i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]);
        if (char.IsLowSurrogate(c)) return i == 0 || !char.IsHighSurrogate(s[i - 1]);
        return System.Globalization.CharUnicodeInfo.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Format
            or System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator;
    }

    [DoesNotReturn]
    public static void Throw(string message, string? file = null, string? tensor = null, long? offset = null) =>
        throw new JevonsException(message, file, tensor, offset);

    [DoesNotReturn]
    public static T Throw<T>(string message, string? file = null, string? tensor = null, long? offset = null) =>
        throw new JevonsException(message, file, tensor, offset);
}
