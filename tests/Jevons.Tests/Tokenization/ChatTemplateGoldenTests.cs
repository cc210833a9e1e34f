using System.Text.Json;
using Jevons.Tests.Support;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

/// <summary>
/// Every chat case in ../shared/golden/tokenizer/*/cases.json rendered through the model's own
/// Jinja template (tokenizer_config.json) equals Jinja2's prompt byte for byte, and encodes to the
/// reference ids.
/// </summary>
public class ChatTemplateGoldenTests
{
    public static IEnumerable<object[]> Chats()
    {
        if (Golden.Root is null) { yield return ["none", "none"]; yield break; }
        foreach (var dir in Directory.GetDirectories(Path.Combine(Golden.Root, "tokenizer")).Order(StringComparer.Ordinal))
        {
            var cases = Path.Combine(dir, "cases.json");
            if (!File.Exists(cases)) continue;
            using var doc = JsonDocument.Parse(File.ReadAllText(cases));
            if (!doc.RootElement.TryGetProperty("chats", out var chats)) continue;
            foreach (var c in chats.EnumerateArray()) yield return [Path.GetFileName(dir), c.GetProperty("id").GetString()!];
        }
    }

    internal static (JsonElement Chat, ChatTemplate Template) Case(string model, string id)
    {
        var chat = TokenizerGoldenTests.CasesFile(model).GetProperty("chats").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);
        var template = ChatTemplate.FromTokenizerConfig(Golden.File("tokenizer", model, "tokenizer_config.json")!)!;
        return (chat, template);
    }

    internal static string Render(ChatTemplate template, JsonElement chat)
    {
        var kwargs = new Dictionary<string, object?>();
        JsonElement? tools = null;
        if (chat.TryGetProperty("template_kwargs", out var kw))
            foreach (var p in kw.EnumerateObject())
                if (p.Name == "tools") tools = p.Value;
                else kwargs[p.Name] = p.Value;
        return template.Render(chat.GetProperty("messages"), tools, chat.GetProperty("add_generation_prompt").GetBoolean(), kwargs);
    }

    [GoldenTheory]
    [MemberData(nameof(Chats))]
    public void RendersExactlyAsJinja2(string model, string chatId)
    {
        var (chat, template) = Case(model, chatId);
        Assert.Equal(chat.GetProperty("prompt").GetString(), Render(template, chat));
    }

    [GoldenTheory]
    [MemberData(nameof(Chats))]
    public void RenderedPromptEncodesToReferenceIds(string model, string chatId)
    {
        var (chat, template) = Case(model, chatId);
        if (!chat.TryGetProperty("ids", out var ids)) return;
        var tokenizer = TokenizerGoldenTests.Load(model);
        Assert.Equal(ids.EnumerateArray().Select(x => x.GetInt32()).ToArray(), tokenizer.Encode(Render(template, chat), addSpecialTokens: false));
    }

    [GoldenFact]
    public void TokenizerCarriesTheSameTemplate()
    {
        var (chat, fromConfig) = Case("deepseek-v3", "ds_multiturn_gen");
        var fromTokenizer = ChatTemplate.For(TokenizerGoldenTests.Load("deepseek-v3"))!;
        Assert.Equal("<｜begin▁of▁sentence｜>", fromTokenizer.BosToken);
        Assert.Equal("<｜end▁of▁sentence｜>", fromTokenizer.EosToken);
        Assert.Equal(Render(fromConfig, chat), Render(fromTokenizer, chat));
    }
}
