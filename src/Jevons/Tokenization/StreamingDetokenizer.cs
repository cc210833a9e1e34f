using System.Text;

namespace Jevons.Tokenization;

/// <summary>
/// Turns generated ids into text one at a time. A token may end in the middle of a UTF-8
/// sequence (an emoji or CJK character split over tokens); those bytes are held back until a
/// later token completes them, so <see cref="Push"/> never returns a broken character or a
/// U+FFFD that the whole sequence would not decode to. The concatenation of every Push and the
/// final <see cref="Flush"/> equals <see cref="Tokenizer.Decode"/> of all ids.
/// </summary>
public sealed class StreamingDetokenizer
{
    readonly Tokenizer _tokenizer;
    readonly bool _skipSpecial;
    readonly List<byte> _pending = new(8);

    internal StreamingDetokenizer(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecialTokens;
    }

    /// <summary>Adds one id; returns the text that is now complete (often empty or a whole piece).</summary>
    public string Push(int id)
    {
        if (_skipSpecial && _tokenizer.IsSpecial(id)) return "";
        _pending.AddRange(_tokenizer.TokenBytes(id));
        int complete = CompletePrefixLength(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending));
        if (complete == 0) return "";
        var text = Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..complete]);
        _pending.RemoveRange(0, complete);
        return text;
    }

    /// <summary>Returns whatever is held back (an unfinished sequence decodes to U+FFFD) and resets.</summary>
    public string Flush()
    {
        var text = Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending));
        _pending.Clear();
        return text;
    }

    /// <summary>
    /// Length of the prefix that can be decoded now: everything except a trailing sequence that
    /// is a valid but unfinished UTF-8 start (lead byte plus fitting continuation bytes).
    /// </summary>
    internal static int CompletePrefixLength(ReadOnlySpan<byte> b)
    {
        for (int back = 1; back <= 3 && back <= b.Length; back++)
        {
            int p = b.Length - back;
            byte lead = b[p];
            if (lead < 0x80) return b.Length;                 // ASCII: nothing is open
            if (lead < 0xC0) continue;                          // continuation: look further back
            int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (lead < 0xC2 || lead > 0xF4) return b.Length;   // never valid: let the decoder replace it
            if (back >= need) return b.Length;                  // the sequence is finished
            if (back >= 2 && !SecondByteFits(lead, b[p + 1])) return b.Length;
            return p;
        }
        return b.Length;
    }

    static bool SecondByteFits(byte lead, byte second) => lead switch
    {
        0xE0 => second >= 0xA0 && second <= 0xBF,
        0xED => second >= 0x80 && second <= 0x9F,
        0xF0 => second >= 0x90 && second <= 0xBF,
        0xF4 => second >= 0x80 && second <= 0x8F,
        _ => second >= 0x80 && second <= 0xBF,
    };
}
