using System.Text.Encodings.Web;
using System.Text.Json;
using Jevons.Formats;

namespace Jevons.Tokenization;

/// <summary>
/// A self-consistent byte-level BPE vocabulary of any size, for random-weight models
/// (`jevons synth`): the 256 byte tokens, merges built deterministically (common English words
/// first, then every extension of existing tokens by a letter or space, shortest first), and
/// the DeepSeek-R1 special tokens at the end. Every merge result is a token, so any text
/// round-trips. The arrays are what a GGUF file stores under tokenizer.ggml.*; <see cref="ToMetadata"/>
/// loads them through the same path as a real file (<see cref="Tokenizer.FromGguf"/>).
/// </summary>
public sealed class SyntheticVocabulary
{
    /// <summary>The special tokens appended after the BPE tokens, in id order (BOS, EOS, then user-defined markers).</summary>
    public static readonly string[] SpecialTokens = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"];

    static readonly string[] SeedWords =
    [
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he", "this",
        "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their", "one", "all",
        "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "what", "up",
        "out", "about", "into", "than", "them", "time", "some", "could", "only", "other", "new", "like", "then", "also",
        "two", "may", "first", "any", "these", "do", "how", "such", "because", "model", "token", "think", "answer", "step",
        "reason", "number", "question", "hello", "world", "user", "assistant", "system", "code", "function", "return",
    ];

    SyntheticVocabulary(string[] tokens, int[] types, string[] merges, string pre)
    {
        Tokens = tokens;
        TokenTypes = types;
        Merges = merges;
        PreTokenizer = pre;
        BosId = tokens.Length - SpecialTokens.Length;
        EosId = BosId + 1;
    }

    /// <summary>tokenizer.ggml.model.</summary>
    public string Model => "gpt2";

    /// <summary>tokenizer.ggml.pre.</summary>
    public string PreTokenizer { get; }

    /// <summary>tokenizer.ggml.tokens (byte-level alphabet strings).</summary>
    public string[] Tokens { get; }

    /// <summary>tokenizer.ggml.token_type (1 normal, 3 control, 4 user-defined).</summary>
    public int[] TokenTypes { get; }

    /// <summary>tokenizer.ggml.merges ("left right", rank = position).</summary>
    public string[] Merges { get; }

    public int BosId { get; }
    public int EosId { get; }
    public int PadId => EosId;
    public bool AddBos => true;
    public bool AddEos => false;

    /// <summary>Builds a vocabulary of exactly <paramref name="vocabSize"/> tokens.</summary>
    public static SyntheticVocabulary Create(int vocabSize, string preTokenizer = "deepseek-v3")
    {
        int minimum = 256 + SpecialTokens.Length;
        if (vocabSize < minimum) JevonsException.Throw($"synthetic vocabulary size {vocabSize} is too small (at least {minimum})");
        if (PreTokenizerPresets.ForGguf(preTokenizer) is null) JevonsException.Throw($"unknown pre-tokenizer '{preTokenizer}'");

        int bpeCount = vocabSize - SpecialTokens.Length;
        var tokens = new List<string>(vocabSize);
        var known = new HashSet<string>(vocabSize, StringComparer.Ordinal);
        var merges = new List<string>(bpeCount - 256);
        for (int b = 0; b < 256; b++)
        {
            var s = ByteLevel.ByteToChar((byte)b).ToString();
            tokens.Add(s);
            known.Add(s);
        }

        bool Add(string left, string right)
        {
            if (tokens.Count >= bpeCount) return false;
            var merged = left + right;
            if (known.Add(merged))
            {
                tokens.Add(merged);
                merges.Add(left + " " + right);
            }
            return true;
        }

        // Common words, with and without the leading space, built left to right.
        foreach (var word in SeedWords)
            foreach (var form in new[] { "Ġ" + word, word })
                for (int k = 1; k < form.Length; k++) Add(form[..k], form[k].ToString());

        // Then every token extended by one letter or space, breadth first (shortest tokens first).
        var alphabet = "Ġetaoinshrdlcumwfgypbvkjxqz".Select(c => c.ToString()).ToArray();
        var frontier = new List<string>(alphabet);
        for (int i = 0; i < frontier.Count && tokens.Count < bpeCount; i++)
            foreach (var c in alphabet)
            {
                int before = tokens.Count;
                if (!Add(frontier[i], c)) break;
                if (tokens.Count > before) frontier.Add(tokens[^1]);
                else if (frontier[i].Length + 1 <= 8) frontier.Add(frontier[i] + c); // already a token: still extend it later
            }

        var types = new int[vocabSize];
        Array.Fill(types, 1, 0, tokens.Count);
        for (int i = 0; i < SpecialTokens.Length; i++)
        {
            tokens.Add(SpecialTokens[i]);
            types[bpeCount + i] = i < 2 ? 3 : 4;
        }
        return new SyntheticVocabulary(tokens.ToArray(), types, merges.ToArray(), preTokenizer);
    }

    /// <summary>The tokenizer.ggml.* entries a GGUF writer stores (values: string, string[], int[], int, bool).</summary>
    public IReadOnlyList<KeyValuePair<string, object>> MetadataEntries() =>
    [
        new("tokenizer.ggml.model", Model),
        new("tokenizer.ggml.pre", PreTokenizer),
        new("tokenizer.ggml.tokens", Tokens),
        new("tokenizer.ggml.token_type", TokenTypes),
        new("tokenizer.ggml.merges", Merges),
        new("tokenizer.ggml.bos_token_id", BosId),
        new("tokenizer.ggml.eos_token_id", EosId),
        new("tokenizer.ggml.padding_token_id", PadId),
        new("tokenizer.ggml.add_bos_token", AddBos),
        new("tokenizer.ggml.add_eos_token", AddEos),
    ];

    /// <summary>Stores the vocabulary in a GGUF file being written, with the types llama.cpp expects.</summary>
    public void WriteTo(GgufWriter writer)
    {
        writer.Set("tokenizer.ggml.model", GgufValue.String(Model));
        writer.Set("tokenizer.ggml.pre", GgufValue.String(PreTokenizer));
        writer.Set("tokenizer.ggml.tokens", GgufValue.Array(Tokens));
        writer.Set("tokenizer.ggml.token_type", GgufValue.Array(TokenTypes));
        writer.Set("tokenizer.ggml.merges", GgufValue.Array(Merges));
        writer.Set("tokenizer.ggml.bos_token_id", GgufValue.UInt32((uint)BosId));
        writer.Set("tokenizer.ggml.eos_token_id", GgufValue.UInt32((uint)EosId));
        writer.Set("tokenizer.ggml.padding_token_id", GgufValue.UInt32((uint)PadId));
        writer.Set("tokenizer.ggml.add_bos_token", GgufValue.Bool(AddBos));
        writer.Set("tokenizer.ggml.add_eos_token", GgufValue.Bool(AddEos));
    }

    /// <summary>
    /// Writes tokenizer.json and tokenizer_config.json into <paramref name="directory"/> as the Hugging Face
    /// tokenizers library stores a byte-level BPE: the same vocabulary, merges and special tokens as
    /// <see cref="WriteTo"/>, the pre-tokenizer's regexes as Split steps before a ByteLevel step, and BOS added.
    /// </summary>
    public void WriteHuggingFace(string directory)
    {
        Directory.CreateDirectory(directory);
        var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using (var stream = File.Create(Path.Combine(directory, "tokenizer.json")))
        using (var json = new Utf8JsonWriter(stream, options))
        {
            json.WriteStartObject();
            json.WriteString("version", "1.0");
            json.WriteNull("truncation");
            json.WriteNull("padding");
            json.WriteStartArray("added_tokens");
            for (int id = BosId; id < Tokens.Length; id++)
            {
                json.WriteStartObject();
                json.WriteNumber("id", id);
                json.WriteString("content", Tokens[id]);
                json.WriteBoolean("single_word", false);
                json.WriteBoolean("lstrip", false);
                json.WriteBoolean("rstrip", false);
                json.WriteBoolean("normalized", false);
                json.WriteBoolean("special", TokenTypes[id] == 3);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNull("normalizer");
            json.WriteStartObject("pre_tokenizer");
            json.WriteString("type", "Sequence");
            json.WriteStartArray("pretokenizers");
            foreach (var regex in PreTokenizerPresets.ForGguf(PreTokenizer)!)
            {
                json.WriteStartObject();
                json.WriteString("type", "Split");
                json.WriteStartObject("pattern");
                json.WriteString("Regex", regex);
                json.WriteEndObject();
                json.WriteString("behavior", "Isolated");
                json.WriteBoolean("invert", false);
                json.WriteEndObject();
            }
            json.WriteStartObject();
            json.WriteString("type", "ByteLevel");
            json.WriteBoolean("add_prefix_space", false);
            json.WriteBoolean("trim_offsets", true);
            json.WriteBoolean("use_regex", false);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteStartObject("post_processor");
            json.WriteString("type", "TemplateProcessing");
            json.WriteStartArray("single");
            json.WriteStartObject();
            json.WriteStartObject("SpecialToken");
            json.WriteString("id", Tokens[BosId]);
            json.WriteNumber("type_id", 0);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteStartObject();
            json.WriteStartObject("Sequence");
            json.WriteString("id", "A");
            json.WriteNumber("type_id", 0);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteStartObject("special_tokens");
            json.WriteStartObject(Tokens[BosId]);
            json.WriteString("id", Tokens[BosId]);
            json.WriteStartArray("ids");
            json.WriteNumberValue(BosId);
            json.WriteEndArray();
            json.WriteStartArray("tokens");
            json.WriteStringValue(Tokens[BosId]);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteStartObject("decoder");
            json.WriteString("type", "ByteLevel");
            json.WriteBoolean("add_prefix_space", true);
            json.WriteBoolean("trim_offsets", true);
            json.WriteBoolean("use_regex", true);
            json.WriteEndObject();
            json.WriteStartObject("model");
            json.WriteString("type", "BPE");
            json.WriteNull("dropout");
            json.WriteNull("unk_token");
            json.WriteNull("continuing_subword_prefix");
            json.WriteNull("end_of_word_suffix");
            json.WriteBoolean("fuse_unk", false);
            json.WriteBoolean("byte_fallback", false);
            json.WriteBoolean("ignore_merges", false);
            json.WriteStartObject("vocab");
            for (int id = 0; id < BosId; id++) json.WriteNumber(Tokens[id], id);
            json.WriteEndObject();
            json.WriteStartArray("merges");
            foreach (var m in Merges) json.WriteStringValue(m);
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        using (var stream = File.Create(Path.Combine(directory, "tokenizer_config.json")))
        using (var json = new Utf8JsonWriter(stream, options))
        {
            json.WriteStartObject();
            json.WriteBoolean("add_bos_token", AddBos);
            json.WriteBoolean("add_eos_token", AddEos);
            json.WriteString("bos_token", Tokens[BosId]);
            json.WriteString("eos_token", Tokens[EosId]);
            json.WriteString("pad_token", Tokens[PadId]);
            json.WriteBoolean("clean_up_tokenization_spaces", false);
            json.WriteBoolean("legacy", true);
            json.WriteNumber("model_max_length", 16384);
            json.WriteString("tokenizer_class", "LlamaTokenizerFast");
            json.WriteEndObject();
        }
    }

    /// <summary>The entries as GGUF-style metadata, for <see cref="Tokenizer.FromGguf"/>.</summary>
    public IConfigSource ToMetadata(string file = "<synthetic vocabulary>") => new Table(file, MetadataEntries().ToDictionary(e => e.Key, e => e.Value));

    sealed class Table(string file, Dictionary<string, object> values) : IConfigSource
    {
        public string File => file;
        public bool Has(string key) => values.ContainsKey(key);
        public long? GetInt(string key) => values.TryGetValue(key, out var v) && v is int i ? i : null;
        public double? GetFloat(string key) => null;
        public string? GetString(string key) => values.TryGetValue(key, out var v) ? v as string : null;
        public bool? GetBool(string key) => values.TryGetValue(key, out var v) && v is bool b ? b : null;
        public long[]? GetIntArray(string key) => values.TryGetValue(key, out var v) && v is int[] a ? Array.ConvertAll(a, x => (long)x) : null;
        public double[]? GetFloatArray(string key) => null;
        public string[]? GetStringArray(string key) => values.TryGetValue(key, out var v) ? v as string[] : null;
    }
}
