using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Jevons.Tokenization;

/// <summary>Settings of <see cref="BpeTrainer.Train"/>.</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>Target number of ids: added tokens + the 256 byte tokens + merges. Training stops early when no pair is frequent enough.</summary>
    public int VocabSize { get; init; } = 1024;

    /// <summary>A pair seen fewer times than this in the corpus is never merged.</summary>
    public int MinFrequency { get; init; } = 2;

    /// <summary>Added tokens, given ids 0.. in this order (default: the DeepSeek-R1 ones, <see cref="BpeTrainer.R1Tokens"/>).</summary>
    public IReadOnlyList<(string Content, bool Special)> AddedTokens { get; init; } = BpeTrainer.R1Tokens;

    /// <summary>The pre-tokenizer regex (default <see cref="BpeTrainer.DigitSplitPattern"/>).</summary>
    public string Pattern { get; init; } = BpeTrainer.DigitSplitPattern;

    /// <summary>tokenizer_config.json's model_max_length.</summary>
    public int ModelMaxLength { get; init; } = 512;
}

/// <summary>
/// Trains a byte-level BPE vocabulary on a corpus and writes it as a Hugging Face tokenizer.json
/// (+ tokenizer_config.json with an R1-style chat template) that <see cref="Tokenizer.Load"/>
/// reads. Text is pre-tokenized by one Split regex (each digit its own piece, so numbers are
/// always one token per digit) and the byte-level step; the 256 byte tokens are always in the
/// vocabulary, so any text encodes and decodes exactly. Merges are learned greedily: the most
/// frequent adjacent pair, ties broken by the ordinal order of (left, right) token strings, so the
/// same corpus gives the same file.
/// </summary>
public static class BpeTrainer
{
    public const string Bos = "<｜begin▁of▁sentence｜>", Eos = "<｜end▁of▁sentence｜>", User = "<｜User｜>", Assistant = "<｜Assistant｜>";
    public const string ThinkOpen = "<think>", ThinkClose = "</think>";

    /// <summary>
    /// The DeepSeek-R1 tokens, ids 0–5. BOS, EOS, User and Assistant are special (dropped by
    /// skip-special decoding); &lt;think&gt; and &lt;/think&gt; are added but not special, so they stay
    /// in decoded text for the reasoning parser and are still never split.
    /// </summary>
    public static IReadOnlyList<(string Content, bool Special)> R1Tokens { get; } =
        [(Bos, true), (Eos, true), (User, true), (Assistant, true), (ThinkOpen, false), (ThinkClose, false)];

    /// <summary>
    /// Each digit alone; an ASCII punctuation mark joined to the letters after it ("\boxed"); a
    /// word with its leading space; a punctuation run with its leading space, the space after it when a
    /// digit follows (": 4", ", 7", " → 5": the space costs no token of its own) and trailing line
    /// breaks; line breaks with the spaces before them; other spaces (GPT-2's last two rules).
    /// </summary>
    public const string DigitSplitPattern =
        @"\p{N}|[!""#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+| ?\p{L}+| ?[^\s\p{L}\p{N}]+(?: (?=\p{N}))?[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The chat template written to tokenizer_config.json: DeepSeek-R1's layout without tools.</summary>
    public const string ChatTemplate =
        "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}" +
        "{% set ns = namespace(system_prompt='', is_first_sp=true) %}" +
        "{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}" +
        "{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}" +
        "{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}" +
        "{{ bos_token }}{{ ns.system_prompt }}" +
        "{%- for message in messages %}" +
        "{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{%- endif %}" +
        "{%- if message['role'] == 'assistant' %}{%- set content = message['content'] %}" +
        "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}" +
        "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}" +
        "{%- endfor %}" +
        "{%- if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{%- endif %}";

    public static TrainedBpe Train(IEnumerable<string> corpus, BpeTrainerOptions? options = null)
    {
        options ??= new BpeTrainerOptions();
        ArgumentNullException.ThrowIfNull(corpus);
        var added = options.AddedTokens.Select((t, i) => new AddedToken(i, t.Content, t.Special)).ToArray();
        if (options.VocabSize < added.Length + 256)
            throw new JevonsException($"vocabulary size {options.VocabSize} is below the {added.Length} added tokens + 256 byte tokens");

        // Words: pre-tokens of the corpus with the added tokens cut out, counted.
        var matcher = new AddedTokenMatcher(added);
        PreTokenizer[] steps = [new RegexSplit(options.Pattern), new ByteLevelSplit(addPrefixSpace: false, useRegex: false)];
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var segments = new List<AddedTokenMatcher.Segment>();
        foreach (var text in corpus)
        {
            segments.Clear();
            matcher.Split(text, includeSpecial: true, segments);
            foreach (var s in segments)
            {
                if (s.Text is null) continue;
                foreach (var piece in PreTokenizer.Run(steps, s.Text))
                    counts[piece] = counts.GetValueOrDefault(piece) + 1;
            }
        }

        // Ids: added tokens, then the 256 bytes in byte order, then merges.
        var tokens = new List<string>(options.VocabSize);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var a in added) { ids[a.Content] = tokens.Count; tokens.Add(a.Content); }
        var byteId = new int[256];
        for (int b = 0; b < 256; b++)
        {
            var s = ByteLevel.ByteToChar((byte)b).ToString();
            byteId[b] = tokens.Count;
            ids[s] = tokens.Count;
            tokens.Add(s);
        }

        var words = counts.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (Symbols: Encoding.UTF8.GetBytes(kv.Key).Select(b => byteId[b]).ToList(), Count: kv.Value)).ToArray();
        var pairCounts = new Dictionary<(int, int), long>();
        var pairWords = new Dictionary<(int, int), HashSet<int>>();
        for (int w = 0; w < words.Length; w++) AddPairs(words[w].Symbols, words[w].Count, w, pairCounts, pairWords, +1);

        // Most frequent first; ties by the token strings (ordinal), lazily invalidated.
        var queue = new PriorityQueue<(int L, int R, long Count), (int L, int R, long Count)>(
            Comparer<(int L, int R, long Count)>.Create((x, y) =>
            {
                int c = y.Count.CompareTo(x.Count);
                if (c == 0) c = string.CompareOrdinal(tokens[x.L], tokens[y.L]);
                if (c == 0) c = string.CompareOrdinal(tokens[x.R], tokens[y.R]);
                return c;
            }));
        foreach (var (pair, count) in pairCounts) queue.Enqueue((pair.Item1, pair.Item2, count), (pair.Item1, pair.Item2, count));

        var merges = new List<(string, string)>();
        var changed = new HashSet<(int, int)>();
        while (tokens.Count < options.VocabSize && queue.TryDequeue(out var top, out _))
        {
            var pair = (top.L, top.R);
            if (pairCounts.GetValueOrDefault(pair) != top.Count) continue; // stale
            if (top.Count < options.MinFrequency) break;
            var joined = tokens[top.L] + tokens[top.R];
            if (!ids.TryGetValue(joined, out int merged))
            {
                merged = tokens.Count;
                ids[joined] = merged;
                tokens.Add(joined);
            }
            merges.Add((tokens[top.L], tokens[top.R]));

            changed.Clear();
            foreach (int w in pairWords[pair].ToArray())
            {
                var (symbols, count) = words[w];
                AddPairs(symbols, count, w, pairCounts, pairWords, -1, changed);
                var next = new List<int>(symbols.Count);
                for (int i = 0; i < symbols.Count; i++)
                {
                    if (i + 1 < symbols.Count && symbols[i] == top.L && symbols[i + 1] == top.R) { next.Add(merged); i++; }
                    else next.Add(symbols[i]);
                }
                words[w].Symbols = next;
                AddPairs(next, count, w, pairCounts, pairWords, +1, changed);
            }
            foreach (var p in changed)
                if (pairCounts.TryGetValue(p, out var c) && c > 0) queue.Enqueue((p.Item1, p.Item2, c), (p.Item1, p.Item2, c));
        }
        return new TrainedBpe(tokens.ToArray(), merges, added, options);
    }

    static void AddPairs(List<int> symbols, long count, int word, Dictionary<(int, int), long> pairCounts,
        Dictionary<(int, int), HashSet<int>> pairWords, int sign, HashSet<(int, int)>? changed = null)
    {
        for (int i = 0; i + 1 < symbols.Count; i++)
        {
            var p = (symbols[i], symbols[i + 1]);
            long c = pairCounts.GetValueOrDefault(p) + sign * count;
            if (c == 0) pairCounts.Remove(p);
            else pairCounts[p] = c;
            if (sign > 0)
            {
                if (!pairWords.TryGetValue(p, out var set)) pairWords[p] = set = new HashSet<int>();
                set.Add(word);
            }
            changed?.Add(p);
        }
    }
}

/// <summary>A trained vocabulary: ids in order (<see cref="Tokens"/>), merges by rank, added tokens.</summary>
public sealed class TrainedBpe
{
    readonly BpeTrainerOptions _options;

    internal TrainedBpe(string[] tokens, List<(string, string)> merges, IReadOnlyList<AddedToken> addedTokens, BpeTrainerOptions options)
    {
        Tokens = tokens;
        Merges = merges;
        AddedTokens = addedTokens;
        _options = options;
    }

    /// <summary>Vocabulary strings by id (byte-level alphabet; added tokens as written).</summary>
    public IReadOnlyList<string> Tokens { get; }

    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    public int VocabSize => Tokens.Count;

    static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes tokenizer.json and tokenizer_config.json into a directory (created if needed).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllBytes(Path.Combine(directory, "tokenizer.json"), TokenizerJson());
        File.WriteAllBytes(Path.Combine(directory, "tokenizer_config.json"), TokenizerConfigJson());
    }

    /// <summary>Writes the files and loads them back with the engine's loader.</summary>
    public Tokenizer SaveAndLoad(string directory)
    {
        Save(directory);
        return Tokenizer.Load(directory);
    }

    public byte[] TokenizerJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            foreach (var a in AddedTokens)
            {
                w.WriteStartObject();
                w.WriteNumber("id", a.Id);
                w.WriteString("content", a.Content);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", a.Special);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");

            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            w.WriteStartObject();
            w.WriteString("type", "Split");
            w.WriteStartObject("pattern");
            w.WriteString("Regex", _options.Pattern);
            w.WriteEndObject();
            w.WriteString("behavior", "Isolated");
            w.WriteBoolean("invert", false);
            w.WriteEndObject();
            WriteByteLevel(w, addPrefixSpace: false, useRegex: false);
            w.WriteEndArray();
            w.WriteEndObject();

            // BOS before every sequence (transformers rebuilds the same from add_bos_token).
            var bos = AddedTokens[0];
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            w.WriteStartArray("single");
            WritePiece(w, "SpecialToken", bos.Content, 0);
            WritePiece(w, "Sequence", "A", 0);
            w.WriteEndArray();
            w.WriteStartArray("pair");
            WritePiece(w, "SpecialToken", bos.Content, 0);
            WritePiece(w, "Sequence", "A", 0);
            WritePiece(w, "SpecialToken", bos.Content, 1);
            WritePiece(w, "Sequence", "B", 1);
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            w.WriteStartObject(bos.Content);
            w.WriteString("id", bos.Content);
            w.WriteStartArray("ids");
            w.WriteNumberValue(bos.Id);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(bos.Content);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();

            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();

            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (int id = 0; id < Tokens.Count; id++) w.WriteNumber(Tokens[id], id);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (l, r) in Merges) w.WriteStringValue(l + " " + r);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    static void WriteByteLevel(Utf8JsonWriter w, bool addPrefixSpace, bool useRegex)
    {
        w.WriteStartObject();
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", addPrefixSpace);
        w.WriteBoolean("trim_offsets", true);
        w.WriteBoolean("use_regex", useRegex);
        w.WriteEndObject();
    }

    static void WritePiece(Utf8JsonWriter w, string kind, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject(kind);
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public byte[] TokenizerConfigJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteBoolean("add_bos_token", true);
            w.WriteBoolean("add_eos_token", false);
            w.WriteString("bos_token", AddedTokens[0].Content);
            w.WriteString("eos_token", AddedTokens[1].Content);
            w.WriteString("pad_token", AddedTokens[1].Content);
            w.WriteNull("unk_token");
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            w.WriteBoolean("legacy", true);
            w.WriteNumber("model_max_length", _options.ModelMaxLength);
            w.WriteString("tokenizer_class", "LlamaTokenizerFast");
            w.WriteString("chat_template", BpeTrainer.ChatTemplate);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
