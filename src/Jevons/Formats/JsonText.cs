using System.Text.Json;

namespace Jevons.Formats;

/// <summary>
/// Checks the one thing System.Text.Json leaves to <c>GetString()</c>: that every string and
/// property name is valid UTF-8 and holds no lone surrogate escape ("\ud800"). Otherwise a bad byte
/// in a config, tokenizer or index surfaces deep inside a reader as an InvalidOperationException;
/// this turns it into one <see cref="JevonsException"/> naming the file, the offset and the key.
/// Run it over syntactically valid JSON (after parsing); it costs one forward pass of the reader.
/// </summary>
internal static class JsonText
{
    public static void CheckStrings(ReadOnlySpan<byte> json, string file, JsonReaderOptions options, long baseOffset = 0)
    {
        var reader = new Utf8JsonReader(json, options);
        // The last valid property name, as a range of the input (decoded only for a message).
        int keyStart = -1, keyLength = 0;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName)) continue;
                bool valid = reader.ValueIsEscaped ? TryUnescape(ref reader) : System.Text.Unicode.Utf8.IsValid(reader.ValueSpan);
                if (!valid)
                {
                    string key = keyStart < 0 ? "" : System.Text.Encoding.UTF8.GetString(json.Slice(keyStart, keyLength));
                    JevonsException.Throw((reader.TokenType == JsonTokenType.PropertyName ? "a property name" : "a string")
                        + (keyStart < 0 ? "" : $" at or after key '{(key.Length > 60 ? key[..60] + "..." : key)}'")
                        + " is not valid UTF-8 text (invalid bytes or a lone surrogate escape)", file, offset: baseOffset + reader.TokenStartIndex);
                }
                if (reader.TokenType == JsonTokenType.PropertyName)
                {
                    keyStart = (int)reader.TokenStartIndex + 1;
                    keyLength = reader.ValueSpan.Length;
                }
            }
        }
        catch (JsonException)
        {
            // Syntax errors are the parser's to report, with its own message.
        }
    }

    static bool TryUnescape(ref Utf8JsonReader reader)
    {
        try
        {
            reader.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
