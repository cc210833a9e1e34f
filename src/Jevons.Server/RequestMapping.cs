using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Jevons.Inference;

namespace Jevons.Server;

/// <summary>
/// Checks the parameters OpenAI clients send and turns them into engine settings. Each failure is an
/// <see cref="ApiException"/> (400) naming the parameter and the value.
/// </summary>
static class RequestMapping
{
    /// <summary>Thinking budgets of reasoning_effort, in tokens.</summary>
    public static readonly IReadOnlyDictionary<string, int> ReasoningEffortTokens = new Dictionary<string, int>
    {
        ["low"] = 256, ["medium"] = 1024, ["high"] = 4096,
    };

    public const int MaxChoices = 16;

    /// <summary>The sampling fields of a chat or text completion request, checked.</summary>
    public static SamplerOptions Sampling(GenerationParameters r, int vocab) =>
        Sampling(r.Temperature, r.TopP, r.TopK, r.MinP, r.PresencePenalty, r.FrequencyPenalty, r.RepetitionPenalty, r.Seed, r.LogitBias, vocab);

    public static SamplerOptions Sampling(float? temperature, float? topP, int? topK, float? minP, float? presence, float? frequency,
        float? repetition, long? seed, Dictionary<string, float>? logitBias, int vocab)
    {
        if (temperature is float t && (float.IsNaN(t) || t < 0 || t > 2)) Range("temperature", t, "between 0 and 2");
        if (topP is float p && !(p > 0 && p <= 1)) Range("top_p", p, "in (0, 1]");
        if (topK is int k && k < -1) Range("top_k", k, ">= 0 (or -1 for off)");
        if (minP is float m && !(m >= 0 && m <= 1)) Range("min_p", m, "in [0, 1]");
        if (presence is float pp && !(pp >= -2 && pp <= 2)) Range("presence_penalty", pp, "between -2 and 2");
        if (frequency is float fp && !(fp >= -2 && fp <= 2)) Range("frequency_penalty", fp, "between -2 and 2");
        if (repetition is float rp && !(rp > 0 && rp <= 10)) Range("repetition_penalty", rp, "in (0, 10]");
        Dictionary<int, float>? bias = null;
        if (logitBias is not null)
        {
            if (logitBias.Count > 300) ApiException.BadRequest($"logit_bias has {logitBias.Count} entries; at most 300 are allowed", "logit_bias");
            bias = new Dictionary<int, float>();
            foreach (var (key, value) in logitBias)
            {
                if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= vocab)
                    ApiException.BadRequest($"logit_bias key '{key}' is not a token id of this model (0 .. {vocab - 1})", "logit_bias");
                if (float.IsNaN(value) || value < -100 || value > 100) Range($"logit_bias[{key}]", value, "between -100 and 100");
                bias[id] = value;
            }
        }
        // OpenAI's defaults: temperature 1, top_p 1, and no top-k / min-p truncation. Presence and
        // frequency penalties count the generated tokens only, as OpenAI and vLLM count them.
        return new SamplerOptions
        {
            Temperature = temperature ?? 1f,
            TopP = topP ?? 1f,
            TopK = topK is int kk && kk > 0 ? kk : 0,
            MinP = minP ?? 0f,
            PresencePenalty = presence ?? 0,
            FrequencyPenalty = frequency ?? 0,
            RepetitionPenalty = repetition ?? 1,
            PenaltyLastN = -1,
            PenalizeOutputOnly = true,
            Seed = seed is long s ? unchecked((ulong)s) : (ulong)Random.Shared.NextInt64(),
            LogitBias = bias,
        };
    }

    public static int Choices(int? n)
    {
        int value = n ?? 1;
        if (value < 1 || value > MaxChoices) Range("n", value, $"between 1 and {MaxChoices}");
        return value;
    }

    /// <summary>
    /// max_tokens (or max_completion_tokens): the value given, else what the context has left. The KV pool
    /// bounds one request too (<paramref name="poolTokens"/>: prompt + max_tokens it can hold), so a request past it
    /// is a 400 naming the field rather than one that can never be scheduled.
    /// </summary>
    public static int MaxTokens(long? maxTokens, string param, int promptTokens, int context, long poolTokens = long.MaxValue)
    {
        if (maxTokens is long m)
        {
            if (m < 1) Range(param, m, ">= 1");
            if (promptTokens + m > context)
                ApiException.BadRequest($"this model's context length is {context} tokens; the prompt has {promptTokens} tokens and {param} is {m} " +
                    $"({promptTokens + m} in all): lower {param} or shorten the prompt", param, "context_length_exceeded");
            if (promptTokens + m > poolTokens)
                ApiException.BadRequest($"the KV cache holds {poolTokens} tokens for one request (--kv-budget); the prompt has {promptTokens} tokens and {param} is {m} " +
                    $"({promptTokens + m} in all): lower {param}, shorten the prompt or raise --kv-budget", param, "context_length_exceeded");
            return (int)m;
        }
        if (promptTokens >= context)
            ApiException.BadRequest($"this model's context length is {context} tokens; the prompt has {promptTokens} tokens, which leaves no room to generate",
                "messages", "context_length_exceeded");
        if (promptTokens >= poolTokens)
            ApiException.BadRequest($"the KV cache holds {poolTokens} tokens for one request (--kv-budget); the prompt has {promptTokens} tokens, which leaves no room to generate",
                "messages", "context_length_exceeded");
        return (int)Math.Min(context - promptTokens, poolTokens - promptTokens);
    }

    public static IReadOnlyList<string> Stop(JsonElement stop)
    {
        switch (stop.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null: return [];
            case JsonValueKind.String:
                return stop.GetString()!.Length == 0 ? [] : [stop.GetString()!];
            case JsonValueKind.Array:
                var list = new List<string>();
                foreach (var e in stop.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.String || e.GetString()!.Length == 0)
                        ApiException.BadRequest("stop must be a string or an array of non-empty strings", "stop");
                    list.Add(e.GetString()!);
                }
                if (list.Count > 16) ApiException.BadRequest($"stop has {list.Count} sequences; at most 16 are allowed", "stop");
                return list;
            default:
                ApiException.BadRequest($"stop must be a string or an array of strings, not {Kind(stop)}", "stop");
                return [];
        }
    }

    /// <summary>
    /// The messages as the chat template reads them: content flattened to a string (text parts
    /// joined), reasoning_content dropped, tool_calls / tool_call_id / name kept; "developer" is "system".
    /// </summary>
    public static JsonDocument Messages(JsonElement messages, out List<Tokenization.ChatMessage> plain)
    {
        plain = [];
        if (messages.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) ApiException.BadRequest("messages is required", "messages");
        if (messages.ValueKind != JsonValueKind.Array) ApiException.BadRequest($"messages must be an array, not {Kind(messages)}", "messages");
        if (messages.GetArrayLength() == 0) ApiException.BadRequest("messages must hold at least one message", "messages");
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            int i = 0;
            foreach (var m in messages.EnumerateArray())
            {
                string at = $"messages[{i++}]";
                if (m.ValueKind != JsonValueKind.Object) ApiException.BadRequest($"{at} must be an object, not {Kind(m)}", at);
                if (!m.TryGetProperty("role", out var roleElement) || roleElement.ValueKind != JsonValueKind.String)
                    ApiException.BadRequest($"{at}.role is required and must be a string", at + ".role");
                var role = roleElement.GetString()!;
                if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                    ApiException.BadRequest($"{at}.role '{role}' is not one of system, developer, user, assistant, tool", at + ".role");
                if (role == "developer") role = "system";
                bool hasCalls = m.TryGetProperty("tool_calls", out var calls) && calls.ValueKind != JsonValueKind.Null;
                var content = Content(m, at, nullable: role == "assistant");
                w.WriteStartObject();
                w.WriteString("role", role);
                if (content is null) w.WriteNull("content");
                else w.WriteString("content", content);
                if (hasCalls)
                {
                    if (role != "assistant") ApiException.BadRequest($"{at}.tool_calls is only allowed on assistant messages", at + ".tool_calls");
                    if (calls.ValueKind != JsonValueKind.Array) ApiException.BadRequest($"{at}.tool_calls must be an array", at + ".tool_calls");
                    w.WritePropertyName("tool_calls");
                    w.WriteStartArray();
                    foreach (var call in calls.EnumerateArray())
                    {
                        if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object
                            || !f.TryGetProperty("name", out var fn) || fn.ValueKind != JsonValueKind.String)
                            ApiException.BadRequest($"{at}.tool_calls entries must be {{\"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}", at + ".tool_calls");
                        call.WriteTo(w);
                    }
                    w.WriteEndArray();
                }
                if (role == "tool")
                {
                    if (!m.TryGetProperty("tool_call_id", out var id) || id.ValueKind != JsonValueKind.String)
                        ApiException.BadRequest($"{at}.tool_call_id is required for a tool message", at + ".tool_call_id");
                    w.WriteString("tool_call_id", id.GetString());
                }
                if (m.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String) w.WriteString("name", name.GetString());
                w.WriteEndObject();
                plain.Add(new Tokenization.ChatMessage(role, content ?? ""));
            }
            w.WriteEndArray();
        }
        return JsonDocument.Parse(buffer.WrittenMemory);
    }

    static string? Content(JsonElement m, string at, bool nullable)
    {
        if (!m.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null)
        {
            if (nullable) return null;
            ApiException.BadRequest($"{at}.content is required", at + ".content");
        }
        if (c.ValueKind == JsonValueKind.String) return c.GetString();
        if (c.ValueKind != JsonValueKind.Array) ApiException.BadRequest($"{at}.content must be a string or an array of text parts, not {Kind(c)}", at + ".content");
        var text = new StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            var type = Get(part, "type");
            if (type.ValueKind != JsonValueKind.String)
                ApiException.BadRequest($"{at}.content parts must be objects with a type", at + ".content");
            if (type.GetString() != "text")
                ApiException.BadRequest($"{at}.content part type '{type.GetString()}' is not supported (this model reads text only)", at + ".content");
            if (!part.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                ApiException.BadRequest($"{at}.content text parts need a string 'text'", at + ".content");
            text.Append(t.GetString());
        }
        return text.ToString();
    }

    /// <summary>The tools array checked (type function, a name, parameters an object) and the function names.</summary>
    public static HashSet<string> Tools(JsonElement tools)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (tools.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return names;
        if (tools.ValueKind != JsonValueKind.Array) ApiException.BadRequest($"tools must be an array, not {Kind(tools)}", "tools");
        int i = 0;
        foreach (var t in tools.EnumerateArray())
        {
            string at = $"tools[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) ApiException.BadRequest($"{at} must be an object", at);
            if (!t.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function")
                ApiException.BadRequest($"{at}.type must be \"function\"", at + ".type");
            if (!t.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object)
                ApiException.BadRequest($"{at}.function must be an object", at + ".function");
            if (!f.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length == 0)
                ApiException.BadRequest($"{at}.function.name is required", at + ".function.name");
            var n = name.GetString()!;
            if (n.Length > 64 || !n.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-'))
                ApiException.BadRequest($"{at}.function.name '{n}' must be 1-64 letters, digits, '_' or '-'", at + ".function.name");
            if (f.TryGetProperty("parameters", out var p) && p.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                ApiException.BadRequest($"{at}.function.parameters must be a JSON Schema object", at + ".function.parameters");
            if (!names.Add(n)) ApiException.BadRequest($"{at}.function.name '{n}' is defined twice", at + ".function.name");
        }
        return names;
    }

    /// <summary>Whether tool calls are parsed: tools given and tool_choice not "none".</summary>
    public static bool ToolChoice(JsonElement choice, HashSet<string> tools)
    {
        switch (choice.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null: return tools.Count > 0;
            case JsonValueKind.String:
                var s = choice.GetString();
                if (s is not ("none" or "auto" or "required")) ApiException.BadRequest($"tool_choice '{s}' is not one of none, auto, required or a function", "tool_choice");
                if (s != "none" && tools.Count == 0) ApiException.BadRequest($"tool_choice '{s}' needs tools", "tool_choice");
                return s != "none";
            case JsonValueKind.Object:
                var n = Get(Get(choice, "function"), "name");
                if (n.ValueKind != JsonValueKind.String)
                    ApiException.BadRequest("tool_choice must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
                if (!tools.Contains(n.GetString()!)) ApiException.BadRequest($"tool_choice names '{n.GetString()}', which is not in tools", "tool_choice");
                return true;
            default:
                ApiException.BadRequest($"tool_choice must be a string or an object, not {Kind(choice)}", "tool_choice");
                return false;
        }
    }

    /// <summary>
    /// response_format: "text" (null), "json_object" (any JSON object) or "json_schema" (the schema
    /// compiled by <see cref="JsonSchemaCompiler"/>; strict adds OpenAI's strict-mode rules). Either
    /// JSON format constrains sampling.
    /// </summary>
    public static SchemaNode? ResponseFormat(JsonElement format)
    {
        if (format.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
        var type = Get(format, "type");
        if (type.ValueKind != JsonValueKind.String)
            ApiException.BadRequest("response_format must be an object with a type", "response_format");
        switch (type.GetString())
        {
            case "text": return null;
            case "json_object": return SchemaNode.AnyObject();
            case "json_schema":
                var js = Get(format, "json_schema");
                if (js.ValueKind != JsonValueKind.Object)
                    ApiException.BadRequest("response_format json_schema needs {\"json_schema\": {\"name\": ..., \"schema\": {...}}}", "response_format.json_schema");
                var name = Get(js, "name");
                if (name.ValueKind != JsonValueKind.String || name.GetString()!.Length is 0 or > 64
                    || !name.GetString()!.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-'))
                    ApiException.BadRequest("response_format.json_schema.name must be 1-64 letters, digits, '_' or '-'", "response_format.json_schema.name");
                var strict = Get(js, "strict");
                if (strict.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.True or JsonValueKind.False))
                    ApiException.BadRequest($"response_format.json_schema.strict must be a boolean, not {Kind(strict)}", "response_format.json_schema.strict");
                var schema = Get(js, "schema");
                if (schema.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return SchemaNode.Any();
                if (schema.ValueKind != JsonValueKind.Object)
                    ApiException.BadRequest($"response_format.json_schema.schema must be a JSON Schema object, not {Kind(schema)}", "response_format.json_schema.schema");
                return JsonSchemaCompiler.Compile(schema, "response_format.json_schema.schema", strict.ValueKind == JsonValueKind.True);
            default:
                ApiException.BadRequest($"response_format type '{type.GetString()}' is not one of text, json_object, json_schema", "response_format.type");
                return null;
        }
    }

    /// <summary>The thinking budget in tokens, or null for none.</summary>
    public static int? ReasoningBudget(string? effort, int? maxReasoningTokens)
    {
        if (maxReasoningTokens is int m)
        {
            if (m < 0) Range("max_reasoning_tokens", m, ">= 0");
            return m;
        }
        if (effort is null) return null;
        if (!ReasoningEffortTokens.TryGetValue(effort, out var tokens))
            ApiException.BadRequest($"reasoning_effort '{effort}' is not one of low, medium, high", "reasoning_effort");
        return tokens;
    }

    public static void Range(string param, object value, string range) =>
        ApiException.BadRequest($"{param} is {Convert.ToString(value, CultureInfo.InvariantCulture)}; it must be {range}", param);

    /// <summary>A property of an object, or an undefined element.</summary>
    static JsonElement Get(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) ? v : default;

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
