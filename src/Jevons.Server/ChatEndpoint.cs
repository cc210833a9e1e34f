using System.Text.Json;
using Jevons.Inference;
using Microsoft.AspNetCore.Http;

namespace Jevons.Server;

/// <summary>POST /v1/chat/completions: the model's chat template, reasoning split, tool calls, stream or not.</summary>
static class ChatEndpoint
{
    public static async Task Handle(JevonsServer s, HttpContext c)
    {
        var r = await s.ReadBody(c, ProtocolJson.Default.ChatCompletionRequest);
        var served = s.Find(r.Model);
        using var messages = RequestMapping.Messages(r.Messages, out var plain);
        var toolNames = RequestMapping.Tools(r.Tools);
        bool parseTools = RequestMapping.ToolChoice(r.ToolChoice, toolNames);
        var schema = RequestMapping.ResponseFormat(r.ResponseFormat);
        // A constrained answer is the JSON document: no tool calls are parsed out of it.
        if (schema is not null) parseTools = false;
        int n = RequestMapping.Choices(r.N);
        using var lease = await served.Acquire(c.RequestAborted);
        var m = lease.Model;
        var tokenizer = m.Tokenizer;
        var sampling = RequestMapping.Sampling(r, tokenizer.VocabSize);
        if (r.TopLogprobs is int tl && (tl < 0 || tl > 20)) RequestMapping.Range("top_logprobs", tl, "between 0 and 20");
        if (r.TopLogprobs is not null && r.Logprobs != true) ApiException.BadRequest("top_logprobs needs logprobs: true", "top_logprobs");
        int? budget = RequestMapping.ReasoningBudget(r.ReasoningEffort, r.MaxReasoningTokens);
        var stop = RequestMapping.Stop(r.Stop);

        string prompt;
        try
        {
            bool hasTools = r.Tools.ValueKind == JsonValueKind.Array;
            prompt = m.Chat.Template is { } template
                ? template.Render(messages.RootElement, hasTools ? r.Tools : null, addGenerationPrompt: true)
                : m.Chat.Fallback.Render(plain, addGenerationPrompt: true);
        }
        catch (JevonsException e)
        {
            throw new ApiException(400, "the chat template refused these messages: " + e.Message, "invalid_request_error", "messages");
        }
        s.LogPrompt("prompt", prompt);
        var ids = tokenizer.Encode(prompt, addSpecialTokens: false);
        bool maxCompletion = r.MaxCompletionTokens is not null;
        int maxTokens = RequestMapping.MaxTokens(r.MaxCompletionTokens ?? r.MaxTokens, maxCompletion ? "max_completion_tokens" : "max_tokens",
            ids.Length, m.ContextLength, m.Engine.PoolRequestTokens);
        bool opens = ReasoningParser.PromptOpensReasoning(prompt);
        var request = new GenerationRequest
        {
            Prompt = ids,
            N = n,
            MaxTokens = maxTokens,
            Sampling = sampling,
            StopSequences = stop,
            IgnoreEos = r.IgnoreEos ?? false,
            // Tool-call markers of DeepSeek are special tokens: keep them in the text for the parser.
            SkipSpecialTokens = !parseTools,
            TopLogprobs = r.Logprobs == true ? r.TopLogprobs ?? 0 : -1,
            TokenHook = budget is int b ? Jevons.Inference.ThinkingBudget.Hook(n, opens, b, tokenizer.Encode("</think>\n", addSpecialTokens: false)) : null,
            Logits = schema is null ? null : m.Constrain(n, schema, opens, maxTokens),
        };

        using var flight = s.Start(m, request);

        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var texts = Enumerable.Range(0, n).Select(i => new ChoiceText(opens, parseTools, $"call_{id[9..21]}_{i}_", structured: schema is not null)).ToArray();
        var logprobs = Enumerable.Range(0, n).Select(_ => new List<TokenLogprobOut>()).ToArray();
        var finishes = new string?[n];
        bool stream = r.Stream == true;
        Usage usage = default;
        string model = m.Id;

        if (!stream)
        {
            await foreach (var e in EngineEvents.Read(flight, s.Options.KeepAlive, null, c.RequestAborted))
            {
                usage = e.Usage;
                texts[e.Choice].Push(e.Text);
                if (request.TopLogprobs >= 0 && e.Finish != FinishReason.EndOfSequence) logprobs[e.Choice].Add(EngineEvents.Logprob(tokenizer, e));
                if (e.Finish != FinishReason.None)
                {
                    texts[e.Choice].Flush();
                    finishes[e.Choice] = Finish(e.Finish, texts[e.Choice]);
                }
            }
            var choices = new ChatChoice[n];
            for (int i = 0; i < n; i++)
            {
                var t = texts[i];
                var calls = t.ToolCalls.Select(call => new ToolCallOut(call.Id, new FunctionCall(call.Name, call.Arguments))).ToArray();
                var reasoning = t.Reasoning.Length > 0 ? t.Reasoning : null;
                var message = new ChatMessageOut
                {
                    Content = calls.Length > 0 && t.Content.Length == 0 ? null : t.Content,
                    ReasoningContent = reasoning,
                    Reasoning = reasoning,
                    ToolCalls = calls.Length > 0 ? calls : null,
                };
                choices[i] = new ChatChoice(i, message, request.TopLogprobs >= 0 ? new ChoiceLogprobs(logprobs[i]) : null, finishes[i] ?? "stop");
                if (s.Options.LogPrompts) s.LogPrompt($"output[{i}]", (reasoning is null ? "" : "<think>" + reasoning + "</think>") + t.Content);
            }
            var body = new ChatCompletion(id, created, model, choices, EngineEvents.Usage(usage, texts.Sum(t => t.ReasoningTokens), true));
            await JevonsServer.Json(c, 200, body, ProtocolJson.Default.ChatCompletion);
            return;
        }

        await Sse.Start(c);
        for (int i = 0; i < n; i++)
            await Sse.Data(c, new ChatCompletionChunk(id, created, model, [new ChatChunkChoice(i, new ChatDelta { Role = "assistant", Content = "" }, null, null)]),
                ProtocolJson.Default.ChatCompletionChunk);
        try
        {
            await Stream(s, m, c, r, request, flight, texts, logprobs, id, created);
        }
        catch (Exception e) when (e is not OperationCanceledException && !c.RequestAborted.IsCancellationRequested && e is not IOException)
        {
            // Headers are out: the failure goes to the client as an error frame.
            await Sse.Data(c, new ApiException(500, "generation failed: " + e.Message, "server_error").ToBody(), ProtocolJson.Default.ErrorResponse);
            await Sse.Finish(c);
        }
    }

    static async Task Stream(JevonsServer s, ModelInstance m, HttpContext c, ChatCompletionRequest r, GenerationRequest request, Flight flight,
        ChoiceText[] texts, List<TokenLogprobOut>[] logprobs, string id, long created)
    {
        var tokenizer = m.Tokenizer;
        var chunkType = ProtocolJson.Default.ChatCompletionChunk;
        string model = m.Id;
        Usage usage = default;
        await foreach (var e in EngineEvents.Read(flight, s.Options.KeepAlive, () => Sse.Comment(c), c.RequestAborted))
        {
            usage = e.Usage;
            var t = texts[e.Choice];
            var delta = t.Push(e.Text);
            if (request.TopLogprobs >= 0 && e.Finish != FinishReason.EndOfSequence) logprobs[e.Choice].Add(EngineEvents.Logprob(tokenizer, e));
            string? finish = null;
            if (e.Finish != FinishReason.None)
            {
                var last = t.Flush();
                delta = new ChoiceDelta(delta.Reasoning + last.Reasoning, delta.Content + last.Content, [.. delta.ToolCalls, .. last.ToolCalls]);
                finish = Finish(e.Finish, t);
            }
            if (delta.IsEmpty && finish is null) continue;
            ChoiceLogprobs? lp = null;
            if (logprobs[e.Choice].Count > 0)
            {
                lp = new ChoiceLogprobs(logprobs[e.Choice].ToArray());
                logprobs[e.Choice].Clear();
            }
            var d = new ChatDelta
            {
                Content = delta.Content.Length > 0 ? delta.Content : null,
                ReasoningContent = delta.Reasoning.Length > 0 ? delta.Reasoning : null,
                Reasoning = delta.Reasoning.Length > 0 ? delta.Reasoning : null,
                ToolCalls = delta.ToolCalls.Count > 0
                    ? delta.ToolCalls.Select(tc => new ToolCallDeltaOut(tc.Index, tc.Id, tc.Id is null ? null : "function", new FunctionCall(tc.Name, tc.Arguments))).ToArray()
                    : null,
            };
            await Sse.Data(c, new ChatCompletionChunk(id, created, model, [new ChatChunkChoice(e.Choice, d, lp, finish)]), chunkType);
        }
        if (r.StreamOptions?.IncludeUsage == true)
            await Sse.Data(c, new ChatCompletionChunk(id, created, model, [])
                { Usage = EngineEvents.Usage(usage, texts.Sum(t => t.ReasoningTokens), true) }, chunkType);
        await Sse.Finish(c);
    }

    static string Finish(FinishReason reason, ChoiceText text) =>
        text.ToolCalls.Count > 0 && reason is FinishReason.Stop or FinishReason.EndOfSequence ? "tool_calls" : EngineEvents.Reason(reason);
}
