using System.Text.Json;
using Microsoft.Extensions.AI;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>
/// Microsoft.Extensions.AI.OpenAI: the IChatClient of the OpenAI package (a client nobody here wrote)
/// pointed at `jevons serve` over HTTP: plain and streaming responses, a tool-call round trip and a
/// typed structured-output response.
/// </summary>
public sealed class ExtensionsAiClientTests
{
    static IChatClient Client(TestServer t, string model = "tiny") => t.OpenAI().GetChatClient(model).AsIChatClient();

    [Fact]
    public async Task ResponsesStreamedOrNotCarryTheAnswerWithoutTheThinkBlock()
    {
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(ServerHarness.Scripted("<think>\nthe user wants two</think>\n\nthe answer is two")));
        var client = Client(t);
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "one plus one?")], new ChatOptions { MaxOutputTokens = 64 });
        Assert.Equal("\n\nthe answer is two", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("tiny", response.ModelId);
        Assert.StartsWith("chatcmpl-", response.ResponseId);
        int answer = ServerHarness.ThinkTokenizer.Encode("the user wants two</think>\n\nthe answer is two", addSpecialTokens: false).Length;
        Assert.Equal(answer + 1, response.Usage!.OutputTokenCount); // and the EOS
        Assert.True(response.Usage.InputTokenCount > 3);

        var text = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        int updates = 0;
        await foreach (var u in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "one plus one?")], new ChatOptions { MaxOutputTokens = 64 }))
        {
            text.Append(u.Text);
            finish ??= u.FinishReason;
            updates++;
        }
        Assert.Equal(response.Text, text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.True(updates > 3, $"{updates} updates: the answer should stream");
    }

    [Fact]
    public async Task AToolCallRoundTrip()
    {
        var runner = ServerHarness.Scripted("""<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>""");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        var client = Client(t);
        var weather = AIFunctionFactory.Create((string city) => $"sunny in {city}", "get_weather", "the weather of a city");
        var options = new ChatOptions { Tools = [weather], MaxOutputTokens = 64 };
        List<ChatMessage> messages = [new(ChatRole.User, "weather in Paris?")];
        var response = await client.GetResponseAsync(messages, options);
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
        var call = response.Messages[0].Contents.OfType<FunctionCallContent>().Single();
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("Paris", call.Arguments!["city"]?.ToString());

        // Streaming gives the same call.
        var streamedCalls = new List<FunctionCallContent>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, options)) streamedCalls.AddRange(u.Contents.OfType<FunctionCallContent>());
        Assert.Equal("get_weather", Assert.Single(streamedCalls).Name);

        // The function runs in the client and its result goes back through the server's template.
        runner.Script = ServerHarness.Tokenizer.Encode("it is sunny", addSpecialTokens: false);
        var result = await weather.InvokeAsync(new AIFunctionArguments(call.Arguments));
        messages.AddRange(response.Messages);
        messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, result)]));
        var second = await client.GetResponseAsync(messages, options);
        Assert.Equal("it is sunny", second.Text);
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        var prompt = ServerHarness.Tokenizer.Decode(runner.Prompts[^1]);
        Assert.Contains($"<tool_response>{call.CallId}=", prompt);
        Assert.Contains("sunny in Paris", prompt[prompt.IndexOf("<tool_response>")..]);
        Assert.Contains("<tool_call>get_weather", prompt);
    }

    public sealed record Person(string Name, int Age, bool Likes);

    [Fact]
    public async Task ATypedResponseFromTheRandomModelDeserializes()
    {
        // The type's JSON schema (as Microsoft.Extensions.AI writes it) goes out as response_format
        // json_schema; the tiny model's tokens are arbitrary, so only the constraint makes the answer deserialize.
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine(context: 1024));
        var client = Client(t);
        var format = ChatResponseFormat.ForJsonSchema(AIJsonUtilities.CreateJsonSchema(typeof(Person), serializerOptions: AIJsonUtilities.DefaultOptions), "Person");
        for (int seed = 0; seed < 2; seed++)
        {
            var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "someone")],
                new ChatOptions { Seed = seed, MaxOutputTokens = 120, ResponseFormat = format });
            Assert.True(ChatFinishReason.Stop == response.FinishReason, format.Schema + " -> " + response.Text);
            var person = JsonSerializer.Deserialize<Person>(response.Text, AIJsonUtilities.DefaultOptions);
            Assert.NotNull(person?.Name);
            using var doc = JsonDocument.Parse(response.Text);
            Assert.Equal(3, doc.RootElement.EnumerateObject().Count());
        }
    }
}
