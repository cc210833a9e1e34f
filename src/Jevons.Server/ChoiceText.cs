using Jevons.Inference;

namespace Jevons.Server;

/// <summary>What one token added to a choice, after reasoning and tool-call parsing.</summary>
public readonly record struct ChoiceDelta(string Reasoning, string Content, IReadOnlyList<ToolCallDelta> ToolCalls)
{
    public bool IsEmpty => Reasoning.Length == 0 && Content.Length == 0 && ToolCalls.Count == 0;
}

/// <summary>
/// The text of one chat choice as it streams: generated text → <see cref="ReasoningParser"/>
/// (&lt;think&gt; … &lt;/think&gt; to reasoning) → <see cref="ToolCallParser"/> (calls out of the content).
/// A stream and a plain response both go through here, so they give the same text.
/// </summary>
public sealed class ChoiceText
{
    readonly ReasoningParser _reasoning;
    readonly ToolCallParser? _tools;
    readonly System.Text.StringBuilder _content = new(), _reasoningText = new();

    /// <param name="structured">response_format JSON: once outside the think block, all text is the document.</param>
    public ChoiceText(bool promptOpensReasoning, bool parseTools, string callIdPrefix, bool structured = false)
    {
        _reasoning = new ReasoningParser(promptOpensReasoning, outsideIsFinal: structured);
        _tools = parseTools ? new ToolCallParser(callIdPrefix) : null;
    }

    public string Content => _content.ToString();
    public string Reasoning => _reasoningText.ToString();
    public IReadOnlyList<ToolCall> ToolCalls => _tools?.Calls ?? [];
    public int ReasoningTokens => _reasoning.ReasoningTokens;

    public ChoiceDelta Push(string text) => Take(_reasoning.Push(text), final: false);

    public ChoiceDelta Flush() => Take(_reasoning.Flush(), final: true);

    ChoiceDelta Take(ReasoningDelta d, bool final)
    {
        string content = d.Content;
        IReadOnlyList<ToolCallDelta> calls = [];
        if (_tools is not null)
        {
            var chunk = _tools.Push(content);
            content = chunk.Content;
            calls = chunk.ToolCalls;
            if (final)
            {
                var last = _tools.Flush();
                content += last.Content;
                calls = [.. calls, .. last.ToolCalls];
            }
        }
        _content.Append(content);
        _reasoningText.Append(d.Reasoning);
        return new ChoiceDelta(d.Reasoning, content, calls);
    }
}
