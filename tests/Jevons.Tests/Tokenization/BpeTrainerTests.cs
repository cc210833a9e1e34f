using System.Text.Json;
using Jevons.Tests.Training.Tasks;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

public class BpeTrainerTests
{
    static readonly string[] Corpus =
    [
        "the quick brown fox jumps over the lazy dog", "the dog sleeps; the fox runs 12 miles",
        "What is 4821 + 377?", "Using the numbers [3, 7, 25, 50], make 82.", "the the the quick quick",
        "naïve café: déjà vu", "tabs\tand\nnewlines\n\n  indented", "<think>\nthe fox\n</think>\n\\boxed{42}",
    ];

    static Tokenizer TrainSmall(string name, int vocab = 300)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"jevons-bpe-{name}-{Environment.ProcessId}");
        return BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabSize = vocab }).SaveAndLoad(dir);
    }

    public static TheoryData<string> HeldOut() =>
    [
        "", "the fox", "  leading and trailing  ", "new\nlines\r\nand\ttabs\n\n", "What is 90210 - 12345?",
        "ünïcödé ΑΒΓ русский 中文 日本語 한국어", "emoji 🦊🐕 and 𝔘𝔫𝔦", "\u0301combining e\u0301", "zero\u200Bwidth",
        "<｜begin▁of▁sentence｜><｜User｜>What is 1 + 2?<｜Assistant｜><think>\n1+2=3\n</think>\n\\boxed{3}<｜end▁of▁sentence｜>",
        "<think<think>>", "a</think>b", "\\boxed{(50-25)*3+7}", "1234567890 ０１２ ١٢٣",
    ];

    [Theory]
    [MemberData(nameof(HeldOut))]
    public void HeldOutTextRoundTrips(string text)
    {
        var t = TrainSmall("roundtrip");
        Assert.Equal(text, t.Decode(t.Encode(text, addSpecialTokens: false)));
        Assert.Equal(text, TaskTokenizerFixture.Tokenizer.Decode(TaskTokenizerFixture.Tokenizer.Encode(text, addSpecialTokens: false)));
    }

    [Fact]
    public void DigitsAreSingleTokensAndSpecialsHaveTheirIds()
    {
        var t = TaskTokenizerFixture.Tokenizer;
        Assert.Equal("0123456789".Select(c => t.TokenId(ByteLevel.ByteToChar((byte)c).ToString())!.Value),
            t.Encode("0123456789", addSpecialTokens: false));
        foreach (var number in new[] { "4821", " 377", "(17", "=11", "c1", "→ 5198" })
            Assert.Equal(number.Count(char.IsAsciiDigit), t.Encode(number, false).Count(id => t.Decode([id]).Any(char.IsAsciiDigit)));
        string[] specials = [BpeTrainer.Bos, BpeTrainer.Eos, BpeTrainer.User, BpeTrainer.Assistant, BpeTrainer.ThinkOpen, BpeTrainer.ThinkClose];
        for (int id = 0; id < specials.Length; id++)
        {
            Assert.Equal([id], t.Encode(specials[id], addSpecialTokens: false));
            Assert.Equal(id < 4, t.IsSpecial(id));
        }
        Assert.Equal(0, t.BosId);
        Assert.Equal([1], t.EosIds);
        Assert.True(t.AddBos);
        Assert.Equal([0, 4], t.Encode("<think>", addSpecialTokens: true));
        // <think> is not special: it survives skip-special decoding and is matched even when specials are not parsed.
        Assert.Equal("<think>x</think>", t.Decode(t.Encode("<｜User｜><think>x</think><｜end▁of▁sentence｜>", false), skipSpecialTokens: true));
        Assert.Equal([4], t.Encode("<think>", false, parseSpecial: false));
        Assert.NotEqual([2], t.Encode(BpeTrainer.User, false, parseSpecial: false));
    }

    [Fact]
    public void CommonTaskWordsBecomeSingleTokens()
    {
        var t = TaskTokenizerFixture.Tokenizer;
        foreach (var word in new[] { "What", " is", "Using", " the", " numbers", " make", " Use", " each", " number", " once", " with", " yes", " no", "\\boxed" })
            Assert.True(t.Encode(word, false).Length == 1, $"'{word}' takes {t.Encode(word, false).Length} tokens");
        Assert.InRange(t.VocabSize, 300, 1024);
    }

    [Fact]
    public void TrainingIsDeterministicAndStopsAtTheVocabularySize()
    {
        var a = BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabSize = 280 });
        var b = BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabSize = 280 });
        Assert.Equal(280, a.VocabSize);
        Assert.Equal(a.TokenizerJson(), b.TokenizerJson());
        Assert.Equal(MostFrequentPair(), a.Merges[0]);
        var all = BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabSize = 100_000 });
        Assert.InRange(all.VocabSize, 263, 1000); // runs out of pairs seen twice
    }

    /// <summary>The first merge, counted by brute force: most frequent adjacent pair within pre-tokens, ties by ordinal order.</summary>
    static (string, string) MostFrequentPair()
    {
        var split = new RegexSplit(BpeTrainer.DigitSplitPattern);
        var counts = new Dictionary<(string, string), int>();
        foreach (var text in Corpus)
            foreach (var segment in text.Split(["<think>", "</think>"], StringSplitOptions.None))
                foreach (var piece in PreTokenizer.Run([split], segment))
                {
                    var s = ByteLevel.Encode(System.Text.Encoding.UTF8.GetBytes(piece));
                    for (int i = 0; i + 1 < s.Length; i++) counts[(s[i].ToString(), s[i + 1].ToString())] = counts.GetValueOrDefault((s[i].ToString(), s[i + 1].ToString())) + 1;
                }
        return counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1, StringComparer.Ordinal).ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal).First().Key;
    }

    [Fact]
    public void WritesTheHuggingFaceLayout()
    {
        var bpe = BpeTrainer.Train(Corpus, new BpeTrainerOptions { VocabSize = 280 });
        using var doc = JsonDocument.Parse(bpe.TokenizerJson());
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.False(model.GetProperty("byte_fallback").GetBoolean());
        Assert.Equal(280, model.GetProperty("vocab").EnumerateObject().Count());
        Assert.Equal(bpe.Merges.Count, model.GetProperty("merges").GetArrayLength());
        var pre = root.GetProperty("pre_tokenizer").GetProperty("pretokenizers");
        Assert.Equal("Split", pre[0].GetProperty("type").GetString());
        Assert.Equal(BpeTrainer.DigitSplitPattern, pre[0].GetProperty("pattern").GetProperty("Regex").GetString());
        Assert.Equal("ByteLevel", pre[1].GetProperty("type").GetString());
        Assert.False(pre[1].GetProperty("use_regex").GetBoolean());
        Assert.Equal("ByteLevel", root.GetProperty("decoder").GetProperty("type").GetString());
        var added = root.GetProperty("added_tokens").EnumerateArray().ToArray();
        Assert.Equal(6, added.Length);
        Assert.All(added, a => Assert.Equal(a.GetProperty("id").GetInt32(), model.GetProperty("vocab").GetProperty(a.GetProperty("content").GetString()!).GetInt32()));

        using var cfg = JsonDocument.Parse(bpe.TokenizerConfigJson());
        Assert.Equal(BpeTrainer.Bos, cfg.RootElement.GetProperty("bos_token").GetString());
        Assert.Equal(BpeTrainer.Eos, cfg.RootElement.GetProperty("eos_token").GetString());
        Assert.True(cfg.RootElement.GetProperty("add_bos_token").GetBoolean());
        Assert.Equal(BpeTrainer.ChatTemplate, cfg.RootElement.GetProperty("chat_template").GetString());
    }

    [Fact]
    public void ChatFormatOfTheTrainedTokenizerRendersWhatTheTemplateRenders()
    {
        var t = TaskTokenizerFixture.Tokenizer;
        var format = ChatFormat.For(t);
        Assert.Equal(ChatStyle.DeepSeek, format.Style);
        Assert.True(format.StripReasoning);
        Assert.Equal("<think>\n", format.GenerationSuffix);
        // Rendered from BpeTrainer.ChatTemplate by Jinja2 3.1 (bos_token set, add_generation_prompt=True).
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>What is 4821 + 377?<｜Assistant｜><think>\n",
            format.Render([new ChatMessage("user", "What is 4821 + 377?")], addGenerationPrompt: true));
        Assert.Equal("<｜begin▁of▁sentence｜>S1\n\nS2<｜User｜>Hi<｜Assistant｜>\nYo<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜><think>\n",
            format.Render(new ChatMessage[] { new("system", "S1"), new("system", "S2"), new("user", "Hi"), new("assistant", "<think>\nx\n</think>\nYo"), new("user", "Q2") }, true));
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi", format.Render([new ChatMessage("user", "Hi")], false));
    }
}
