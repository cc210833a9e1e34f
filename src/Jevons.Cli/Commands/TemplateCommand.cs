using System.Text.Encodings.Web;
using System.Text.Json;
using Jevons.Formats;
using Jevons.Models;
using Jevons.Tokenization;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons template`: renders a conversation through the model's chat template. Prints the prompt
/// exactly as rendered (no newline is added), or with --json one line {"prompt": ..., "ids": [...]}.
/// </summary>
sealed class TemplateCommand : ICommand
{
    public CommandSpec Spec { get; } = new("template",
        "render chat messages through the model's chat template (prints the exact prompt, no newline added)",
    [
        Common.Model,
        new("--tokenizer-config", "a tokenizer_config.json instead of a model (tokenizer.json beside it gives the ids)", "FILE"),
        new("--messages", "a JSON file: an array of messages, or {\"messages\": [...], \"tools\": [...], other template variables}", "FILE"),
        new("--add-generation-prompt", "end with the assistant turn's opening, as for generation"),
        new("--json", "print one JSON line {\"prompt\": ..., \"ids\": [...]} (ids: encode(prompt) without added special tokens)"),
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        var modelPath = a.Get("--model");
        var configPath = a.Get("--tokenizer-config");
        if ((modelPath is null) == (configPath is null))
            throw new JevonsException("jevons template: give exactly one of --model or --tokenizer-config");
        var messagesPath = a.Require("--messages");
        bool json = a.Has("--json");

        var (messages, tools, extra, fileGenPrompt) = ReadMessages(messagesPath);
        bool addGenerationPrompt = a.Has("--add-generation-prompt") || fileGenPrompt;

        ChatTemplate? template;
        Func<Tokenizer?> tokenizer;
        if (configPath is not null)
        {
            template = ChatTemplate.FromTokenizerConfig(configPath);
            var dir = Path.GetDirectoryName(Path.GetFullPath(configPath))!;
            var tokJson = Path.Combine(dir, "tokenizer.json");
            tokenizer = () => File.Exists(tokJson) ? Tokenizer.FromHuggingFace(tokJson, configPath) : null;
        }
        else
        {
            template = LoadTemplate(modelPath!);
            tokenizer = () => LoadedModel.LoadTokenizer(modelPath!);
        }

        string prompt;
        Tokenizer? tok = null;
        if (template is not null)
        {
            prompt = template.Render(messages, tools, addGenerationPrompt, extra);
        }
        else
        {
            tok = tokenizer() ?? throw new JevonsException("no chat template and no tokenizer.json beside it to pick a built-in format", configPath ?? modelPath);
            var fallback = ChatPrompt.For(tok);
            if (fallback.Notice is not null) c.Error.WriteLine(fallback.Notice);
            prompt = fallback.Render(PlainMessages(messages, messagesPath), addGenerationPrompt);
        }

        if (!json)
        {
            c.Out.Write(prompt);
            return 0;
        }
        tok ??= tokenizer() ?? throw new JevonsException("--json needs the token ids, but there is no tokenizer.json beside the config", configPath);
        var ids = tok.Encode(prompt, addSpecialTokens: false);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("prompt", prompt);
            w.WriteStartArray("ids");
            foreach (var id in ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        c.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        return 0;
    }

    /// <summary>The template of a model: GGUF metadata, or tokenizer_config.json in the Hugging Face directory.</summary>
    static ChatTemplate? LoadTemplate(string modelPath)
    {
        if (File.Exists(modelPath) && modelPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            using var gguf = GgufFile.Open(modelPath);
            return ChatTemplate.FromGguf(gguf.Metadata);
        }
        var dir = Directory.Exists(modelPath) ? modelPath
            : File.Exists(modelPath) ? Path.GetDirectoryName(Path.GetFullPath(modelPath))!
            : throw new JevonsException("model not found", modelPath);
        var config = Path.Combine(dir, "tokenizer_config.json");
        return File.Exists(config) ? ChatTemplate.FromTokenizerConfig(config) : null;
    }

    static (JsonElement Messages, JsonElement? Tools, Dictionary<string, object?> Extra, bool AddGenerationPrompt) ReadMessages(string path)
    {
        if (!File.Exists(path)) throw new JevonsException("messages file not found", path);
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllBytes(path)).RootElement; }
        catch (JsonException e) { throw new JevonsException($"invalid JSON: {e.Message}", path); }
        var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (root.ValueKind == JsonValueKind.Array) return (Check(root, path), null, extra, false);
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("messages", out var messages))
            throw new JevonsException("expected a JSON array of messages or an object with \"messages\"", path);
        JsonElement? tools = null;
        bool gen = false;
        foreach (var p in root.EnumerateObject())
        {
            switch (p.Name)
            {
                case "messages": break;
                case "tools":
                    if (p.Value.ValueKind is not (JsonValueKind.Array or JsonValueKind.Null)) throw new JevonsException("\"tools\" must be an array", path);
                    tools = p.Value;
                    break;
                case "add_generation_prompt":
                    if (p.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw new JevonsException("\"add_generation_prompt\" must be true or false", path);
                    gen = p.Value.GetBoolean();
                    break;
                default: extra[p.Name] = p.Value; break;
            }
        }
        return (Check(messages, path), tools, extra, gen);
    }

    static JsonElement Check(JsonElement messages, string path)
    {
        if (messages.ValueKind != JsonValueKind.Array) throw new JevonsException("\"messages\" must be an array", path);
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw new JevonsException($"message {i} must be an object with a string \"role\"", path);
            i++;
        }
        return messages;
    }

    /// <summary>Messages for the built-in format: string content, or the text parts of a content list.</summary>
    static List<ChatMessage> PlainMessages(JsonElement messages, string path)
    {
        var list = new List<ChatMessage>();
        foreach (var m in messages.EnumerateArray())
        {
            var role = m.GetProperty("role").GetString()!;
            string content = "";
            if (m.TryGetProperty("content", out var cj))
            {
                if (cj.ValueKind == JsonValueKind.String) content = cj.GetString()!;
                else if (cj.ValueKind == JsonValueKind.Array)
                    content = string.Concat(cj.EnumerateArray().Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                        .Select(p => p.GetProperty("text").GetString()));
                else if (cj.ValueKind != JsonValueKind.Null) throw new JevonsException($"the built-in chat format needs string content (role '{role}')", path);
            }
            list.Add(new ChatMessage(role, content));
        }
        return list;
    }
}
