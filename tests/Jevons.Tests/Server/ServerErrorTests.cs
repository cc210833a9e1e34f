using System.Net;
using System.Text;
using System.Text.Json;
using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>Refused requests get OpenAI error JSON with the right status, and the server keeps serving.</summary>
public sealed class ServerErrorTests
{
    const string Msg = """ "messages":[{"role":"user","content":"hi"}] """;

    /// <summary>(path, body, status, param or null, a fragment of the message).</summary>
    public static readonly (string Path, string Body, int Status, string? Param, string Message)[] BadRequests =
    [
        ("/v1/chat/completions", """{"messages": [""", 400, null, "not valid JSON"),
        ("/v1/chat/completions", """[1, 2]""", 400, null, "must be a JSON object"),
        ("/v1/chat/completions", "", 400, null, "body is empty"),
        ("/v1/chat/completions", """{"model":"tiny"}""", 400, "messages", "messages is required"),
        ("/v1/chat/completions", """{"messages":[]}""", 400, "messages", "at least one message"),
        ("/v1/chat/completions", """{"messages":"hi"}""", 400, "messages", "must be an array"),
        ("/v1/chat/completions", """{"messages":[42]}""", 400, "messages[0]", "must be an object"),
        ("/v1/chat/completions", """{"messages":[{"content":"hi"}]}""", 400, "messages[0].role", "role is required"),
        ("/v1/chat/completions", """{"messages":[{"role":"wizard","content":"hi"}]}""", 400, "messages[0].role", "'wizard' is not one of"),
        ("/v1/chat/completions", """{"messages":[{"role":"user","content":7}]}""", 400, "messages[0].content", "must be a string or an array"),
        ("/v1/chat/completions", """{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", 400, "messages[0].content", "'image_url' is not supported"),
        ("/v1/chat/completions", """{"messages":[{"role":"tool","content":"r"}]}""", 400, "messages[0].tool_call_id", "tool_call_id is required"),
        ("/v1/chat/completions", "{" + Msg + ""","temperature":-0.5}""", 400, "temperature", "temperature is -0.5; it must be between 0 and 2"),
        ("/v1/chat/completions", "{" + Msg + ""","temperature":2.5}""", 400, "temperature", "between 0 and 2"),
        ("/v1/chat/completions", "{" + Msg + ""","temperature":"hot"}""", 400, "temperature", "wrong type"),
        ("/v1/chat/completions", "{" + Msg + ""","top_p":0}""", 400, "top_p", "in (0, 1]"),
        ("/v1/chat/completions", "{" + Msg + ""","top_p":1.5}""", 400, "top_p", "in (0, 1]"),
        ("/v1/chat/completions", "{" + Msg + ""","n":0}""", 400, "n", "n is 0; it must be between 1 and 16"),
        ("/v1/chat/completions", "{" + Msg + ""","n":17}""", 400, "n", "between 1 and 16"),
        ("/v1/chat/completions", "{" + Msg + ""","max_tokens":-5}""", 400, "max_tokens", "max_tokens is -5; it must be >= 1"),
        ("/v1/chat/completions", "{" + Msg + ""","max_tokens":1000000000000}""", 400, "max_tokens", "context length is 1024 tokens; the prompt has"),
        ("/v1/chat/completions", "{" + Msg + ""","max_completion_tokens":1023}""", 400, "max_completion_tokens", "(1027 in all)"),
        ("/v1/chat/completions", "{" + Msg + ""","stop":5}""", 400, "stop", "stop must be a string or an array"),
        ("/v1/chat/completions", "{" + Msg + ""","stop":["ok", 3]}""", 400, "stop", "non-empty strings"),
        ("/v1/chat/completions", "{" + Msg + ""","tools":{"type":"function"}}""", 400, "tools", "tools must be an array"),
        ("/v1/chat/completions", "{" + Msg + ""","tools":[{"type":"function","function":{"description":"x"}}]}""", 400, "tools[0].function.name", "name is required"),
        ("/v1/chat/completions", "{" + Msg + ""","tools":[{"type":"retrieval"}]}""", 400, "tools[0].type", "must be \"function\""),
        ("/v1/chat/completions", "{" + Msg + ""","tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}""", 400, "tools[0].function.parameters", "JSON Schema object"),
        ("/v1/chat/completions", "{" + Msg + ""","tool_choice":"sometimes"}""", 400, "tool_choice", "'sometimes' is not one of"),
        ("/v1/chat/completions", "{" + Msg + ""","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}""", 400, "tool_choice", "'g', which is not in tools"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"xml"}}""", 400, "response_format.type", "'xml' is not one of"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema"}}""", 400, "response_format.json_schema", "needs {\"json_schema\""),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema","json_schema":{"name":"a b","schema":{}}}}""", 400, "response_format.json_schema.name", "letters, digits"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema","json_schema":{"name":"x","strict":"yes"}}}""", 400, "response_format.json_schema.strict", "must be a boolean"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":[1]}}}""", 400, "response_format.json_schema.schema", "JSON Schema object"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"e":{"type":"string","format":"email"}}}}}}""", 400,
            "response_format.json_schema.schema.properties.e.format", "the keyword 'format' is not supported"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}}""", 400,
            "response_format.json_schema.schema.additionalProperties", "strict mode needs additionalProperties: false"),
        ("/v1/chat/completions", "{" + Msg + ""","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array","minItems":-1}}}}""", 400,
            "response_format.json_schema.schema.minItems", "non-negative integer"),
        ("/v1/chat/completions", "{" + Msg + ""","logit_bias":{"abc":1}}""", 400, "logit_bias", "'abc' is not a token id"),
        ("/v1/chat/completions", "{" + Msg + ""","logit_bias":{"5":300}}""", 400, "logit_bias[5]", "between -100 and 100"),
        ("/v1/chat/completions", "{" + Msg + ""","logprobs":true,"top_logprobs":30}""", 400, "top_logprobs", "between 0 and 20"),
        ("/v1/chat/completions", "{" + Msg + ""","top_logprobs":3}""", 400, "top_logprobs", "needs logprobs: true"),
        ("/v1/chat/completions", "{" + Msg + ""","presence_penalty":5}""", 400, "presence_penalty", "between -2 and 2"),
        ("/v1/chat/completions", "{" + Msg + ""","reasoning_effort":"extreme"}""", 400, "reasoning_effort", "'extreme' is not one of low, medium, high"),
        ("/v1/chat/completions", "{" + Msg + ""","max_reasoning_tokens":-1}""", 400, "max_reasoning_tokens", ">= 0"),
        ("/v1/chat/completions", "{" + Msg + ""","stream":"yes"}""", 400, "stream", "wrong type"),
        ("/v1/chat/completions", "{" + Msg + ""","seed":"abc"}""", 400, "seed", "wrong type"),
        ("/v1/chat/completions", "{" + Msg + ""","model":"gpt-4o"}""", 404, "model", "'gpt-4o' does not exist"),
        ("/v1/completions", """{"model":"tiny"}""", 400, "prompt", "prompt is required"),
        ("/v1/completions", """{"prompt":{"text":"x"}}""", 400, "prompt", "a string or an array of token ids"),
        ("/v1/completions", """{"prompt":[1, 999999]}""", 400, "prompt", "999999 is not a token id"),
        ("/v1/completions", """{"prompt":"hi","suffix":"end"}""", 400, "suffix", "suffix is not supported"),
        ("/tokenize", """{"add_special":true}""", 400, "content", "content (or prompt) is required"),
        ("/detokenize", """{"tokens":[1,-4]}""", 400, "tokens", "token id -4 is out of vocabulary"),
        ("/v1/nothing", "{}", 404, null, "no route for POST /v1/nothing"),
    ];

    [Fact]
    public async Task EachBadRequestGetsItsStatusAndErrorJsonAndTheServerGoesOn()
    {
        Assert.True(BadRequests.Length >= 25);
        var runner = ServerHarness.Scripted("fine thanks");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        foreach (var (path, json, status, param, message) in BadRequests)
        {
            var (code, body, response) = await t.Post(path, json);
            var what = $"{path} {json} -> {code} {body}";
            Assert.True(status == code, what);
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            var error = body.GetProperty("error");
            Assert.True(error.GetProperty("message").GetString()!.Contains(message, StringComparison.Ordinal), what);
            Assert.Equal(status == 404 ? "invalid_request_error" : "invalid_request_error", error.GetProperty("type").GetString());
            Assert.True(error.TryGetProperty("code", out _), what);
            var p = error.GetProperty("param");
            Assert.True(param is null ? p.ValueKind == JsonValueKind.Null : p.GetString() == param, what);
        }
        var (ok, good, _) = await t.Post("/v1/chat/completions", "{" + Msg + "}");
        Assert.Equal(200, ok);
        Assert.Equal("fine thanks", good.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(0, t.Engine.Metrics.Running + t.Engine.Metrics.Waiting);
        var (_, tokens, _) = await t.Post("/tokenize", """{"content":"fine thanks","add_special":false}""");
        var ids = tokens.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(ServerHarness.Tokenizer.Encode("fine thanks", addSpecialTokens: false), ids);
        var (_, text, _) = await t.Post("/detokenize", JsonSerializer.Serialize(new { tokens = ids }));
        Assert.Equal("fine thanks", text.GetProperty("content").GetString());
    }

    [Fact]
    public async Task ApiKeyIsRequiredAsABearerTokenExceptForHealth()
    {
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(ServerHarness.Scripted("yes"), ServerHarness.Tokenizer),
            new ServerOptions { ApiKey = "sk-local-123" });
        foreach (var key in new string?[] { null, "sk-local-12", "sk-local-1234", "wrong" })
        {
            var (code, body, _) = await t.Post("/v1/chat/completions", "{" + Msg + "}", key);
            Assert.Equal(401, code);
            Assert.Equal("authentication_error", body.GetProperty("error").GetProperty("type").GetString());
            Assert.Equal("invalid_api_key", body.GetProperty("error").GetProperty("code").GetString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await t.Http.GetAsync("/v1/models")).StatusCode);
        Assert.Equal("""{"status":"ok"}""", await t.Http.GetStringAsync("/health"));
        var (ok, good, _) = await t.Post("/v1/chat/completions", "{" + Msg + "}", "sk-local-123");
        Assert.Equal(200, ok);
        Assert.Equal("yes", good.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        // The SDK sends the key as a bearer token.
        var sdk = await t.OpenAI("sk-local-123").GetChatClient("tiny").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")]);
        Assert.Equal("yes", sdk.Value.Content[0].Text);
        await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() => t.OpenAI("nope").GetChatClient("tiny").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")]));
    }

    [Fact]
    public async Task AHugeBodyIs413AndAFullQueueIs429WithRetryAfter()
    {
        var runner = ServerHarness.Scripted("done");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer),
            new ServerOptions { MaxBodyBytes = 4096, MaxQueue = 1 });
        var huge = "{" + Msg + ""","user":" """ + new string('x', 10000) + "\"}";
        var (code, body, _) = await t.Post("/v1/chat/completions", huge);
        Assert.Equal(413, code);
        Assert.Contains("the limit is 4096", body.GetProperty("error").GetProperty("message").GetString());

        runner.Gate.Reset();
        var first = t.Post("/v1/chat/completions", "{" + Msg + "}");
        Assert.True(await Eventually(async () => (await t.MetricsText()).Contains("jevons:http_requests_generating{model_name=\"tiny\"} 1")));
        var (busy, error, response) = await t.Post("/v1/chat/completions", "{" + Msg + "}");
        Assert.Equal(429, busy);
        Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        Assert.Equal("queue_full", error.GetProperty("error").GetProperty("code").GetString());
        runner.Gate.Set();
        var (done, ok, _) = await first;
        Assert.Equal(200, done);
        Assert.Equal("done", ok.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(200, (await t.Post("/v1/chat/completions", "{" + Msg + "}")).Status);
    }

    [Fact]
    public async Task ARequestPastTheWholeKvPoolIsA400NamingTheFieldAndNoMaxTokensFitsThePool()
    {
        // 4 blocks of 16: one request may have 65 prompt + max tokens (the last sampled token needs no KV); the context is 1024.
        var runner = ServerHarness.Scripted("fine thanks", blocks: 4);
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        Assert.Equal(65, t.Engine.PoolRequestTokens);
        var (code, body, _) = await t.Post("/v1/chat/completions", "{" + Msg + ""","max_tokens":100}""");
        Assert.Equal(400, code);
        var error = body.GetProperty("error");
        Assert.Equal("max_tokens", error.GetProperty("param").GetString());
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("the KV cache holds 65 tokens for one request (--kv-budget)", error.GetProperty("message").GetString());
        (code, body, _) = await t.Post("/v1/completions", """{"prompt":"hi","max_tokens":70}""");
        Assert.Equal(400, code);
        Assert.Equal("max_tokens", body.GetProperty("error").GetProperty("param").GetString());
        var longPrompt = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = string.Concat(Enumerable.Repeat("word ", 80)) } } });
        (code, body, _) = await t.Post("/v1/chat/completions", longPrompt);
        Assert.Equal(400, code);
        Assert.Equal("messages", body.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("which leaves no room to generate", body.GetProperty("error").GetProperty("message").GetString());

        // No max_tokens: what the pool leaves, not the context's 1024 − prompt (which could never be scheduled).
        var (ok, good, _) = await t.Post("/v1/chat/completions", "{" + Msg + "}");
        Assert.Equal(200, ok);
        Assert.Equal("fine thanks", good.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(0, t.Engine.Metrics.KvBlocksUsed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AClientThatDisconnectsFreesItsBlocks(bool duringPrefill)
    {
        var runner = ServerHarness.Scripted(string.Join(" ", Enumerable.Repeat("step", 400)), blocks: 128);
        runner.StepDelay = TimeSpan.FromMilliseconds(3);
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        int baseline = t.Engine.Metrics.KvBlocksUsed;
        Assert.Equal(0, baseline);
        // A client of its own that drops the connection instead of draining the rest of the response.
        using (var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = t.Address })
        using (var cancel = new CancellationTokenSource())
        {
            if (duringPrefill) runner.Gate.Reset();
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            { Content = new StringContent("{" + Msg + ""","stream":true}""", Encoding.UTF8, "application/json") };
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            var stream = await response.Content.ReadAsStreamAsync(cancel.Token);
            var reader = new StreamReader(stream);
            if (!duringPrefill)
                for (int lines = 0; lines < 12;) if ((await reader.ReadLineAsync(cancel.Token))?.Length > 0) lines++;
            // Prefill: the engine is inside its first step (held at the gate); decode: tokens are streaming.
            Assert.True(await Eventually(async () => { await Task.Yield(); return duringPrefill ? runner.Entered > 0 : t.Engine.Metrics.KvBlocksUsed > 0; }));
            cancel.Cancel();
            response.Dispose();
            client.Dispose();
            if (duringPrefill) { await Task.Delay(50); runner.Gate.Set(); }
        }
        const string aborted = "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"abort\"} 1";
        Assert.True(await Eventually(async () => { var m = t.Engine.Metrics; return m.Running == 0 && m.Steps > 0 && m.KvBlocksUsed == baseline && (await t.MetricsText()).Contains(aborted); }),
            $"{t.Engine.Metrics}");
        Assert.True(t.Engine.Metrics.GenerationTokens < 400);
        var metrics = await t.MetricsText();
        Assert.Contains("vllm:kv_cache_usage_perc{model_name=\"tiny\"} 0", metrics);
        Assert.Contains("vllm:num_requests_running{model_name=\"tiny\"} 0", metrics);
        Assert.Equal(200, (await t.Post("/v1/chat/completions", "{" + Msg + ""","max_tokens":3}""")).Status);
    }

    internal static async Task<bool> Eventually(Func<Task<bool>> condition)
    {
        for (int i = 0; i < 300; i++)
        {
            if (await condition()) return true;
            await Task.Delay(20);
        }
        return await condition();
    }
}
