namespace Jevons.Tokenization;

/// <summary>
/// How a tokenizer's chat prompts are built: the model's own Jinja template when it ships one that
/// parses, else the built-in <see cref="ChatFormat"/> for its family, with <see cref="Notice"/>
/// saying so (the CLI prints it once on stderr).
/// </summary>
public sealed class ChatPrompt
{
    ChatPrompt(ChatTemplate? template, ChatFormat fallback, string? notice)
    {
        Template = template;
        Fallback = fallback;
        Notice = notice;
    }

    /// <summary>The model's template, or null when the built-in format is used.</summary>
    public ChatTemplate? Template { get; }

    public ChatFormat Fallback { get; }

    /// <summary>Null when the model's template is used; else one line naming the stand-in format and why.</summary>
    public string? Notice { get; }

    /// <summary>"jinja template (source)" or "built-in DeepSeek format".</summary>
    public string Description => Template is not null ? $"the model's chat template ({Template.Source})" : $"built-in {Fallback.Style} format";

    public static ChatPrompt For(Tokenizer tokenizer)
    {
        var fallback = ChatFormat.For(tokenizer);
        if (tokenizer.ChatTemplate is null)
            return new ChatPrompt(null, fallback, $"note: the model has no chat template; using the built-in {fallback.Style} format");
        try
        {
            return new ChatPrompt(ChatTemplate.For(tokenizer), fallback, null);
        }
        catch (JevonsException e)
        {
            return new ChatPrompt(null, fallback, $"note: the model's chat template does not parse ({e.Message}); using the built-in {fallback.Style} format");
        }
    }

    /// <summary>The prompt text for these messages; encode it with addSpecialTokens = false.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) =>
        Template is not null ? Template.Render(messages, addGenerationPrompt) : Fallback.Render(messages, addGenerationPrompt);
}
