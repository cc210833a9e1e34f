using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Jevons.Inference;
using Jevons.Tokenization;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiFinishReason = Microsoft.Extensions.AI.ChatFinishReason;

namespace Jevons.Server;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over an <see cref="InferenceEngine"/>, in
/// process: the model's chat template (with tools), the same reasoning and tool-call parsing as the
/// HTTP server (<see cref="ChoiceText"/>). Reasoning comes back as <see cref="TextReasoningContent"/>,
/// tool calls as <see cref="FunctionCallContent"/>.
/// </summary>
public sealed class JevonsChatClient : IChatClient
{
    static readonly JsonSerializerOptions Compact = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };
    readonly InferenceEngine _engine;
    readonly Tokenizer _tokenizer;
    readonly ChatPrompt _chat;
    readonly string _modelId;

    public JevonsChatClient(InferenceEngine engine, string modelId = "jevons")
    {
        _engine = engine;
        _tokenizer = engine.Tokenizer ?? throw new ArgumentException("the chat client needs an engine with a tokenizer", nameof(engine));
        _chat = ChatPrompt.For(_tokenizer);
        _modelId = modelId;
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var contents = new List<AIContent>();
        ChatResponse? last = null;
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            contents.AddRange(update.Contents.Where(c => c is not UsageContent));
            last = new ChatResponse { FinishReason = update.FinishReason ?? last?.FinishReason, Usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? last?.Usage };
        }
        // Adjacent text pieces become one TextContent (and reasoning one TextReasoningContent).
        var merged = new List<AIContent>();
        foreach (var c in contents)
        {
            if (c is TextContent t && merged.Count > 0 && merged[^1] is TextContent p) merged[^1] = new TextContent(p.Text + t.Text);
            else if (c is TextReasoningContent r && merged.Count > 0 && merged[^1] is TextReasoningContent q) merged[^1] = new TextReasoningContent(q.Text + r.Text);
            else merged.Add(c);
        }
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, merged)) { ModelId = _modelId, FinishReason = last?.FinishReason, Usage = last?.Usage };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new ChatOptions();
        bool tools = options.Tools is { Count: > 0 } && options.ToolMode is not NoneChatToolMode;
        var prompt = Render(messages, options);
        var ids = _tokenizer.Encode(prompt, addSpecialTokens: false);
        int context = _engine.Runner.ContextLength;
        // What the context, and the KV pool, leave after the prompt (a longer request could never be scheduled).
        int maxTokens = Math.Min(options.MaxOutputTokens ?? int.MaxValue, (int)Math.Max(1, Math.Min(context, _engine.PoolRequestTokens) - ids.Length));
        bool opens = ReasoningParser.PromptOpensReasoning(prompt);
        var schema = options.ResponseFormat switch
        {
            ChatResponseFormatJson { Schema: { } s } => Schema(s),
            ChatResponseFormatJson => SchemaNode.AnyObject(),
            _ => null,
        };
        if (schema is not null) tools = false;
        var request = new GenerationRequest
        {
            Prompt = ids,
            MaxTokens = maxTokens,
            Logits = schema is null ? null : Constrain(schema, opens, maxTokens),
            Sampling = RequestMapping.Sampling(options.Temperature, options.TopP, options.TopK, null, options.PresencePenalty, options.FrequencyPenalty,
                null, options.Seed, null, _tokenizer.VocabSize),
            StopSequences = options.StopSequences?.ToArray() ?? [],
            SkipSpecialTokens = !tools,
        };
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var text = new ChoiceText(opens, tools, $"call_{id[9..21]}_", structured: schema is not null);
        var usage = default(Inference.Usage);
        await foreach (var e in _engine.GenerateAsync(request, cancellationToken))
        {
            usage = e.Usage;
            var delta = text.Push(e.Text);
            AiFinishReason? finish = null;
            if (e.Finish != FinishReason.None)
            {
                var rest = text.Flush();
                delta = new ChoiceDelta(delta.Reasoning + rest.Reasoning, delta.Content + rest.Content, [.. delta.ToolCalls, .. rest.ToolCalls]);
                finish = text.ToolCalls.Count > 0 ? AiFinishReason.ToolCalls
                    : e.Finish is FinishReason.Length or FinishReason.ContextFull ? AiFinishReason.Length : AiFinishReason.Stop;
            }
            var contents = new List<AIContent>();
            if (delta.Reasoning.Length > 0) contents.Add(new TextReasoningContent(delta.Reasoning));
            if (delta.Content.Length > 0) contents.Add(new TextContent(delta.Content));
            if (finish is not null)
            {
                foreach (var call in text.ToolCalls) contents.Add(new FunctionCallContent(call.Id, call.Name, Arguments(call.Arguments)));
                contents.Add(new UsageContent(new UsageDetails
                {
                    InputTokenCount = usage.PromptTokens,
                    OutputTokenCount = usage.CompletionTokens,
                    TotalTokenCount = usage.PromptTokens + usage.CompletionTokens,
                    CachedInputTokenCount = usage.CachedPromptTokens,
                    ReasoningTokenCount = text.ReasoningTokens,
                }));
            }
            if (contents.Count == 0 && finish is null) continue;
            yield return new ChatResponseUpdate(ChatRole.Assistant, contents) { ResponseId = id, ModelId = _modelId, FinishReason = finish, CreatedAt = DateTimeOffset.UtcNow };
        }
    }

    JsonVocabulary? _vocabulary;

    /// <summary>ChatResponseFormat.Json: constrained decoding as the server does it (<see cref="JsonConstraint"/>).</summary>
    LogitsProcessor Constrain(SchemaNode schema, bool opens, int maxTokens)
    {
        var constraint = new JsonConstraint(_vocabulary ??= JsonVocabulary.For(_tokenizer), schema, _tokenizer.EosIds, opens, maxTokens);
        return (_, generated, logits) => constraint.Apply(generated, logits);
    }

    static SchemaNode Schema(JsonElement schema)
    {
        try
        {
            return JsonSchemaCompiler.Compile(schema, "schema", strict: false);
        }
        catch (ApiException e)
        {
            throw new ArgumentException(e.Message, "options");
        }
    }

    static Dictionary<string, object?>? Arguments(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                ? doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The conversation as the template reads it (the HTTP server's message shape); reasoning is dropped.</summary>
    string Render(IEnumerable<AiChatMessage> messages, ChatOptions options)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var plain = new List<Tokenization.ChatMessage>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var m in messages)
            {
                var role = m.Role == ChatRole.System ? "system" : m.Role == ChatRole.Assistant ? "assistant" : m.Role == ChatRole.Tool ? "tool" : "user";
                var content = string.Concat(m.Contents.OfType<TextContent>().Select(t => t.Text));
                var calls = m.Contents.OfType<FunctionCallContent>().ToList();
                var results = m.Contents.OfType<FunctionResultContent>().ToList();
                if (results.Count > 0)
                {
                    foreach (var r in results)
                    {
                        w.WriteStartObject();
                        w.WriteString("role", "tool");
                        w.WriteString("tool_call_id", r.CallId);
                        var value = r.Result is string s ? s : JsonSerializer.Serialize(r.Result, Compact);
                        w.WriteString("content", value);
                        w.WriteEndObject();
                        plain.Add(new("tool", value));
                    }
                    continue;
                }
                w.WriteStartObject();
                w.WriteString("role", role);
                w.WriteString("content", content);
                if (calls.Count > 0)
                {
                    w.WriteStartArray("tool_calls");
                    foreach (var c in calls)
                    {
                        w.WriteStartObject();
                        w.WriteString("id", c.CallId);
                        w.WriteString("type", "function");
                        w.WriteStartObject("function");
                        w.WriteString("name", c.Name);
                        w.WriteString("arguments", JsonSerializer.Serialize(c.Arguments, Compact));
                        w.WriteEndObject();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
                plain.Add(new(role, content));
            }
            w.WriteEndArray();
        }
        JsonElement? tools = null;
        if (options.Tools is { Count: > 0 })
        {
            var tb = new ArrayBufferWriter<byte>();
            using (var w = new Utf8JsonWriter(tb))
            {
                w.WriteStartArray();
                foreach (var f in options.Tools.OfType<AIFunctionDeclaration>())
                {
                    w.WriteStartObject();
                    w.WriteString("type", "function");
                    w.WriteStartObject("function");
                    w.WriteString("name", f.Name);
                    w.WriteString("description", f.Description);
                    w.WritePropertyName("parameters");
                    f.JsonSchema.WriteTo(w);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            tools = JsonDocument.Parse(tb.WrittenMemory).RootElement.Clone();
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return _chat.Template is { } template
            ? template.Render(doc.RootElement, tools, addGenerationPrompt: true)
            : _chat.Fallback.Render(plain, addGenerationPrompt: true);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("jevons", null, _modelId)
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType == typeof(InferenceEngine) ? _engine
        : null;

    /// <summary>The engine belongs to the caller; nothing to release here.</summary>
    public void Dispose() { }
}
