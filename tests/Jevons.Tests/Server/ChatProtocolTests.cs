using System.Text.Json;
using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>JSON bodies and SSE framing of /v1/chat/completions with exact text from a scripted runner.</summary>
public sealed class ChatProtocolTests
{
    const string Think = "<think>\nthe user wants two</think>\n\nthe answer is two";

    static string Chat(string extra = "", string user = "what is one plus one?") =>
        $$"""{"model":"tiny","messages":[{"role":"user","content":"{{user}}"}]{{extra}}}""";

    static string Concat(IEnumerable<JsonElement> frames, string field) => string.Concat(frames
        .Where(f => f.GetProperty("choices").GetArrayLength() > 0)
        .Select(f => f.GetProperty("choices")[0].GetProperty("delta"))
        .Select(d => d.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : ""));

    [Fact]
    public async Task ReasoningGoesToReasoningContentStreamedOrNotAndUsageIsDeepSeeks()
    {
        var tokenizer = ServerHarness.ThinkTokenizer;
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(ServerHarness.Scripted(Think)));
        var (status, body, _) = await t.Post("/v1/chat/completions", Chat());
        Assert.Equal(200, status);
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("the user wants two", message.GetProperty("reasoning_content").GetString());
        Assert.Equal("the user wants two", message.GetProperty("reasoning").GetString());
        Assert.Equal("\n\nthe answer is two", message.GetProperty("content").GetString());
        Assert.Equal("stop", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var usage = body.GetProperty("usage");
        int generated = tokenizer.Encode(Think, addSpecialTokens: false).Length - 2; // the prompt holds "<think>\n"
        Assert.Equal(generated + 1, usage.GetProperty("completion_tokens").GetInt32()); // + EOS
        int prompt = usage.GetProperty("prompt_tokens").GetInt32();
        Assert.Equal(prompt + generated + 1, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(tokenizer.Encode("the user wants two", addSpecialTokens: false).Length + 1, // + </think>
            usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("prompt_cache_hit_tokens").GetInt32());
        Assert.Equal(prompt, usage.GetProperty("prompt_cache_miss_tokens").GetInt32());

        var frames = TestServer.Frames(await t.Stream("/v1/chat/completions", Chat(""","stream":true,"stream_options":{"include_usage":true}""")));
        Assert.All(frames, f => Assert.Equal("chat.completion.chunk", f.GetProperty("object").GetString()));
        Assert.Single(frames.Select(f => f.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", frames[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("the user wants two", Concat(frames, "reasoning_content"));
        Assert.Equal("the user wants two", Concat(frames, "reasoning"));
        Assert.Equal("\n\nthe answer is two", Concat(frames, "content"));
        var choiceFrames = frames.Where(f => f.GetProperty("choices").GetArrayLength() > 0).ToList();
        Assert.Equal("stop", choiceFrames[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.All(choiceFrames[..^1], f => Assert.Equal(JsonValueKind.Null, f.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
        Assert.All(choiceFrames, f => Assert.Equal(JsonValueKind.Null, f.GetProperty("choices")[0].GetProperty("logprobs").ValueKind));
        // No delta carries a think tag.
        Assert.DoesNotContain(choiceFrames, f => f.GetProperty("choices")[0].GetProperty("delta").ToString().Contains("think>"));
        var last = frames[^1];
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        var streamedUsage = last.GetProperty("usage");
        Assert.Equal(generated + 1, streamedUsage.GetProperty("completion_tokens").GetInt32());
        // The second identical request: its full prompt blocks came from the prefix cache.
        int hit = streamedUsage.GetProperty("prompt_cache_hit_tokens").GetInt32();
        Assert.Equal(prompt / 16 * 16 - (prompt % 16 == 0 ? 16 : 0), hit);
        Assert.Equal(hit, streamedUsage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(prompt - hit, streamedUsage.GetProperty("prompt_cache_miss_tokens").GetInt32());
    }

    [Fact]
    public async Task WithoutAPrefilledThinkTheModelsOwnThinkBlockIsSplitAndPlainTextIsContent()
    {
        var runner = ServerHarness.Scripted("<think>hmm</think>ok then");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        var (_, body, _) = await t.Post("/v1/chat/completions", Chat());
        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("hmm", message.GetProperty("reasoning_content").GetString());
        Assert.Equal("ok then", message.GetProperty("content").GetString());

        runner.Script = ServerHarness.Tokenizer.Encode("just an answer", addSpecialTokens: false);
        (_, body, _) = await t.Post("/v1/chat/completions", Chat());
        message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("just an answer", message.GetProperty("content").GetString());
        Assert.False(message.TryGetProperty("reasoning_content", out _));
        Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
    }

    [Fact]
    public async Task ThinkingBudgetForcesTheCloseTagAndTheModelAnswers()
    {
        var script = "<think>\n" + string.Join(" ", Enumerable.Repeat("step", 300)) + "</think>\nanswer two";
        var runner = ServerHarness.Scripted(script, blocks: 512);
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner));
        var (status, body, _) = await t.Post("/v1/chat/completions", Chat(""","max_reasoning_tokens":5"""));
        Assert.Equal(200, status);
        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("step step step step step", message.GetProperty("reasoning_content").GetString());
        Assert.Equal("\nanswer two", message.GetProperty("content").GetString());
        Assert.Equal(6, body.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());

        var frames = TestServer.Frames(await t.Stream("/v1/chat/completions", Chat(""","reasoning_effort":"low","stream":true,"stream_options":{"include_usage":true}""")));
        Assert.Equal(string.Join(" ", Enumerable.Repeat("step", RequestMapping.ReasoningEffortTokens["low"])), Concat(frames, "reasoning_content"));
        Assert.Equal("\nanswer two", Concat(frames, "content"));
        Assert.Equal(257, frames[^1].GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
    }

    [Fact]
    public async Task ReasoningContentSentBackIsDroppedFromThePromptAndPartsAreJoined()
    {
        var runner = ServerHarness.Scripted("fine");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        var (status, _, _) = await t.Post("/v1/chat/completions", """
            {"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"one "},{"type":"text","text":"two"}]},
             {"role":"assistant","content":"three","reasoning_content":"SECRET"},{"role":"user","content":"four"}],"max_tokens":4,"user":"u1","unknown_field":{"x":1}}
            """);
        Assert.Equal(200, status);
        var prompt = ServerHarness.Tokenizer.Decode(runner.Prompts[^1]);
        Assert.Equal("<｜begin▁of▁sentence｜>be brief<｜User｜>one two<｜Assistant｜>three<｜end▁of▁sentence｜><｜User｜>four<｜Assistant｜>", prompt);
    }

    [Fact]
    public async Task LogprobsAndStopStringsAndKeepAliveComments()
    {
        var runner = ServerHarness.Scripted("alpha beta gamma delta");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer),
            new ServerOptions { KeepAlive = TimeSpan.FromMilliseconds(30) });
        var (_, body, _) = await t.Post("/v1/chat/completions", Chat(""","logprobs":true,"top_logprobs":2,"stop":[" gamma"]"""));
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("alpha beta", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        var content = choice.GetProperty("logprobs").GetProperty("content");
        var ids = ServerHarness.Tokenizer.Encode("alpha beta gamma", addSpecialTokens: false);
        Assert.Equal(ids.Select(id => ServerHarness.Tokenizer.Decode([id])), content.EnumerateArray().Select(e => e.GetProperty("token").GetString()));
        var first = content[0];
        // One-hot logits with margin 30: the chosen token has logprob ~ -vocab·e^-30, the runner-up ~ -30.
        Assert.InRange(first.GetProperty("logprob").GetSingle(), -1e-5f, 0f);
        Assert.Equal(2, first.GetProperty("top_logprobs").GetArrayLength());
        Assert.InRange(first.GetProperty("top_logprobs")[1].GetProperty("logprob").GetSingle(), -30.1f, -29.9f);

        runner.Gate.Reset();
        var pending = t.Stream("/v1/chat/completions", Chat(""","stream":true"""));
        await Task.Delay(200);
        runner.Gate.Set();
        var sse = await pending;
        Assert.Contains(": keep-alive\n\n", sse);
        var firstText = System.Text.RegularExpressions.Regex.Match(sse, "\"content\":\"[^\"]");
        Assert.True(firstText.Success && sse.IndexOf(": keep-alive", StringComparison.Ordinal) < firstText.Index, sse);
        Assert.Equal("alpha beta gamma delta", Concat(TestServer.Frames(sse), "content"));
    }
}
