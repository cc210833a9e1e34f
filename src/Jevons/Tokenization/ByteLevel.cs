namespace Jevons.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: every byte maps to one printable character (printable Latin-1
/// bytes map to themselves, the other 68 to U+0100..U+0143), so a vocabulary of strings covers
/// any byte sequence.
/// </summary>
public static class ByteLevel
{
    static readonly char[] ByteToCharTable = BuildByteToChar();
    static readonly short[] CharToByteTable = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return map;
    }

    static short[] BuildCharToByte()
    {
        var map = new short[324];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++) map[ByteToCharTable[b]] = (short)b;
        return map;
    }

    /// <summary>The alphabet character of a byte ('Ġ' for a space).</summary>
    public static char ByteToChar(byte b) => ByteToCharTable[b];

    /// <summary>The byte an alphabet character stands for, or -1 when it is not in the alphabet.</summary>
    public static int CharToByte(char c) => c < CharToByteTable.Length ? CharToByteTable[c] : -1;

    /// <summary>Bytes as an alphabet string (what vocabularies store).</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes.ToArray(), static (span, b) =>
        {
            for (int i = 0; i < b.Length; i++) span[i] = ByteToCharTable[b[i]];
        });
    }

    /// <summary>
    /// The bytes an alphabet string stands for, or null when it holds a character outside the
    /// alphabet (the Hugging Face decoder then uses the string's own UTF-8 bytes).
    /// </summary>
    public static byte[]? TryDecode(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            int b = CharToByte(token[i]);
            if (b < 0) return null;
            bytes[i] = (byte)b;
        }
        return bytes;
    }
}
