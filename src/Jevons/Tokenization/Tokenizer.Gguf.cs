using Jevons.Formats;

namespace Jevons.Tokenization;

public sealed partial class Tokenizer
{
    /// <summary>GGUF tokenizer.ggml.token_type values.</summary>
    public enum GgufTokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    /// <summary>
    /// Loads the vocabulary stored in GGUF metadata (tokenizer.ggml.*; model "gpt2" = byte-level
    /// BPE). tokenizer.ggml.pre picks llama.cpp's pre-tokenizer regexes. Control and
    /// user-defined tokens are matched in raw text like Hugging Face added tokens; control tokens
    /// count as special and decode only when skip-special is off.
    /// </summary>
    public static Tokenizer FromGguf(IConfigSource metadata)
    {
        string file = metadata.File;
        var model = metadata.GetString("tokenizer.ggml.model")
            ?? JevonsException.Throw<string>("no tokenizer in this file (tokenizer.ggml.model is missing)", file);
        if (model != "gpt2")
            JevonsException.Throw($"unsupported tokenizer model '{model}' (tokenizer.ggml.model): only byte-level BPE ('gpt2') is supported", file);
        var tokens = metadata.GetStringArray("tokenizer.ggml.tokens")
            ?? JevonsException.Throw<string[]>("tokenizer.ggml.tokens is missing", file);
        if (tokens.Length == 0 || tokens.Length > MaxVocabulary)
            JevonsException.Throw($"tokenizer.ggml.tokens holds {tokens.Length} tokens; expected 1 to {MaxVocabulary}", file);
        var types = metadata.GetIntArray("tokenizer.ggml.token_type");
        if (types is not null && types.Length != tokens.Length)
            JevonsException.Throw($"tokenizer.ggml.token_type has {types.Length} entries but tokenizer.ggml.tokens has {tokens.Length}", file);
        var mergeLines = metadata.GetStringArray("tokenizer.ggml.merges")
            ?? JevonsException.Throw<string[]>("tokenizer.ggml.merges is missing", file);
        var pre = metadata.GetString("tokenizer.ggml.pre");
        var regexes = PreTokenizerPresets.ForGguf(pre)
            ?? JevonsException.Throw<string[]>($"unsupported pre-tokenizer '{pre}' (tokenizer.ggml.pre)", file);

        var vocab = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        var added = new List<AddedToken>();
        for (int id = 0; id < tokens.Length; id++)
        {
            var type = types is null ? GgufTokenType.Normal : (GgufTokenType)types[id];
            if (type is GgufTokenType.Control or GgufTokenType.UserDefined)
                added.Add(new AddedToken(id, tokens[id], Special: type == GgufTokenType.Control));
            else if (type == GgufTokenType.Byte && tokens[id] is { Length: 6 } t && t.StartsWith("<0x") && t.EndsWith('>')
                && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out byte value))
                vocab.TryAdd(ByteLevel.ByteToChar(value).ToString(), id); // SentencePiece-style byte token
            else
                vocab.TryAdd(tokens[id], id);
        }

        var merges = new List<(string, string)>(mergeLines.Length);
        foreach (var line in mergeLines)
        {
            int sp = line.Length < 2 ? -1 : line.IndexOf(' ', 1);
            if (sp < 0) JevonsException.Throw($"malformed merge '{line}' in tokenizer.ggml.merges", file);
            merges.Add((line[..sp], line[(sp + 1)..]));
        }

        int? Id(string key)
        {
            var v = metadata.GetInt(key);
            if (v is null) return null;
            if (v < 0 || v >= tokens.Length) JevonsException.Throw($"{key} = {v} is outside the vocabulary (size {tokens.Length})", file);
            return (int)v;
        }
        int? bos = Id("tokenizer.ggml.bos_token_id"), eos = Id("tokenizer.ggml.eos_token_id"), pad = Id("tokenizer.ggml.padding_token_id");
        var eosIds = new List<int>();
        foreach (var e in new[] { eos, Id("tokenizer.ggml.eot_token_id"), Id("tokenizer.ggml.eom_token_id") })
            if (e is int x && !eosIds.Contains(x)) eosIds.Add(x);

        bool llama3 = regexes.Length == 1 && regexes[0] == PreTokenizerPresets.Llama3;
        bool addBos = metadata.GetBool("tokenizer.ggml.add_bos_token") ?? llama3;
        bool addEos = metadata.GetBool("tokenizer.ggml.add_eos_token") ?? false;
        var prefix = addBos && bos is int b ? new[] { b } : [];
        var suffix = addEos && eos is int s ? new[] { s } : [];

        return new Tokenizer(file, tokens, vocab, merges, ignoreMerges: llama3, added, addedTokensDecodeRaw: true,
            PreTokenizerPresets.Build(regexes), normalize: null, prefix, suffix, bos, eosIds, pad,
            metadata.GetString("tokenizer.chat_template"));
    }
}
