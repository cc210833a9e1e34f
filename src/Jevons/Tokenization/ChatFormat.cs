using System.Text;

namespace Jevons.Tokenization;

/// <summary>One chat message: role ("system", "user", "assistant") and its text.</summary>
public readonly record struct ChatMessage(string Role, string Content);

/// <summary>The built-in prompt layouts (the general Jinja renderer comes later).</summary>
public enum ChatStyle
{
    /// <summary>DeepSeek-V3/R1 and the R1-Distill models: bos, systems joined by blank lines, &lt;｜User｜&gt;… &lt;｜Assistant｜&gt;…&lt;｜end▁of▁sentence｜&gt;.</summary>
    DeepSeek,
    /// <summary>Qwen's ChatML: &lt;|im_start|&gt;role\n…&lt;|im_end|&gt;\n.</summary>
    ChatMl,
    /// <summary>Llama-3: &lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n…&lt;|eot_id|&gt;.</summary>
    Llama3,
}

/// <summary>
/// A built-in chat template for a known model family. <see cref="Render"/> produces the prompt
/// text; encode it with addSpecialTokens = false (the text already holds the BOS).
/// </summary>
public sealed record ChatFormat(ChatStyle Style, string BosText = "")
{
    /// <summary>
    /// R1 style: in past assistant turns only the text after &lt;/think&gt; is kept (the V3 template
    /// keeps assistant content verbatim).
    /// </summary>
    public bool StripReasoning { get; init; }

    /// <summary>Text after the generation prompt ("&lt;think&gt;\n" in newer R1 templates).</summary>
    public string GenerationSuffix { get; init; } = "";

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        switch (Style)
        {
            case ChatStyle.DeepSeek:
                sb.Append(BosText);
                bool first = true;
                foreach (var m in messages)
                {
                    if (m.Role != "system") continue;
                    if (!first) sb.Append("\n\n");
                    sb.Append(m.Content);
                    first = false;
                }
                foreach (var m in messages)
                {
                    if (m.Role == "user") sb.Append("<｜User｜>").Append(m.Content);
                    else if (m.Role == "assistant")
                    {
                        var content = m.Content;
                        if (StripReasoning && content.Contains("</think>", StringComparison.Ordinal))
                            content = content[(content.LastIndexOf("</think>", StringComparison.Ordinal) + "</think>".Length)..];
                        sb.Append("<｜Assistant｜>").Append(content).Append("<｜end▁of▁sentence｜>");
                    }
                }
                if (addGenerationPrompt) sb.Append("<｜Assistant｜>").Append(GenerationSuffix);
                break;
            case ChatStyle.ChatMl:
                foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n").Append(GenerationSuffix);
                break;
            case ChatStyle.Llama3:
                sb.Append(BosText);
                foreach (var m in messages)
                    sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
                if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").Append(GenerationSuffix);
                break;
        }
        return sb.ToString();
    }

    /// <summary>Convenience overload for (role, content) tuples.</summary>
    public string Render(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt) =>
        Render(messages.Select(m => new ChatMessage(m.Role, m.Content)).ToArray(), addGenerationPrompt);

    /// <summary>
    /// The format for a tokenizer, chosen by the special tokens its vocabulary has (DeepSeek's
    /// &lt;｜User｜&gt;, Llama-3's header tokens, else ChatML). For DeepSeek, an R1-style shipped
    /// template (one that handles &lt;/think&gt;) turns on <see cref="StripReasoning"/> and, when its
    /// generation prompt opens a think block, <see cref="GenerationSuffix"/>.
    /// </summary>
    public static ChatFormat For(Tokenizer tokenizer)
    {
        string bos = tokenizer.BosId is int b ? tokenizer.TokenText(b) : "";
        var template = tokenizer.ChatTemplate ?? "";
        if (tokenizer.TokenId("<｜User｜>") is not null && tokenizer.TokenId("<｜Assistant｜>") is not null)
            return new ChatFormat(ChatStyle.DeepSeek, bos)
            {
                StripReasoning = template.Contains("</think>", StringComparison.Ordinal),
                GenerationSuffix = template.Contains("<｜Assistant｜><think>\\n", StringComparison.Ordinal)
                    || template.Contains("<｜Assistant｜><think>\n", StringComparison.Ordinal) ? "<think>\n" : "",
            };
        if (tokenizer.TokenId("<|start_header_id|>") is not null)
            return new ChatFormat(ChatStyle.Llama3, bos);
        return new ChatFormat(ChatStyle.ChatMl);
    }
}
