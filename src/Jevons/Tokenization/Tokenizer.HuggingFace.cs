using System.Text.Json;

namespace Jevons.Tokenization;

public sealed partial class Tokenizer
{
    /// <summary>
    /// Finds and loads a tokenizer: a .gguf file (its tokenizer.ggml.* metadata), a
    /// tokenizer.json file, or a directory holding one (tokenizer_config.json and
    /// generation_config.json beside it are used when present).
    /// </summary>
    public static Tokenizer Load(string pathOrDirectory)
    {
        if (File.Exists(pathOrDirectory) && pathOrDirectory.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            using var gguf = Jevons.Formats.GgufFile.Open(pathOrDirectory);
            return FromGguf(gguf.Metadata);
        }
        string file = Directory.Exists(pathOrDirectory) ? Path.Combine(pathOrDirectory, "tokenizer.json") : pathOrDirectory;
        if (!File.Exists(file))
            JevonsException.Throw(Directory.Exists(pathOrDirectory) ? "no tokenizer.json in this directory" : "tokenizer file not found", pathOrDirectory);
        var dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        string? Beside(string name) => File.Exists(Path.Combine(dir, name)) ? Path.Combine(dir, name) : null;
        return FromHuggingFace(file, Beside("tokenizer_config.json"), Beside("generation_config.json"));
    }

    /// <summary>
    /// Loads tokenizer.json (model.vocab, model.merges, added_tokens, normalizer, pre_tokenizer,
    /// post_processor). BOS/EOS follow transformers: tokenizer_config.json's add_bos_token /
    /// add_eos_token when given, else tokenizer.json's post-processor template; EOS ids come from
    /// tokenizer_config.json's eos_token plus generation_config.json's eos_token_id.
    /// </summary>
    public static Tokenizer FromHuggingFace(string tokenizerJsonPath, string? tokenizerConfigPath = null, string? generationConfigPath = null)
    {
        using var doc = ParseJson(tokenizerJsonPath);
        var root = doc.RootElement;
        string file = tokenizerJsonPath;
        if (root.ValueKind != JsonValueKind.Object) JevonsException.Throw("expected a JSON object at the top level", file);
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            JevonsException.Throw("missing 'model'", file);

        var type = Str(model, "type") ?? (model.TryGetProperty("merges", out _) ? "BPE" : null);
        if (type != "BPE")
            JevonsException.Throw($"unsupported tokenizer model type '{type ?? "(none)"}': only byte-level BPE is supported", file);
        if (!string.IsNullOrEmpty(Str(model, "continuing_subword_prefix")) || !string.IsNullOrEmpty(Str(model, "end_of_word_suffix")))
            JevonsException.Throw("unsupported BPE options: continuing_subword_prefix / end_of_word_suffix", file);

        // Vocabulary.
        if (!model.TryGetProperty("vocab", out var vocabJson) || vocabJson.ValueKind != JsonValueKind.Object)
            JevonsException.Throw("missing 'model.vocab'", file);
        var vocab = ReadVocab(vocabJson, file, out int maxId);

        // Merges: "a b" strings or [a, b] arrays.
        var merges = model.TryGetProperty("merges", out var mergesJson) && mergesJson.ValueKind == JsonValueKind.Array ? ReadMerges(mergesJson, file) : [];

        // Added tokens.
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var addedJson) && addedJson.ValueKind == JsonValueKind.Array)
        {
            int index = 0;
            foreach (var a in addedJson.EnumerateArray())
            {
                var content = Str(a, "content");
                int id = a.ValueKind == JsonValueKind.Object && a.TryGetProperty("id", out var idJson)
                    && idJson.ValueKind == JsonValueKind.Number && idJson.TryGetInt32(out var v) ? v : -1;
                if (content is null || id < 0)
                    JevonsException.Throw($"added_tokens[{index}] is malformed: it needs a string 'content' and a non-negative integer 'id'", file);
                index++;
                added.Add(new AddedToken(id, content, Bool(a, "special") ?? false, Bool(a, "normalized") ?? false,
                    Bool(a, "lstrip") ?? false, Bool(a, "rstrip") ?? false));
                maxId = Math.Max(maxId, id);
            }
        }

        CheckIdRange(maxId, vocab.Count + added.Count, file);
        var tokens = new string[maxId + 1];
        Array.Fill(tokens, "");
        foreach (var (k, v) in vocab) tokens[v] = k;
        foreach (var a in added) tokens[a.Id] = a.Content;

        var normalize = root.TryGetProperty("normalizer", out var normJson) ? ParseNormalizer(normJson, file) : null;
        var steps = new List<PreTokenizer>();
        bool byteLevel = false;
        if (root.TryGetProperty("pre_tokenizer", out var preJson)) ParsePreTokenizer(preJson, steps, ref byteLevel, file);
        if (!byteLevel) JevonsException.Throw("unsupported tokenizer: the pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)", file);

        int? Lookup(string? text) => text is null ? null : added.FirstOrDefault(a => a.Content == text)?.Id ?? (vocab.TryGetValue(text, out var v) ? v : null);

        // Post-processor template: special tokens before and after the sequence.
        var prefix = new List<int>();
        var suffix = new List<int>();
        if (root.TryGetProperty("post_processor", out var postJson)) ParsePostProcessor(postJson, prefix, suffix, file);

        int? bos = null, pad = null;
        var eos = new List<int>();
        string? chatTemplate = null;
        if (tokenizerConfigPath is not null)
        {
            using var cfgDoc = ParseJson(tokenizerConfigPath);
            var cfg = cfgDoc.RootElement;
            bos = Lookup(TokenString(cfg, "bos_token"));
            pad = Lookup(TokenString(cfg, "pad_token"));
            if (Lookup(TokenString(cfg, "eos_token")) is int e) eos.Add(e);
            chatTemplate = ChatTemplateOf(cfg);
            bool? addBos = Bool(cfg, "add_bos_token"), addEos = Bool(cfg, "add_eos_token");
            if (addBos is not null || addEos is not null)
            {
                // transformers (LlamaTokenizerFast and friends) rebuilds the post-processor from these flags.
                prefix.Clear();
                suffix.Clear();
                if (addBos == true && bos is int b) prefix.Add(b);
                if (addEos == true && eos.Count > 0) suffix.Add(eos[0]);
            }
            var jinja = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tokenizerConfigPath))!, "chat_template.jinja");
            if (chatTemplate is null && File.Exists(jinja)) chatTemplate = File.ReadAllText(jinja);
        }
        bos ??= prefix.Count > 0 ? prefix[0] : null;
        if (generationConfigPath is not null)
        {
            using var genDoc = ParseJson(generationConfigPath);
            if (genDoc.RootElement.ValueKind == JsonValueKind.Object && genDoc.RootElement.TryGetProperty("eos_token_id", out var eosJson))
            {
                if (eosJson.ValueKind == JsonValueKind.Number && eosJson.TryGetInt32(out var one)) eos.Add(one);
                else if (eosJson.ValueKind == JsonValueKind.Array)
                    foreach (var x in eosJson.EnumerateArray()) if (x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out var v)) eos.Add(v);
            }
        }
        foreach (var id in prefix.Concat(suffix).Concat(eos))
            if (id < 0 || id >= tokens.Length) JevonsException.Throw($"special token id {id} is outside the vocabulary (size {tokens.Length})", file);

        return new Tokenizer(file, tokens, vocab, merges, Bool(model, "ignore_merges") ?? false, added, addedTokensDecodeRaw: false,
            steps, normalize, prefix.ToArray(), suffix.ToArray(), bos, eos.Distinct().ToArray(), pad, chatTemplate);
    }

    // One-shot loops over 100k+ entries: AggressiveOptimization skips the slow first JIT tier.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static Dictionary<string, int> ReadVocab(JsonElement vocabJson, string file, out int maxId)
    {
        var vocab = new Dictionary<string, int>(vocabJson.GetPropertyCount(), StringComparer.Ordinal);
        maxId = -1;
        foreach (var p in vocabJson.EnumerateObject())
        {
            int id = -1;
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out id) || id < 0)
                JevonsException.Throw($"model.vocab['{Clip(p.Name)}'] is {Clip(p.Value.GetRawText())}, expected a non-negative integer id", file);
            vocab[p.Name] = id;
            maxId = Math.Max(maxId, id);
        }
        return vocab;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static List<(string, string)> ReadMerges(JsonElement mergesJson, string file)
    {
        var merges = new List<(string, string)>(mergesJson.GetArrayLength());
        int index = 0;
        foreach (var m in mergesJson.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String)
            {
                var s = m.GetString()!;
                int sp = s.Length < 2 ? -1 : s.IndexOf(' ', 1);
                if (sp < 0) JevonsException.Throw($"model.merges[{index}] = '{Clip(s)}' is malformed (expected 'left right')", file);
                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                merges.Add((m[0].GetString()!, m[1].GetString()!));
            else JevonsException.Throw($"model.merges[{index}] is {Clip(m.GetRawText())}, expected \"left right\" or [\"left\", \"right\"]", file);
            index++;
        }
        return merges;
    }

    /// <summary>Most token ids a tokenizer may declare; the largest real vocabularies are ~2.6·10^5.</summary>
    public const int MaxVocabulary = 1 << 22;
    /// <summary>How many ids beyond the declared entries the id range may leave unused (a few reserved ids are common).</summary>
    public const int MaxIdHoles = 1 << 16;

    /// <summary>Ids size the id → token arrays: refuse ranges the entries cannot account for.</summary>
    static void CheckIdRange(int maxId, int entries, string file)
    {
        long size = (long)maxId + 1;
        if (size > MaxVocabulary)
            JevonsException.Throw($"token id {maxId} is above the {MaxVocabulary - 1} this reader accepts", file);
        if (size > (long)entries + MaxIdHoles)
            JevonsException.Throw($"token id {maxId} leaves {size - entries} of {size} ids unused (only {entries} tokens are declared); the ids are corrupt", file);
    }

    /// <summary>The largest tokenizer.json files (~250k tokens) are ~30 MB.</summary>
    const long MaxJsonBytes = 512L << 20;

    static string Clip(string text) => text.Length > 40 ? text[..40] + "..." : text;

    static JsonDocument ParseJson(string path)
    {
        if (!File.Exists(path)) JevonsException.Throw("file not found", path);
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxJsonBytes)
                JevonsException.Throw($"is {length} bytes; tokenizer files are at most {MaxJsonBytes}", path);
            var bytes = File.ReadAllBytes(path);
            var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            try
            {
                Jevons.Formats.JsonText.CheckStrings(bytes, path, new JsonReaderOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            }
            catch
            {
                doc.Dispose();
                throw;
            }
            return doc;
        }
        catch (JsonException ex)
        {
            throw new JevonsException($"malformed JSON: {ex.Message}", path, inner: ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new JevonsException("cannot read: " + ex.Message, path, inner: ex);
        }
    }

    static string? Str(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    static bool? Bool(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && (v.ValueKind is JsonValueKind.True or JsonValueKind.False) ? v.GetBoolean() : null;

    /// <summary>A token given as a string or as an AddedToken object {"content": ...}.</summary>
    static string? TokenString(JsonElement cfg, string name)
    {
        if (cfg.ValueKind != JsonValueKind.Object || !cfg.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object => Str(v, "content"),
            _ => null,
        };
    }

    static string? ChatTemplateOf(JsonElement cfg)
    {
        if (cfg.ValueKind != JsonValueKind.Object || !cfg.TryGetProperty("chat_template", out var t)) return null;
        if (t.ValueKind == JsonValueKind.String) return t.GetString();
        if (t.ValueKind == JsonValueKind.Array) // [{name, template}, ...]: the "default" one
        {
            string? first = null;
            foreach (var e in t.EnumerateArray())
            {
                first ??= Str(e, "template");
                if (Str(e, "name") == "default") return Str(e, "template");
            }
            return first;
        }
        return null;
    }

    static Func<string, string>? ParseNormalizer(JsonElement n, string file)
    {
        if (n.ValueKind != JsonValueKind.Object) return null;
        var type = Str(n, "type");
        switch (type)
        {
            case "NFC": return UnicodeNormalizer.Nfc;
            case "NFD": return UnicodeNormalizer.Nfd;
            case "Lowercase": return s => s.ToLowerInvariant();
            case "Prepend": { var p = Str(n, "prepend") ?? ""; return s => p + s; }
            case "Strip":
            {
                bool left = Bool(n, "strip_left") ?? true, right = Bool(n, "strip_right") ?? true;
                return s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s;
            }
            case "Replace":
            {
                var content = Str(n, "content") ?? "";
                if (n.TryGetProperty("pattern", out var pat) && Str(pat, "String") is string lit)
                {
                    if (lit.Length == 0) JevonsException.Throw("normalizer Replace has an empty pattern.String", file);
                    return s => s.Replace(lit, content, StringComparison.Ordinal);
                }
                if (Str(pat, "Regex") is string rx)
                {
                    var re = RegexSplit.CreateRegex(rx, System.Text.RegularExpressions.RegexOptions.CultureInvariant, file, "Replace normalizer");
                    return s => RegexSplit.Guard(rx, () => re.Replace(s, content));
                }
                return JevonsException.Throw<Func<string, string>?>("malformed Replace normalizer", file);
            }
            case "Sequence":
            {
                var list = new List<Func<string, string>>();
                if (n.TryGetProperty("normalizers", out var arr) && arr.ValueKind == JsonValueKind.Array)
                    foreach (var e in arr.EnumerateArray()) if (ParseNormalizer(e, file) is { } f) list.Add(f);
                if (list.Count == 0) return null;
                return s => { foreach (var f in list) s = f(s); return s; };
            }
            default:
                return JevonsException.Throw<Func<string, string>?>($"unsupported normalizer '{type}'", file);
        }
    }

    static void ParsePreTokenizer(JsonElement p, List<PreTokenizer> steps, ref bool byteLevel, string file)
    {
        if (p.ValueKind != JsonValueKind.Object) return;
        var type = Str(p, "type");
        switch (type)
        {
            case "Sequence":
                if (p.TryGetProperty("pretokenizers", out var arr) && arr.ValueKind == JsonValueKind.Array)
                    foreach (var e in arr.EnumerateArray()) ParsePreTokenizer(e, steps, ref byteLevel, file);
                break;
            case "Split":
            {
                p.TryGetProperty("pattern", out var pat);
                var regex = Str(pat, "Regex");
                var literal = Str(pat, "String");
                if (regex is null && literal is null) JevonsException.Throw("Split pre-tokenizer without a pattern", file);
                var behavior = Str(p, "behavior") switch
                {
                    "Isolated" or null => SplitBehavior.Isolated,
                    "Removed" => SplitBehavior.Removed,
                    "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
                    "MergedWithNext" => SplitBehavior.MergedWithNext,
                    "Contiguous" => SplitBehavior.Contiguous,
                    var b => JevonsException.Throw<SplitBehavior>($"unsupported Split behavior '{b}'", file),
                };
                steps.Add(new RegexSplit(regex ?? literal!, behavior, Bool(p, "invert") ?? false, literal: regex is null, file));
                break;
            }
            case "Digits":
                steps.Add(new DigitsSplit(Bool(p, "individual_digits") ?? false));
                break;
            case "ByteLevel":
                byteLevel = true;
                steps.Add(new ByteLevelSplit(Bool(p, "add_prefix_space") ?? true, Bool(p, "use_regex") ?? true));
                break;
            default:
                JevonsException.Throw($"unsupported pre_tokenizer '{type}'", file);
                break;
        }
    }

    static void ParsePostProcessor(JsonElement p, List<int> prefix, List<int> suffix, string file)
    {
        if (p.ValueKind != JsonValueKind.Object) return;
        switch (Str(p, "type"))
        {
            case "Sequence":
                if (p.TryGetProperty("processors", out var arr) && arr.ValueKind == JsonValueKind.Array)
                    foreach (var e in arr.EnumerateArray()) ParsePostProcessor(e, prefix, suffix, file);
                break;
            case "TemplateProcessing":
            {
                if (!p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) return;
                p.TryGetProperty("special_tokens", out var specials);
                bool afterSequence = false;
                foreach (var piece in single.EnumerateArray())
                {
                    if (piece.ValueKind != JsonValueKind.Object)
                        JevonsException.Throw($"post_processor.single holds {Clip(piece.GetRawText())}, expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}} objects", file);
                    if (piece.TryGetProperty("Sequence", out _)) { afterSequence = true; continue; }
                    if (!piece.TryGetProperty("SpecialToken", out var st)) continue;
                    var name = Str(st, "id");
                    if (name is null || specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(name, out var spec)) continue;
                    if (spec.ValueKind != JsonValueKind.Object || !spec.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array) continue;
                    foreach (var id in ids.EnumerateArray())
                    {
                        int v = 0;
                        if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out v))
                            JevonsException.Throw($"post_processor.special_tokens['{Clip(name)}'].ids holds {Clip(id.GetRawText())}, expected integer ids", file);
                        (afterSequence ? suffix : prefix).Add(v);
                    }
                }
                break;
            }
        }
    }
}
