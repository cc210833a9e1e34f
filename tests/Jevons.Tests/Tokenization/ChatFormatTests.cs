using Jevons.Tests.Support;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

public class ChatFormatTests
{
    public static IEnumerable<object[]> DeepSeekChats()
    {
        if (Golden.Root is null) { yield return ["none"]; yield break; }
        foreach (var c in TokenizerGoldenTests.CasesFile("deepseek-v3").GetProperty("chats").EnumerateArray())
            if (c.GetProperty("messages").EnumerateArray().All(m => m.GetProperty("role").GetString() != "tool" && !m.TryGetProperty("tool_calls", out _)))
                yield return [c.GetProperty("id").GetString()!];
    }

    [GoldenTheory]
    [MemberData(nameof(DeepSeekChats))]
    public void DeepSeekV3RenderingMatchesJinja(string chatId)
    {
        var t = TokenizerGoldenTests.Load("deepseek-v3");
        var chat = TokenizerGoldenTests.CasesFile("deepseek-v3").GetProperty("chats").EnumerateArray().Single(c => c.GetProperty("id").GetString() == chatId);
        var messages = chat.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToArray();
        var format = ChatFormat.For(t);
        Assert.Equal(ChatStyle.DeepSeek, format.Style);
        Assert.False(format.StripReasoning); // V3 keeps assistant content verbatim
        var prompt = format.Render(messages, chat.GetProperty("add_generation_prompt").GetBoolean());
        Assert.Equal(chat.GetProperty("prompt").GetString(), prompt);
        Assert.Equal(chat.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), t.Encode(prompt, addSpecialTokens: false));
    }

    [GoldenFact]
    public void QwenTokenizerGetsChatMl()
    {
        var format = ChatFormat.For(TokenizerGoldenTests.Load("qwen3"));
        Assert.Equal(ChatStyle.ChatMl, format.Style);
        Assert.Equal("<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", format.Render([("user", "Hello!")], true));
    }

    [Fact]
    public void R1StyleStripsPastReasoningAndOpensThinking()
    {
        var r1 = new ChatFormat(ChatStyle.DeepSeek, "<｜begin▁of▁sentence｜>") { StripReasoning = true, GenerationSuffix = "<think>\n" };
        var prompt = r1.Render([("system", "S"), ("user", "Q"), ("assistant", "<think>\nhmm\n</think>\n\nA"), ("user", "Q2")], true);
        Assert.Equal("<｜begin▁of▁sentence｜>S<｜User｜>Q<｜Assistant｜>\n\nA<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜><think>\n", prompt);
    }

    [Fact]
    public void SyntheticVocabularyPicksR1StyleAndLlama3Renders()
    {
        var t = Tokenizer.FromGguf(SyntheticVocabulary.Create(1000).ToMetadata());
        var f = ChatFormat.For(t);
        Assert.Equal(ChatStyle.DeepSeek, f.Style);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>", f.Render([("user", "hi")], true));

        var llama = new ChatFormat(ChatStyle.Llama3, "<|begin_of_text|>");
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            llama.Render([("system", "Be brief. "), ("user", "hi")], true));
    }
}
