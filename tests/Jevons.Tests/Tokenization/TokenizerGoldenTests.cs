using System.Collections.Concurrent;
using System.Text.Json;
using Jevons.Tests.Support;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

/// <summary>Hugging Face tokenizers' ids and decodes for DeepSeek-V3 and Qwen3 (../shared/golden/tokenizer).</summary>
public class TokenizerGoldenTests
{
    public static readonly string[] Names = ["deepseek-v3", "qwen3"];
    static readonly ConcurrentDictionary<string, Lazy<Tokenizer>> Tokenizers = new();
    static readonly ConcurrentDictionary<string, JsonDocument> CaseFiles = new();

    internal static Tokenizer Load(string name) => Tokenizers.GetOrAdd(name, n => new Lazy<Tokenizer>(() =>
        Tokenizer.FromHuggingFace(Golden.File("tokenizer", n, "tokenizer.json")!, Golden.File("tokenizer", n, "tokenizer_config.json")))).Value;

    internal static JsonElement CasesFile(string name) =>
        CaseFiles.GetOrAdd(name, n => JsonDocument.Parse(File.ReadAllText(Golden.File("tokenizer", n, "cases.json")!))).RootElement;

    static JsonElement Case(string name, string id) => CasesFile(name).GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static IEnumerable<object[]> Cases() => Enumerate("cases");
    public static IEnumerable<object[]> Chats() => Enumerate("chats");

    static IEnumerable<object[]> Enumerate(string list)
    {
        if (Golden.Root is null) { yield return ["none", "none"]; yield break; }
        foreach (var name in Names)
            foreach (var c in CasesFile(name).GetProperty(list).EnumerateArray())
                yield return [name, c.GetProperty("id").GetString()!];
    }

    [GoldenTheory]
    [MemberData(nameof(Cases))]
    public void EncodeAndDecodeMatchReference(string tokenizer, string caseId)
    {
        var t = Load(tokenizer);
        var c = Case(tokenizer, caseId);
        var text = c.GetProperty("text").GetString()!;
        var ids = Ints(c.GetProperty("ids"));
        var withSpecial = Ints(c.GetProperty("ids_with_special"));

        Assert.Equal(ids, t.Encode(text, addSpecialTokens: false));
        Assert.Equal(withSpecial, t.Encode(text, addSpecialTokens: true));
        Assert.Equal(c.GetProperty("decoded").GetString(), t.Decode(ids, skipSpecialTokens: false));
        Assert.Equal(c.GetProperty("decoded_skip_special").GetString(), t.Decode(ids, skipSpecialTokens: true));
        Assert.Equal(c.GetProperty("decoded_with_special").GetString(), t.Decode(withSpecial, skipSpecialTokens: false));
        Assert.Equal(c.GetProperty("decoded_with_special_skip_special").GetString(), t.Decode(withSpecial, skipSpecialTokens: true));
        var tokens = c.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()).ToArray();
        Assert.Equal(tokens, ids.Select(t.TokenText).ToArray());
    }

    [GoldenTheory]
    [MemberData(nameof(Cases))]
    public void SinglePieceDecodesMatchReference(string tokenizer, string caseId)
    {
        var t = Load(tokenizer);
        var c = Case(tokenizer, caseId);
        var ids = Ints(c.GetProperty("ids"));
        var pieces = c.GetProperty("piece_decodes").EnumerateArray().Select(x => x.GetString()).ToArray();
        Assert.Equal(pieces, ids.Select(id => t.Decode([id])).ToArray());
    }

    [GoldenTheory]
    [MemberData(nameof(Cases))]
    public void StreamingDetokenizerNeverEmitsBrokenCharacters(string tokenizer, string caseId)
    {
        var t = Load(tokenizer);
        var c = Case(tokenizer, caseId);
        var ids = Ints(c.GetProperty("ids_with_special"));
        foreach (var skip in new[] { false, true })
        {
            var expected = t.Decode(ids, skip);
            var stream = t.CreateDetokenizer(skip);
            var chunks = ids.Select(stream.Push).ToList();
            chunks.Add(stream.Flush());
            Assert.Equal(expected, string.Concat(chunks));
            // Every chunk is whole characters, and no U+FFFD appears that the full decode lacks.
            foreach (var chunk in chunks)
                for (int i = 0; i < chunk.Length; i++)
                    if (char.IsHighSurrogate(chunk[i])) Assert.True(i + 1 < chunk.Length && char.IsLowSurrogate(chunk[++i]), $"split surrogate pair in '{chunk}'");
                    else Assert.False(char.IsLowSurrogate(chunk[i]), $"lone low surrogate in '{chunk}'");
            Assert.Equal(expected.Count(ch => ch == '\uFFFD'), chunks.Sum(ch => ch.Count(x => x == '\uFFFD')));
        }
    }

    [GoldenTheory]
    [MemberData(nameof(Chats))]
    public void ChatPromptsEncodeToReferenceIds(string tokenizer, string chatId)
    {
        var t = Load(tokenizer);
        var chat = CasesFile(tokenizer).GetProperty("chats").EnumerateArray().Single(c => c.GetProperty("id").GetString() == chatId);
        Assert.Equal(Ints(chat.GetProperty("ids")), t.Encode(chat.GetProperty("prompt").GetString()!, addSpecialTokens: false));
    }

    [GoldenFact]
    public void SpecialTokenPropertiesFollowConfig()
    {
        var ds = Load("deepseek-v3");
        Assert.Equal(0, ds.BosId);
        Assert.Equal([1], ds.EosIds);
        Assert.True(ds.AddBos);
        Assert.False(ds.AddEos);
        Assert.Equal(1, ds.PadId);
        Assert.Equal(128815, ds.VocabSize);
        Assert.Equal("<｜User｜>", ds.TokenText(128803));
        Assert.True(ds.IsSpecial(0));
        Assert.False(ds.IsSpecial(128803));
        Assert.StartsWith("{% if not add_generation_prompt", ds.ChatTemplate);

        var qw = Load("qwen3");
        Assert.Null(qw.BosId);
        Assert.Equal([151645], qw.EosIds);
        Assert.False(qw.AddBos);
        Assert.Equal(151643, qw.PadId);
        Assert.Equal(151669, qw.VocabSize);
        Assert.NotNull(qw.ChatTemplate);
    }
}
