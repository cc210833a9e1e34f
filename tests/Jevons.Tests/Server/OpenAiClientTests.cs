#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
using System.Text.Json;
using Jevons.Inference;
using OpenAI.Chat;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>The official OpenAI .NET SDK against `jevons serve` on a tiny real model.</summary>
public sealed class OpenAiClientTests
{
    /// <summary>What the engine itself generates for one user message (greedy), with the chat template applied.</summary>
    static async Task<(string Text, int PromptTokens, int Tokens)> Direct(InferenceEngine engine, string user, int maxTokens)
    {
        var tokenizer = engine.Tokenizer!;
        var prompt = Jevons.Tokenization.ChatPrompt.For(tokenizer).Render([new("user", user)], addGenerationPrompt: true);
        var ids = tokenizer.Encode(prompt, addSpecialTokens: false);
        var text = new System.Text.StringBuilder();
        int n = 0;
        await foreach (var e in engine.GenerateAsync(new GenerationRequest { Prompt = ids, MaxTokens = maxTokens, Sampling = SamplerOptions.Greedy }))
        {
            text.Append(e.Text);
            n++;
        }
        return (text.ToString(), ids.Length, n);
    }

    [Fact]
    public async Task ChatStreamingModelsAndCompletionsThroughTheSdk()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine());
        var client = t.OpenAI();
        var chat = client.GetChatClient("tiny");
        var expected = await Direct(t.Engine, "hello world", 10);
        Assert.True(expected.Text.Length > 0);

        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 10 };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("hello world")], options);
        Assert.Equal(expected.Text, completion.Content[0].Text);
        Assert.Equal(expected.PromptTokens, completion.Usage.InputTokenCount);
        Assert.Equal(expected.Tokens, completion.Usage.OutputTokenCount);
        Assert.Equal(expected.Tokens == 10 ? ChatFinishReason.Length : ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("tiny", completion.Model);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.StartsWith("chatcmpl-", completion.Id);
        // The second request reuses the prompt's full blocks from the prefix cache.
        Assert.Equal((expected.PromptTokens - 1) / 16 * 16, completion.Usage.InputTokenDetails.CachedTokenCount);

        var streamed = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var u in chat.CompleteChatStreamingAsync([new UserChatMessage("hello world")], options))
        {
            foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal(expected.Text, streamed.ToString());
        Assert.Equal(completion.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(expected.Tokens, usage!.OutputTokenCount);

        var models = (await client.GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal(["tiny"], models.Select(m => m.Id));
        Assert.Equal("jevons", models[0].OwnedBy);

        // Completions (the SDK has no legacy client): raw text in, greedy text out, the engine's own ids.
        var tokenizer = t.Engine.Tokenizer!;
        var ids = tokenizer.Encode("the model", addSpecialTokens: true);
        var direct = new System.Text.StringBuilder();
        await foreach (var e in t.Engine.GenerateAsync(new GenerationRequest { Prompt = ids, MaxTokens = 6, Sampling = SamplerOptions.Greedy, IgnoreEos = true }))
            direct.Append(e.Text);
        var (status, body, _) = await t.Post("/v1/completions", """{"model":"tiny","prompt":"the model","max_tokens":6,"temperature":0,"ignore_eos":true,"echo":true}""");
        Assert.Equal(200, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal(tokenizer.Decode(ids) + direct, body.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("length", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(6, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(ids.Length, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task SameSeedGivesTheSameTextStreamedOrNotAlsoAmongSixteenConcurrentRequests()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine(blocks: 512));
        var chat = t.OpenAI().GetChatClient("tiny");
        async Task<string> Once(int seed, bool stream)
        {
            var options = new ChatCompletionOptions { Temperature = 1.5f, TopP = 0.98f, MaxOutputTokenCount = 12, Seed = seed };
            var message = new UserChatMessage($"question {seed % 4}");
            if (!stream) return (await chat.CompleteChatAsync([message], options)).Value.Content[0].Text;
            var text = new System.Text.StringBuilder();
            await foreach (var u in chat.CompleteChatStreamingAsync([message], options))
                foreach (var part in u.ContentUpdate) text.Append(part.Text);
            return text.ToString();
        }
        var alone = new Dictionary<int, string>();
        for (int seed = 0; seed < 8; seed++) alone[seed] = await Once(seed, stream: false);
        Assert.True(alone.Values.Distinct().Count() >= 4, "different seeds should mostly give different text: " + string.Join(" | ", alone.Values));
        // 16 at once: each seed twice, once streamed and once not.
        var tasks = Enumerable.Range(0, 16).Select(i => Once(i % 8, stream: i >= 8)).ToArray();
        var together = await Task.WhenAll(tasks);
        for (int i = 0; i < 16; i++) Assert.Equal(alone[i % 8], together[i]);
        Assert.True(t.Engine.Metrics.Steps < 16 * 12, "nothing was batched");
    }

    [Fact]
    public async Task NThreeGivesThreeChoicesEachItsSeedsText()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine());
        var (status, body, _) = await t.Post("/v1/chat/completions",
            """{"model":"tiny","messages":[{"role":"user","content":"hello"}],"n":3,"seed":40,"temperature":1.8,"max_tokens":8,"ignore_eos":true}""");
        Assert.Equal(200, status);
        var choices = body.GetProperty("choices");
        Assert.Equal(3, choices.GetArrayLength());
        var texts = choices.EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()).ToArray();
        Assert.Equal([0, 1, 2], choices.EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.True(texts.Distinct().Count() >= 2, string.Join(" | ", texts));
        Assert.Equal(24, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // Choice i samples with seed + i: choice 1 of seed 40 is choice 0 of seed 41.
        var (_, single, _) = await t.Post("/v1/chat/completions",
            """{"model":"tiny","messages":[{"role":"user","content":"hello"}],"seed":41,"temperature":1.8,"max_tokens":8,"ignore_eos":true}""");
        Assert.Equal(texts[1], single.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task ToolCallsRoundTripThroughTheSdk()
    {
        var runner = ServerHarness.Scripted("""<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>""");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        var chat = t.OpenAI().GetChatClient("tiny");
        var tool = ChatTool.CreateFunctionTool("get_weather", "the weather of a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool }, MaxOutputTokenCount = 64 };
        List<ChatMessage> messages = [new UserChatMessage("weather in Paris?")];
        ChatCompletion first = await chat.CompleteChatAsync(messages, options);
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city": "Paris"}""", call.FunctionArguments.ToString());
        Assert.StartsWith("call_", call.Id);
        Assert.Empty(first.Content);

        // Streamed: the same call, its arguments arriving in pieces.
        var args = new System.Text.StringBuilder();
        string? name = null;
        int argumentUpdates = 0;
        ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var tc in u.ToolCallUpdates)
            {
                name ??= tc.FunctionName;
                if (tc.FunctionArgumentsUpdate is { } a && a.ToMemory().Length > 0) { args.Append(a.ToString()); argumentUpdates++; }
            }
            finish ??= u.FinishReason;
        }
        Assert.Equal("get_weather", name);
        Assert.Equal("""{"city": "Paris"}""", args.ToString());
        Assert.True(argumentUpdates > 1, $"{argumentUpdates} argument deltas");
        Assert.Equal(ChatFinishReason.ToolCalls, finish);

        // The tool's result goes back through the template.
        runner.Script = ServerHarness.Tokenizer.Encode("it is sunny", addSpecialTokens: false);
        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "sunny, 21 C"));
        ChatCompletion second = await chat.CompleteChatAsync(messages, options);
        Assert.Equal("it is sunny", second.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        var prompt = ServerHarness.Tokenizer.Decode(runner.Prompts[^1]);
        Assert.Contains($"<tool_response>{call.Id}=sunny, 21 C</tool_response>", prompt);
        Assert.Contains("<tool_call>get_weather {\"city\": \"Paris\"}</tool_call>", prompt);
        Assert.Contains("<tools>get_weather;</tools>", prompt);
    }

    [Fact]
    public async Task LogitBiasReachesTheSampler()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine());
        var tokenizer = t.Engine.Tokenizer!;
        int id = tokenizer.Encode(" the", addSpecialTokens: false).Single();
        var (status, body, _) = await t.Post("/v1/chat/completions",
            $$$"""{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":5,"logit_bias":{"{{{id}}}":100}}""");
        Assert.Equal(200, status);
        Assert.Equal(string.Concat(Enumerable.Repeat(" the", 5)), body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        // Banning it with -100 removes it.
        (_, body, _) = await t.Post("/v1/chat/completions",
            $$$"""{"messages":[{"role":"user","content":"hi"}],"temperature":0,"max_tokens":5,"ignore_eos":true,"logit_bias":{"{{{id}}}":-100}}""");
        Assert.DoesNotContain(" the", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task JsonObjectResponseFormatConstrainsTheOutputToJson()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine());
        var tokenizer = t.Engine.Tokenizer!;
        int close = tokenizer.Encode("}", addSpecialTokens: false).Single();
        // "}" as likely as can be: it is still only taken where JSON allows it, so the answer is an empty object.
        var (status, body, _) = await t.Post("/v1/chat/completions",
            $$$"""{"messages":[{"role":"user","content":"hi"}],"seed":3,"max_tokens":20,"response_format":{"type":"json_object"},"logit_bias":{"{{{close}}}":100}}""");
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        var content = choice.GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        using (var doc = JsonDocument.Parse(content))
        {
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            Assert.Empty(doc.RootElement.EnumerateObject());
        }
        // Free sampling: every answer opens an object, and a finished one parses.
        var plainText = (await t.Post("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}],"seed":5,"max_tokens":24}""")).Body
            .GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.False(plainText.TrimStart().StartsWith('{'), plainText);
        for (int seed = 0; seed < 4; seed++)
        {
            (_, body, _) = await t.Post("/v1/chat/completions",
                $$$"""{"messages":[{"role":"user","content":"hi"}],"seed":{{{seed}}},"max_tokens":24,"response_format":{"type":"json_object"}}""");
            choice = body.GetProperty("choices")[0];
            content = choice.GetProperty("message").GetProperty("content").GetString()!;
            Assert.StartsWith("{", content.TrimStart());
            if (choice.GetProperty("finish_reason").GetString() == "stop")
                Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(content).RootElement.ValueKind);
        }
    }
}
