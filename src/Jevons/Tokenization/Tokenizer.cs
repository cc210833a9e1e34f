using System.Text;

namespace Jevons.Tokenization;

/// <summary>
/// Byte-level BPE tokenizer (GPT-2 family: DeepSeek-V3/R1, DeepSeek-LLM, Qwen2, Llama-3), loaded
/// from a Hugging Face tokenizer.json (<see cref="FromHuggingFace"/>) or GGUF metadata
/// (<see cref="FromGguf"/>). Encoding: added tokens are matched in the raw text first, then each
/// remaining piece is normalized, pre-tokenized (regex splits) and BPE-merged. Immutable and safe
/// to share between threads.
/// </summary>
public sealed partial class Tokenizer
{
    readonly string[] _tokens;                 // id -> vocabulary string (alphabet form; added tokens as written)
    readonly bool[] _special;                  // id -> dropped by skip-special decoding
    readonly bool[] _rawText;                  // id -> decodes to its own UTF-8 text, not through the byte alphabet
    readonly byte[]?[] _bytes;                 // id -> decoded bytes, filled lazily
    readonly Dictionary<string, int> _vocab;   // vocabulary string -> id (model vocabulary)
    readonly Dictionary<string, int> _added;   // added token content -> id
    readonly BytePairEncoding _bpe;
    readonly PreTokenizer[] _preTokenizers;
    readonly Func<string, string>? _normalize;
    readonly AddedTokenMatcher _rawMatcher;
    readonly AddedTokenMatcher? _normalizedMatcher;
    readonly int[] _prefix, _suffix;

    internal Tokenizer(
        string source, string[] tokens, Dictionary<string, int> modelVocab, IReadOnlyList<(string, string)> merges, bool ignoreMerges,
        IReadOnlyList<AddedToken> addedTokens, bool addedTokensDecodeRaw, IReadOnlyList<PreTokenizer> preTokenizers,
        Func<string, string>? normalize, int[] prefix, int[] suffix,
        int? bos, IReadOnlyList<int> eos, int? pad, string? chatTemplate)
    {
        Source = source;
        _tokens = tokens;
        _special = new bool[tokens.Length];
        _rawText = new bool[tokens.Length];
        _bytes = new byte[]?[tokens.Length];
        _vocab = modelVocab;
        _added = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in addedTokens)
        {
            _special[t.Id] = t.Special;
            _rawText[t.Id] = addedTokensDecodeRaw;
            _added[t.Content] = t.Id;
        }
        AddedTokens = addedTokens;
        _bpe = new BytePairEncoding(modelVocab, merges, ignoreMerges);
        _preTokenizers = preTokenizers.ToArray();
        _normalize = normalize;
        if (normalize is null)
            _rawMatcher = new AddedTokenMatcher(addedTokens);
        else
        {
            _rawMatcher = new AddedTokenMatcher(addedTokens.Where(t => !t.Normalized));
            var normalized = new AddedTokenMatcher(addedTokens.Where(t => t.Normalized));
            _normalizedMatcher = normalized.IsEmpty ? null : normalized;
        }
        _prefix = prefix;
        _suffix = suffix;
        BosId = bos;
        EosIds = eos;
        PadId = pad;
        ChatTemplate = chatTemplate;
    }

    /// <summary>The file (or metadata source) the tokenizer came from, for messages.</summary>
    public string Source { get; }

    /// <summary>Number of ids (highest id + 1); the model's embedding may be larger.</summary>
    public int VocabSize => _tokens.Length;

    public int? BosId { get; }

    /// <summary>Every id that ends generation (tokenizer_config eos, generation_config eos ids, GGUF eos/eot/eom).</summary>
    public IReadOnlyList<int> EosIds { get; }

    public int? PadId { get; }

    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens prepends BOS.</summary>
    public bool AddBos => BosId is int b && _prefix.Contains(b);

    /// <summary>Whether <see cref="Encode"/> with addSpecialTokens appends an EOS.</summary>
    public bool AddEos => _suffix.Length > 0;

    /// <summary>The Jinja chat template shipped with the model, if any.</summary>
    public string? ChatTemplate { get; }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The vocabulary string of an id ("Ġworld", "&lt;｜User｜&gt;").</summary>
    public string TokenText(int id) => _tokens[CheckId(id)];

    public bool IsSpecial(int id) => _special[CheckId(id)];

    /// <summary>The id of a vocabulary string or added token, or null.</summary>
    public int? TokenId(string text) => _added.TryGetValue(text, out var id) || _vocab.TryGetValue(text, out id) ? id : null;

    /// <summary>
    /// Text to ids. <paramref name="addSpecialTokens"/> adds what the model adds around a
    /// sequence (BOS for DeepSeek/Llama); added tokens written in the text are matched either way.
    /// With <paramref name="parseSpecial"/> false, special (control) tokens are not matched and
    /// are tokenized as ordinary text, as llama.cpp does with parse_special = false.
    /// </summary>
    public int[] Encode(string text, bool addSpecialTokens, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefix);
        var segments = new List<AddedTokenMatcher.Segment>();
        _rawMatcher.Split(text, parseSpecial, segments);
        foreach (var s in segments)
        {
            if (s.Text is null) { ids.Add(s.Id); continue; }
            var normalized = _normalize is null ? s.Text : _normalize(s.Text);
            if (_normalizedMatcher is null) { EncodePlain(normalized, ids); continue; }
            var inner = new List<AddedTokenMatcher.Segment>();
            _normalizedMatcher.Split(normalized, parseSpecial, inner);
            foreach (var n in inner)
                if (n.Text is null) ids.Add(n.Id);
                else EncodePlain(n.Text, ids);
        }
        if (addSpecialTokens) ids.AddRange(_suffix);
        return ids.ToArray();
    }

    void EncodePlain(string text, List<int> ids)
    {
        if (text.Length == 0) return;
        foreach (var piece in PreTokenizer.Run(_preTokenizers, text)) _bpe.Encode(piece, ids);
    }

    /// <summary>
    /// Ids to text. Bytes that do not form valid UTF-8 become U+FFFD. With
    /// <paramref name="skipSpecialTokens"/>, special tokens (BOS, EOS, pad, control) are left out.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>(ids.Length * 4);
        foreach (var id in ids)
        {
            if (skipSpecialTokens && _special[CheckId(id)]) continue;
            bytes.AddRange(TokenBytes(id));
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>The raw bytes a token stands for (may be part of a UTF-8 sequence).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        CheckId(id);
        var b = _bytes[id];
        if (b is null)
        {
            var text = _tokens[id];
            b = (_rawText[id] ? null : ByteLevel.TryDecode(text)) ?? Encoding.UTF8.GetBytes(text);
            _bytes[id] = b;
        }
        return b;
    }

    /// <summary>A decoder for one stream of generated ids that only ever returns whole characters.</summary>
    public StreamingDetokenizer CreateDetokenizer(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    int CheckId(int id)
    {
        if ((uint)id >= (uint)_tokens.Length)
            JevonsException.Throw($"token id {id} is out of vocabulary (size {_tokens.Length})", Source);
        return id;
    }
}
