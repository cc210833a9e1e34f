using System.Text.Json;
using System.Text.Json.Serialization;

namespace Jevons.Server;

// Request and response bodies of the OpenAI / DeepSeek API, snake_case on the wire. Fields that take
// several shapes (stop, content, tool_choice, response_format, prompt) stay JsonElement and are
// checked in RequestMapping. Unknown fields are ignored.

public sealed class StreamOptions
{
    public bool? IncludeUsage { get; set; }
}

/// <summary>The fields chat and text completions share: the model, sampling, stopping, streaming.</summary>
public abstract class GenerationParameters
{
    public string? Model { get; set; }
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    public int? TopK { get; set; }
    public float? MinP { get; set; }
    public long? MaxTokens { get; set; }
    public JsonElement Stop { get; set; }
    public long? Seed { get; set; }
    public int? N { get; set; }
    public float? PresencePenalty { get; set; }
    public float? FrequencyPenalty { get; set; }
    public float? RepetitionPenalty { get; set; }
    public Dictionary<string, float>? LogitBias { get; set; }
    public bool? Stream { get; set; }
    public StreamOptions? StreamOptions { get; set; }
    public string? User { get; set; }
    public bool? IgnoreEos { get; set; }
}

public sealed class ChatCompletionRequest : GenerationParameters
{
    public JsonElement Messages { get; set; }
    public long? MaxCompletionTokens { get; set; }
    public bool? Logprobs { get; set; }
    public int? TopLogprobs { get; set; }
    public JsonElement Tools { get; set; }
    public JsonElement ToolChoice { get; set; }
    public JsonElement ResponseFormat { get; set; }
    /// <summary>low / medium / high: a thinking budget of 256 / 1024 / 4096 tokens.</summary>
    public string? ReasoningEffort { get; set; }
    /// <summary>Extension: the thinking budget in tokens; when spent, "&lt;/think&gt;\n" is forced.</summary>
    public int? MaxReasoningTokens { get; set; }
}

public sealed class CompletionRequest : GenerationParameters
{
    public JsonElement Prompt { get; set; }
    /// <summary>Legacy completions: the number of alternatives per token (0..5).</summary>
    public int? Logprobs { get; set; }
    public bool? Echo { get; set; }
    public string? Suffix { get; set; }
}

public sealed class TokenizeRequest
{
    public string? Model { get; set; }
    public string? Content { get; set; }
    public string? Prompt { get; set; }
    public bool? AddSpecial { get; set; }
}

public sealed class DetokenizeRequest
{
    public string? Model { get; set; }
    public int[]? Tokens { get; set; }
}

public sealed record TokenizeResponse(int[] Tokens, int Count, int MaxModelLen);
public sealed record DetokenizeResponse(string Content);
public sealed record HealthResponse(string Status);

/// <summary>A /v1/models entry; max_model_len is known once the model has been loaded.</summary>
public sealed record ModelCard(string Id, long Created, string OwnedBy, int? MaxModelLen)
{
    public string Object => "model";
}

public sealed record ModelList(IReadOnlyList<ModelCard> Data)
{
    public string Object => "list";
}

public sealed record ErrorBody(string Message, string Type, string? Param, string? Code)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Param { get; init; } = Param;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Code { get; init; } = Code;
}

public sealed record ErrorResponse(ErrorBody Error);

public sealed record PromptTokensDetails(int CachedTokens);
public sealed record CompletionTokensDetails(int ReasoningTokens);

/// <summary>OpenAI usage plus DeepSeek's prompt_cache_hit_tokens / prompt_cache_miss_tokens.</summary>
public sealed record UsageInfo(int PromptTokens, int CompletionTokens, int TotalTokens, int PromptCacheHitTokens, int PromptCacheMissTokens,
    PromptTokensDetails PromptTokensDetails, CompletionTokensDetails? CompletionTokensDetails);

public sealed record FunctionCall(string? Name, string? Arguments);

public sealed record ToolCallOut(string Id, FunctionCall Function)
{
    public string Type => "function";
}

public sealed record ToolCallDeltaOut(int Index, string? Id, string? Type, FunctionCall Function);

public sealed record TopLogprobOut(string Token, float Logprob, int[] Bytes);

public sealed record TokenLogprobOut(string Token, float Logprob, int[] Bytes, IReadOnlyList<TopLogprobOut> TopLogprobs);

public sealed record ChoiceLogprobs(IReadOnlyList<TokenLogprobOut> Content);

public sealed class ChatMessageOut
{
    public string Role { get; set; } = "assistant";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Content { get; set; }
    public string? ReasoningContent { get; set; }
    /// <summary>vLLM's name for reasoning_content.</summary>
    public string? Reasoning { get; set; }
    public IReadOnlyList<ToolCallOut>? ToolCalls { get; set; }
}

public sealed record ChatChoice(int Index, ChatMessageOut Message, ChoiceLogprobs? Logprobs, string FinishReason)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public ChoiceLogprobs? Logprobs { get; init; } = Logprobs;
}

public sealed record ChatCompletion(string Id, long Created, string Model, IReadOnlyList<ChatChoice> Choices, UsageInfo Usage)
{
    public string Object => "chat.completion";
    public string? SystemFingerprint { get; init; }
}

public sealed class ChatDelta
{
    public string? Role { get; set; }
    public string? Content { get; set; }
    public string? ReasoningContent { get; set; }
    public string? Reasoning { get; set; }
    public IReadOnlyList<ToolCallDeltaOut>? ToolCalls { get; set; }
}

public sealed record ChatChunkChoice(int Index, ChatDelta Delta, ChoiceLogprobs? Logprobs, string? FinishReason)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public ChoiceLogprobs? Logprobs { get; init; } = Logprobs;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? FinishReason { get; init; } = FinishReason;
}

public sealed record ChatCompletionChunk(string Id, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices)
{
    public string Object => "chat.completion.chunk";
    public UsageInfo? Usage { get; init; }
}

public sealed record LegacyLogprobs(IReadOnlyList<string> Tokens, IReadOnlyList<float> TokenLogprobs,
    IReadOnlyList<Dictionary<string, float>> TopLogprobs, IReadOnlyList<int> TextOffset);

public sealed record CompletionChoice(int Index, string Text, LegacyLogprobs? Logprobs, string? FinishReason)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public LegacyLogprobs? Logprobs { get; init; } = Logprobs;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? FinishReason { get; init; } = FinishReason;
}

public sealed record Completion(string Id, long Created, string Model, IReadOnlyList<CompletionChoice> Choices)
{
    public string Object => "text_completion";
    public UsageInfo? Usage { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(TokenizeRequest))]
[JsonSerializable(typeof(DetokenizeRequest))]
[JsonSerializable(typeof(TokenizeResponse))]
[JsonSerializable(typeof(DetokenizeResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(Completion))]
public sealed partial class ProtocolJson : JsonSerializerContext;
