using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Jevons.Tests.Support;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

public class TokenizerTests
{
    static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "jevons-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A tiny byte-level BPE tokenizer.json: all 256 byte tokens, a few merges, added tokens.</summary>
    static string WriteTinyTokenizer(string dir, string modelType = "BPE", string? extra = null)
    {
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[ByteLevel.ByteToChar((byte)b).ToString()] = b;
        string[] merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o"];
        foreach (var m in merges) vocab[m.Replace(" ", "")] = vocab.Count;
        var json = new
        {
            added_tokens = new object[]
            {
                new { id = 300, content = "<s>", special = true, normalized = false, lstrip = false, rstrip = false },
                new { id = 301, content = "<tool>", special = false, normalized = false, lstrip = false, rstrip = false },
            },
            normalizer = (object?)null,
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, use_regex = true },
            post_processor = new
            {
                type = "TemplateProcessing",
                single = new object[] { new { SpecialToken = new { id = "<s>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } },
                special_tokens = new Dictionary<string, object> { ["<s>"] = new { id = "<s>", ids = new[] { 300 }, tokens = new[] { "<s>" } } },
            },
            decoder = new { type = "ByteLevel" },
            model = new { type = modelType, vocab, merges = merges.Select(m => m.Split(' ')).ToArray() },
        };
        var path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        if (extra is not null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), extra);
        return path;
    }

    [Fact]
    public void TinyTokenizerMergesByRankAndFollowsPostProcessor()
    {
        var dir = TempDir();
        WriteTinyTokenizer(dir);
        var t = Tokenizer.Load(dir);
        int hello = t.TokenId("hello")!.Value, wo = t.TokenId("Ġwo")!.Value;
        Assert.Equal([hello, wo, 'r', 'l', 'd'], t.Encode("hello world", false)); // byte tokens have their byte as id here
        Assert.Equal(300, t.BosId);
        Assert.True(t.AddBos);
        Assert.Equal(300, t.Encode("hi", true)[0]);
        Assert.Equal([301], t.Encode("<tool>", false));
        Assert.Equal("<s>hello world", t.Decode(t.Encode("hello world", true)));
        Assert.Equal("hello world", t.Decode(t.Encode("hello world", true), skipSpecialTokens: true));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void ConfigFlagsOverrideThePostProcessor()
    {
        var dir = TempDir();
        WriteTinyTokenizer(dir, extra: """{ "add_bos_token": false, "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "<tool>", "chat_template": "x" }""");
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{ "eos_token_id": [301, 5] }""");
        var t = Tokenizer.Load(Path.Combine(dir, "tokenizer.json"));
        Assert.Equal(300, t.BosId);
        Assert.False(t.AddBos);
        Assert.Equal(t.Encode("hi", false), t.Encode("hi", true));
        Assert.Equal([301, 5], t.EosIds);
        Assert.Equal("x", t.ChatTemplate);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void BadInputGivesOneLineNamingTheFile()
    {
        var dir = TempDir();
        var missing = Path.Combine(dir, "nothere", "tokenizer.json");
        var e1 = Assert.Throws<JevonsException>(() => Tokenizer.FromHuggingFace(missing));
        Assert.Contains(missing, e1.Message);
        Assert.Contains("not found", e1.Message);
        Assert.Contains("no tokenizer.json", Assert.Throws<JevonsException>(() => Tokenizer.Load(dir)).Message);

        var bad = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(bad, "{ \"model\": { \"type\": \"BPE\", \"vocab\": {\"a\": 0,, } }");
        var e2 = Assert.Throws<JevonsException>(() => Tokenizer.FromHuggingFace(bad));
        Assert.StartsWith(bad + ": malformed JSON", e2.Message);
        Assert.DoesNotContain('\n', e2.Message);

        foreach (var type in new[] { "Unigram", "WordPiece" })
        {
            WriteTinyTokenizer(dir, type);
            var e3 = Assert.Throws<JevonsException>(() => Tokenizer.FromHuggingFace(bad));
            Assert.Equal($"{bad}: unsupported tokenizer model type '{type}': only byte-level BPE is supported", e3.Message);
        }

        WriteTinyTokenizer(dir);
        var t = Tokenizer.FromHuggingFace(bad);
        var e4 = Assert.Throws<JevonsException>(() => t.Decode([5, 999]));
        Assert.Contains("token id 999 is out of vocabulary (size 302)", e4.Message);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void GgufWithoutBpeVocabularyIsRejected()
    {
        var meta = new MetadataSource("m.gguf", new() { ["tokenizer.ggml.model"] = "llama" });
        Assert.Equal("m.gguf: unsupported tokenizer model 'llama' (tokenizer.ggml.model): only byte-level BPE ('gpt2') is supported",
            Assert.Throws<JevonsException>(() => Tokenizer.FromGguf(meta)).Message);
        Assert.Contains("tokenizer.ggml.model is missing", Assert.Throws<JevonsException>(() => Tokenizer.FromGguf(new MetadataSource("m.gguf", new()))).Message);
        var v = SyntheticVocabulary.Create(400);
        var entries = v.MetadataEntries().ToDictionary(e => e.Key, e => e.Value);
        entries["tokenizer.ggml.pre"] = "klingon";
        Assert.Contains("unsupported pre-tokenizer 'klingon'", Assert.Throws<JevonsException>(() => Tokenizer.FromGguf(new MetadataSource("m.gguf", entries))).Message);
    }

    [Theory]
    [InlineData("e\u0301", "\u00E9")]
    [InlineData("A\u030A vs \u00C5", "\u00C5 vs \u00C5")]
    [InlineData("\u2126", "\u03A9")]
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]                  // Hangul L V T composes
    [InlineData("a\u0323\u0302", "\u1EAD")]                       // canonical reordering then composition
    [InlineData("a\u0302\u0323", "\u1EAD")]
    [InlineData("\u0301e", "\u0301e")]                            // a leading combining mark stays
    [InlineData("\uD835\uDFD9x", "\uD835\uDFD9x")]
    public void NfcMatchesUnicode(string input, string expected) => Assert.Equal(expected, UnicodeNormalizer.Nfc(input));

    [Fact]
    public void NfdDecomposesFully() => Assert.Equal("a\u0323\u0302", UnicodeNormalizer.Nfd("\u1EAD"));

    [Fact]
    public void RegexSplitKeepsSurrogatePairsTogetherAndUsesTheirCategory()
    {
        var split = new RegexSplit(@"\p{N}+|\p{L}+|\p{S}+");
        var output = new List<string>();
        split.Split("ab\uD835\uDFD9\uD835\uDFDA12\uD83E\uDD17\uD83D\uDE80x", output); // math digits (Nd), emoji (So)
        Assert.Equal(["ab", "\uD835\uDFD9\uD835\uDFDA12", "\uD83E\uDD17\uD83D\uDE80", "x"], output);
    }

    [Theory]
    [InlineData(SplitBehavior.Isolated, "a|-|b|-|-|c")]
    [InlineData(SplitBehavior.Removed, "a|b|c")]
    [InlineData(SplitBehavior.MergedWithPrevious, "a-|b-|-|c")]
    [InlineData(SplitBehavior.MergedWithNext, "a|-b|-|-c")]
    [InlineData(SplitBehavior.Contiguous, "a|-|b|--|c")]
    public void SplitBehaviors(SplitBehavior behavior, string expected)
    {
        var output = new List<string>();
        new RegexSplit("-", behavior).Split("a-b--c", output);
        Assert.Equal(expected, string.Join("|", output));
    }

    [Fact]
    public void DetokenizerHoldsIncompleteSequences()
    {
        Assert.Equal(0, StreamingDetokenizer.CompletePrefixLength([0xE4, 0xBD]));
        Assert.Equal(1, StreamingDetokenizer.CompletePrefixLength([(byte)'a', 0xF0, 0x9F, 0xA4]));
        Assert.Equal(4, StreamingDetokenizer.CompletePrefixLength([0xF0, 0x9F, 0xA4, 0x97]));
        Assert.Equal(2, StreamingDetokenizer.CompletePrefixLength([0xFF, 0x80]));           // never valid: pass through
        Assert.Equal(2, StreamingDetokenizer.CompletePrefixLength([0xE0, 0x80]));           // overlong start: cannot complete

        var t = Tokenizer.FromGguf(SyntheticVocabulary.Create(600).ToMetadata());
        var ids = t.Encode("🤗x", false); // four byte tokens, then x
        var d = t.CreateDetokenizer();
        Assert.Equal(["", "", "", "🤗", "x"], ids.Select(d.Push).ToArray());
        d.Push(ids[0]);
        Assert.Equal("\uFFFD", d.Flush());
    }

    [GoldenFact]
    public void EncodingIsFast()
    {
        var t = TokenizerGoldenTests.Load("deepseek-v3");
        var cases = TokenizerGoldenTests.CasesFile("deepseek-v3").GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()).ToArray();
        var sb = new StringBuilder();
        for (int i = 0; sb.Length < 100_000; i++) sb.Append(cases[i % cases.Length]).Append(' ').Append(i).Append('\n');
        var text = sb.ToString();
        t.Encode(text[..1000], false); // warm-up
        var sw = Stopwatch.StartNew();
        var ids = t.Encode(text, false);
        sw.Stop();
        Assert.Equal(text, t.Decode(ids));
        Assert.True(sw.Elapsed.TotalSeconds < 1.0, $"100 KB took {sw.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void LongWordsWithoutSplitsStayFast()
    {
        var t = Tokenizer.FromGguf(SyntheticVocabulary.Create(20000, "qwen2").ToMetadata());
        var word = string.Concat(Enumerable.Repeat("thequick", 5000)); // one 40 KB pre-token: the heap keeps BPE O(n log n)
        var sw = Stopwatch.StartNew();
        var ids = t.Encode(word, false);
        Assert.True(sw.Elapsed.TotalSeconds < 2, $"{sw.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(word, t.Decode(ids));
    }
}
