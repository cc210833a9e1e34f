using System.Text.Json;
using OpenAI.Chat;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>
/// response_format json_schema through the official OpenAI .NET SDK on the tiny random-weight model:
/// its tokens are arbitrary, so only the constraint makes the output conform. Each answer is parsed
/// and validated with JsonSchema.Net.
/// </summary>
public sealed class StructuredOutputTests
{
    const string Schema = """
        {"type": "object",
         "properties": {
           "name": {"type": "string", "maxLength": 8},
           "age": {"type": "integer"},
           "color": {"enum": ["red", "green", "blue"]},
           "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 3},
           "ok": {"type": "boolean"},
           "nick": {"type": ["string", "null"], "maxLength": 5},
           "pos": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"anyOf": [{"type": "number"}, {"type": "null"}]}},
                   "required": ["x", "y"], "additionalProperties": false}
         },
         "required": ["name", "age", "color", "tags", "ok", "nick", "pos"],
         "additionalProperties": false}
        """;

    static void AssertConforms(string content)
    {
        using var doc = JsonDocument.Parse(content);
        var result = Json.Schema.JsonSchema.FromText(Schema).Evaluate(doc.RootElement);
        Assert.True(result.IsValid, content);
        Assert.Equal(7, doc.RootElement.EnumerateObject().Count());
    }

    [Fact]
    public async Task EveryAnswerParsesAndValidatesStreamedOrNot()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine(context: 1024));
        var chat = t.OpenAI().GetChatClient("tiny");
        for (int seed = 0; seed < 2; seed++)
        {
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
            var options = new ChatCompletionOptions
            {
                Seed = seed,
                MaxOutputTokenCount = 200,
                ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(Schema), jsonSchemaIsStrict: true),
            };
#pragma warning restore OPENAI001
            ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("describe someone")], options);
            Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
            var content = completion.Content[0].Text;
            AssertConforms(content);

            var streamed = new System.Text.StringBuilder();
            await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage("describe someone")], options))
                foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            Assert.Equal(content, streamed.ToString());
        }
    }

    [Fact]
    public async Task UnboundedStringsStillCloseWithinMaxTokens()
    {
        // The random model would write the string forever; the document closes, with its EOS, by max_tokens.
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine());
        const string schema = """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}""";
        foreach (int max in new[] { 20, 64 })
        {
            var (status, body, _) = await t.Post("/v1/chat/completions",
                """{"messages":[{"role":"user","content":"someone"}],"seed":4,"n":2,"max_tokens":""" + max + ""","response_format":{"type":"json_schema","json_schema":{"name":"p","schema":""" + schema + "}}}");
            Assert.Equal(200, status);
            Assert.True(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32() <= 2 * max);
            // Each choice has its own constraint.
            foreach (var choice in body.GetProperty("choices").EnumerateArray())
            {
                Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
                var content = choice.GetProperty("message").GetProperty("content").GetString()!;
                using var doc = JsonDocument.Parse(content);
                Assert.True(Json.Schema.JsonSchema.FromText(schema).Evaluate(doc.RootElement).IsValid, content);
            }
        }
    }

    [Fact]
    public async Task WithoutTheConstraintTheSameModelWritesNoJson()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine());
        var (status, body, _) = await t.Post("/v1/chat/completions",
            """{"messages":[{"role":"user","content":"describe someone"}],"seed":1,"max_tokens":40}""");
        Assert.Equal(200, status);
        var content = body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(content));
    }

    [Fact]
    public async Task TheThinkBlockIsFreeAndTheAnswerFollowsTheSchema()
    {
        // A model that thinks, then answers with JSON that breaks the schema ("x" is not allowed):
        // the reasoning comes through unchanged, the answer is forced into the schema.
        var runner = ServerHarness.Scripted("<think>\nlet me see</think>{\"x\": 1}");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner));
        const string schema = """{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false}""";
        var (status, body, _) = await t.Post("/v1/chat/completions",
            """{"messages":[{"role":"user","content":"hi"}],"seed":2,"max_tokens":60,"response_format":{"type":"json_schema","json_schema":{"name":"s","strict":true,"schema":""" + schema + "}}}");
        Assert.Equal(200, status);
        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("let me see", message.GetProperty("reasoning_content").GetString());
        var content = message.GetProperty("content").GetString()!;
        using var doc = JsonDocument.Parse(content);
        Assert.True(Json.Schema.JsonSchema.FromText(schema).Evaluate(doc.RootElement).IsValid, content);
        Assert.Equal("stop", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }
}
