using System.Text.Json;
using Jevons.Formats;
using Jevons.Tokenization.Templates;

namespace Jevons.Tokenization;

/// <summary>
/// A model's own Jinja chat template, rendered the way transformers' apply_chat_template does:
/// variables messages, tools (None when not given), documents (None), add_generation_prompt, the
/// special tokens that are set (bos_token, eos_token, pad_token, unk_token as strings) and any
/// extra keyword arguments (enable_thinking, ...). The named-template form of chat_template picks
/// "tool_use" when tools are given and it exists, else "default".
/// </summary>
public sealed class ChatTemplate
{
    readonly JinjaTemplate _default;
    readonly JinjaTemplate? _toolUse;
    readonly Dictionary<string, object?> _specialTokens;

    ChatTemplate(string source, string text, string? toolUse, Dictionary<string, object?> specialTokens, Func<DateTimeOffset>? clock)
    {
        Source = source;
        Text = text;
        _default = JinjaTemplate.Parse(text, source, clock: clock);
        _toolUse = toolUse is null ? null : JinjaTemplate.Parse(toolUse, source + " (tool_use)", clock: clock);
        _specialTokens = specialTokens;
    }

    /// <summary>Where the template came from, for messages ("…/tokenizer_config.json chat_template").</summary>
    public string Source { get; }

    /// <summary>The default template's Jinja source.</summary>
    public string Text { get; }

    public string? BosToken => _specialTokens.GetValueOrDefault("bos_token") as string;
    public string? EosToken => _specialTokens.GetValueOrDefault("eos_token") as string;

    /// <summary>A template from its text, with the special-token strings it may refer to.</summary>
    public static ChatTemplate FromText(string text, string? bosToken = null, string? eosToken = null, string source = "chat template",
        string? toolUseText = null, Func<DateTimeOffset>? clock = null, string? padToken = null, string? unkToken = null) =>
        new(source, text, toolUseText, Specials(bosToken, eosToken, padToken, unkToken), clock);

    static Dictionary<string, object?> Specials(string? bos, string? eos, string? pad, string? unk)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (bos is not null) d["bos_token"] = bos;
        if (eos is not null) d["eos_token"] = eos;
        if (unk is not null) d["unk_token"] = unk;
        if (pad is not null) d["pad_token"] = pad;
        return d;
    }

    /// <summary>
    /// The template of a tokenizer_config.json (chat_template as a string or as [{name, template}],
    /// else chat_template.jinja beside it), or null when it has none.
    /// </summary>
    public static ChatTemplate? FromTokenizerConfig(string path, Func<DateTimeOffset>? clock = null)
    {
        if (!File.Exists(path)) throw new JevonsException("tokenizer config not found", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new JevonsException($"invalid JSON: {e.Message}", path); }
        using (doc)
        {
            var cfg = doc.RootElement;
            if (cfg.ValueKind != JsonValueKind.Object) throw new JevonsException("expected a JSON object at the top level", path);
            string? text = null, toolUse = null;
            string source = path + " chat_template";
            if (cfg.TryGetProperty("chat_template", out var t))
            {
                if (t.ValueKind == JsonValueKind.String) text = t.GetString();
                else if (t.ValueKind == JsonValueKind.Array)
                {
                    foreach (var e in t.EnumerateArray())
                    {
                        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("template", out var tt) || tt.ValueKind != JsonValueKind.String)
                            throw new JevonsException("chat_template list entries must be {\"name\": ..., \"template\": ...}", path);
                        var name = e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                        if (name == "default") text = tt.GetString();
                        else if (name == "tool_use") toolUse = tt.GetString();
                    }
                    if (text is null && toolUse is null)
                        throw new JevonsException("chat_template list has neither a \"default\" nor a \"tool_use\" template", path);
                }
                else if (t.ValueKind != JsonValueKind.Null) throw new JevonsException("chat_template must be a string or a list of named templates", path);
            }
            if (text is null && toolUse is null)
            {
                var jinja = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "chat_template.jinja");
                if (!File.Exists(jinja)) return null;
                text = File.ReadAllText(jinja);
                source = jinja;
            }
            return new ChatTemplate(source, text ?? toolUse!, text is null ? null : toolUse,
                Specials(TokenString(cfg, "bos_token"), TokenString(cfg, "eos_token"), TokenString(cfg, "pad_token"), TokenString(cfg, "unk_token")), clock);
        }
    }

    /// <summary>A special token given as a string or as an AddedToken object {"content": ...}.</summary>
    static string? TokenString(JsonElement cfg, string name) =>
        !cfg.TryGetProperty(name, out var v) ? null : v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };

    /// <summary>tokenizer.chat_template (and tokenizer.chat_template.tool_use) from GGUF metadata, or null.</summary>
    public static ChatTemplate? FromGguf(IConfigSource metadata, Func<DateTimeOffset>? clock = null)
    {
        var text = metadata.GetString("tokenizer.chat_template");
        if (text is null) return null;
        var tokens = metadata.GetStringArray("tokenizer.ggml.tokens");
        string? Token(string key) => metadata.GetInt(key) is long id && tokens is not null && id >= 0 && id < tokens.Length ? tokens[id] : null;
        return new ChatTemplate(metadata.File + " tokenizer.chat_template", text, metadata.GetString("tokenizer.chat_template.tool_use"),
            Specials(Token("tokenizer.ggml.bos_token_id"), Token("tokenizer.ggml.eos_token_id"), Token("tokenizer.ggml.padding_token_id"),
                Token("tokenizer.ggml.unknown_token_id")), clock);
    }

    /// <summary>The template a loaded tokenizer carries (its default one), or null.</summary>
    public static ChatTemplate? For(Tokenizer tokenizer)
    {
        if (tokenizer.ChatTemplate is not string text) return null;
        string? bos = tokenizer.BosId is int b ? tokenizer.TokenText(b) : null;
        string? eos = tokenizer.EosIds.Count > 0 ? tokenizer.TokenText(tokenizer.EosIds[0]) : null;
        string? pad = tokenizer.PadId is int p ? tokenizer.TokenText(p) : null;
        return FromText(text, bos, eos, tokenizer.Source + " chat_template", padToken: pad);
    }

    /// <summary>
    /// Renders a conversation. <paramref name="messages"/> is a JSON array of messages (role;
    /// content as a string, null or a list of parts; tool_calls; reasoning_content; ...),
    /// <paramref name="tools"/> a JSON array of tool definitions or null, and
    /// <paramref name="extra"/> further template variables (JSON elements or plain values).
    /// </summary>
    public string Render(JsonElement messages, JsonElement? tools = null, bool addGenerationPrompt = false, IReadOnlyDictionary<string, object?>? extra = null)
    {
        if (messages.ValueKind != JsonValueKind.Array) throw new JevonsException("messages must be a JSON array", Source);
        foreach (var m in messages.EnumerateArray())
            if (m.ValueKind != JsonValueKind.Object) throw new JevonsException("each message must be a JSON object", Source);
        bool hasTools = tools is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined };
        var vars = new Dictionary<string, object?>(_specialTokens, StringComparer.Ordinal)
        {
            ["messages"] = messages,
            ["tools"] = hasTools ? tools : null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (extra is not null)
            foreach (var (k, v) in extra)
            {
                vars[k] = v;
                if (k == "tools") hasTools = v is not null && !(v is JsonElement { ValueKind: JsonValueKind.Null });
            }
        var template = hasTools && _toolUse is not null ? _toolUse : _default;
        return template.Render(vars);
    }

    /// <summary>Renders plain (role, content) messages.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var list = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList();
        var vars = new Dictionary<string, object?>(_specialTokens, StringComparer.Ordinal)
        {
            ["messages"] = list,
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        return _default.Render(vars);
    }
}
