using System.Text;

namespace Jevons.Inference;

/// <summary>What one piece of generated text contributed: reasoning text and answer text (either may be empty).</summary>
public readonly record struct ReasoningDelta(string Reasoning, string Content);

/// <summary>
/// Splits streamed model output into reasoning (between &lt;think&gt; and &lt;/think&gt;) and content.
/// Tags are never emitted, and a tag split across pieces is held back until it is complete or
/// proves to be ordinary text, so any way of cutting the same text gives the same result. When
/// the prompt already opened the think block (R1's "&lt;｜Assistant｜&gt;&lt;think&gt;\n"), start with
/// <see cref="PromptOpensReasoning"/>. Text between the tags is passed through verbatim.
/// </summary>
public sealed class ReasoningParser
{
    readonly string _open, _close;
    readonly bool _final;
    readonly StringBuilder _pending = new();

    /// <param name="outsideIsFinal">Once outside a think block, stay there: later tags are content
    /// (structured output, where the answer is a JSON document that may hold the text "&lt;think&gt;").</param>
    public ReasoningParser(bool startInReasoning = false, string openTag = "<think>", string closeTag = "</think>", bool outsideIsFinal = false)
    {
        _final = outsideIsFinal;
        ArgumentException.ThrowIfNullOrEmpty(openTag);
        ArgumentException.ThrowIfNullOrEmpty(closeTag);
        _open = openTag;
        _close = closeTag;
        InReasoning = startInReasoning;
    }

    /// <summary>Whether the text pushed so far ends inside a think block.</summary>
    public bool InReasoning { get; private set; }

    /// <summary>Pieces (tokens) that carried reasoning text or a think tag.</summary>
    public int ReasoningTokens { get; private set; }

    /// <summary>
    /// Whether a rendered prompt ends inside a think block: its last &lt;think&gt; comes after its last
    /// &lt;/think&gt; and only whitespace follows it.
    /// </summary>
    public static bool PromptOpensReasoning(string prompt, string openTag = "<think>", string closeTag = "</think>")
    {
        int open = prompt.LastIndexOf(openTag, StringComparison.Ordinal);
        if (open < 0 || prompt.LastIndexOf(closeTag, StringComparison.Ordinal) > open) return false;
        for (int i = open + openTag.Length; i < prompt.Length; i++) if (!char.IsWhiteSpace(prompt[i])) return false;
        return true;
    }

    /// <summary>Adds the text of <paramref name="tokens"/> generated tokens; returns what can be emitted now.</summary>
    public ReasoningDelta Push(string text, int tokens = 1)
    {
        bool started = InReasoning;
        _pending.Append(text);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        bool sawTag = false;
        while (true)
        {
            var tag = InReasoning ? _close : _open;
            var s = _pending.ToString();
            if (_final && !InReasoning)
            {
                content.Append(s);
                _pending.Clear();
                break;
            }
            int at = s.IndexOf(tag, StringComparison.Ordinal);
            var into = InReasoning ? reasoning : content;
            if (at >= 0)
            {
                into.Append(s, 0, at);
                _pending.Remove(0, at + tag.Length);
                InReasoning = !InReasoning;
                sawTag = true;
                continue;
            }
            int hold = HeldBack(s, tag);
            into.Append(s, 0, s.Length - hold);
            _pending.Remove(0, s.Length - hold);
            break;
        }
        if (started || sawTag || reasoning.Length > 0) ReasoningTokens += tokens;
        return new ReasoningDelta(reasoning.ToString(), content.ToString());
    }

    /// <summary>The end of the stream: a held-back partial tag is ordinary text after all.</summary>
    public ReasoningDelta Flush()
    {
        var rest = _pending.ToString();
        _pending.Clear();
        return InReasoning ? new ReasoningDelta(rest, "") : new ReasoningDelta("", rest);
    }

    /// <summary>Length of the longest suffix of <paramref name="s"/> that is a proper prefix of <paramref name="tag"/>.</summary>
    internal static int HeldBack(string s, string tag)
    {
        for (int n = Math.Min(tag.Length - 1, s.Length); n > 0; n--)
            if (string.CompareOrdinal(s, s.Length - n, tag, 0, n) == 0) return n;
        return 0;
    }
}
