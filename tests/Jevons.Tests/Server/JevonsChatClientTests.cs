using System.Text.Json;
using Jevons.Server;
using Microsoft.Extensions.AI;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>Microsoft.Extensions.AI's IChatClient over the engine, in process.</summary>
public sealed class JevonsChatClientTests
{
    [Fact]
    public async Task ReasoningAndAnswerComeBackAsTheirOwnContentsStreamedOrNot()
    {
        using var engine = ServerHarness.ScriptedEngine(ServerHarness.Scripted("<think>\nthe user wants two</think>\n\nthe answer is two"));
        IChatClient client = new JevonsChatClient(engine, "tiny");
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "one plus one?")], new ChatOptions { MaxOutputTokens = 64 });
        Assert.Equal("\n\nthe answer is two", response.Text);
        Assert.Equal("the user wants two", response.Messages[0].Contents.OfType<TextReasoningContent>().Single().Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("tiny", response.ModelId);
        Assert.True(response.Usage!.OutputTokenCount > 5);
        Assert.Equal(ServerHarness.ThinkTokenizer.Encode("the user wants two", addSpecialTokens: false).Length + 1, response.Usage.ReasoningTokenCount);

        var text = new System.Text.StringBuilder();
        var reasoning = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "one plus one?")]))
        {
            text.Append(u.Text);
            foreach (var r in u.Contents.OfType<TextReasoningContent>()) reasoning.Append(r.Text);
            finish ??= u.FinishReason;
        }
        Assert.Equal(response.Text, text.ToString());
        Assert.Equal("the user wants two", reasoning.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal("tiny", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }

    [Fact]
    public async Task ToolCallsAreFunctionCallContentsAndResultsGoBackThroughTheTemplate()
    {
        var runner = ServerHarness.Scripted("""<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>""");
        using var engine = ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer);
        IChatClient client = new JevonsChatClient(engine);
        var weather = AIFunctionFactory.Create((string city) => $"sunny in {city}", "get_weather", "the weather of a city");
        var options = new ChatOptions { Tools = [weather], MaxOutputTokens = 64 };
        List<ChatMessage> messages = [new(ChatRole.User, "weather in Paris?")];
        var response = await client.GetResponseAsync(messages, options);
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        var call = response.Messages[0].Contents.OfType<FunctionCallContent>().Single();
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("Paris", ((JsonElement)call.Arguments!["city"]!).GetString());
        Assert.Equal("", response.Text);

        runner.Script = ServerHarness.Tokenizer.Encode("it is sunny", addSpecialTokens: false);
        messages.AddRange(response.Messages);
        messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, "sunny, 21 C")]));
        var second = await client.GetResponseAsync(messages, options);
        Assert.Equal("it is sunny", second.Text);
        var prompt = ServerHarness.Tokenizer.Decode(runner.Prompts[^1]);
        Assert.Contains($"<tool_response>{call.CallId}=sunny, 21 C</tool_response>", prompt);
        Assert.True(prompt.Contains("<tool_call>get_weather {\"city\":\"Paris\"}</tool_call>"), prompt);
        Assert.Contains("<tools>get_weather;</tools>", prompt);
    }

    [Fact]
    public async Task AJsonSchemaResponseFormatConstrainsTheAnswer()
    {
        // The script thinks, then answers {"x": 1}, which the schema forbids: the answer is forced into it.
        using var engine = ServerHarness.ScriptedEngine(ServerHarness.Scripted("<think>\nhmm</think>{\"x\": 1}"));
        IChatClient client = new JevonsChatClient(engine, "tiny");
        const string schema = """{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"}},"required":["ok","n"],"additionalProperties":false}""";
        var format = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse(schema).RootElement, "s");
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "hi")], new ChatOptions { MaxOutputTokens = 40, Seed = 1, ResponseFormat = format });
        Assert.Equal("hmm", response.Messages[0].Contents.OfType<TextReasoningContent>().Single().Text);
        using var doc = JsonDocument.Parse(response.Text);
        Assert.True(Json.Schema.JsonSchema.FromText(schema).Evaluate(doc.RootElement).IsValid, response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        var bad = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("""{"type":"string","pattern":"a"}""").RootElement, "s");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "hi")], new ChatOptions { ResponseFormat = bad }));
        Assert.Contains("'pattern'", e.Message);
    }
}
