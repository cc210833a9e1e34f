using System.Text;
using System.Text.Json;

namespace Jevons.Inference;

/// <summary>A finished (or, at the end of a stream, the last partial) tool call, OpenAI style: arguments is JSON text.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>
/// One streamed step of a tool call, as OpenAI streams it: the first delta of call
/// <see cref="Index"/> carries its <see cref="Id"/> and <see cref="Name"/>; later ones carry only
/// argument text.
/// </summary>
public readonly record struct ToolCallDelta(int Index, string? Id, string? Name, string Arguments);

/// <summary>What one piece of text contributed: ordinary content and tool-call deltas.</summary>
public sealed record ToolCallChunk(string Content, IReadOnlyList<ToolCallDelta> ToolCalls);

/// <summary>
/// Finds tool calls in streamed model output, in either form the supported models write:
/// DeepSeek-V3/R1 — &lt;｜tool▁calls▁begin｜&gt;&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;NAME\n```json\nARGS\n```&lt;｜tool▁call▁end｜&gt;
/// (more calls separated by a newline, then &lt;｜tool▁calls▁end｜&gt;; V3.1's NAME&lt;｜tool▁sep｜&gt;ARGS
/// is read too) — and Qwen/Hermes — &lt;tool_call&gt;\n{"name": NAME, "arguments": ARGS}\n&lt;/tool_call&gt;.
/// Arguments are the model's JSON text verbatim, streamed as they arrive; text outside calls is
/// content. Markers split across pieces are held back, so every cut of the same text gives the
/// same content and calls. A call whose name never arrives is given back as content.
/// </summary>
public sealed class ToolCallParser
{
    public const string DsCallsBegin = "<｜tool▁calls▁begin｜>", DsCallsEnd = "<｜tool▁calls▁end｜>";
    public const string DsCallBegin = "<｜tool▁call▁begin｜>", DsCallEnd = "<｜tool▁call▁end｜>", DsSep = "<｜tool▁sep｜>";
    public const string QwenBegin = "<tool_call>", QwenEnd = "</tool_call>";
    static readonly string[] ContentMarkers = [DsCallsBegin, DsCallBegin, QwenBegin];
    static readonly string[] DsArgsEnds = ["\n```" + DsCallEnd, "```" + DsCallEnd, DsCallEnd];

    enum State { Content, DsSection, DsHeader, DsFence, DsArgs, Qwen }

    readonly string _idPrefix;
    readonly StringBuilder _buf = new();
    readonly List<ToolCall> _calls = new();
    State _state;

    // The call being read.
    string? _name;
    readonly StringBuilder _args = new();
    int _argsEmitted;
    bool _started;

    // Qwen JSON scanner state.
    readonly StringBuilder _raw = new();
    int _depth, _argsStart = -1, _argsEnd = -1, _nameStart = -1;
    bool _inString, _escape, _closed, _expectValue;
    string? _lastString, _key;
    int _stringStart;

    /// <param name="idPrefix">Call ids are this prefix plus the call's index ("call_0", ...); a server passes a unique prefix per response.</param>
    public ToolCallParser(string idPrefix = "call_") => _idPrefix = idPrefix;

    /// <summary>The calls so far; the last may still be open.</summary>
    public IReadOnlyList<ToolCall> Calls => _calls;

    public ToolCallChunk Push(string text)
    {
        _buf.Append(text);
        var content = new StringBuilder();
        var deltas = new List<ToolCallDelta>();
        Run(content, deltas, final: false);
        return new ToolCallChunk(content.ToString(), deltas);
    }

    /// <summary>The end of the stream: held-back text is released and an open call is closed as it stands.</summary>
    public ToolCallChunk Flush()
    {
        var content = new StringBuilder();
        var deltas = new List<ToolCallDelta>();
        Run(content, deltas, final: true);
        return new ToolCallChunk(content.ToString(), deltas);
    }

    void Run(StringBuilder content, List<ToolCallDelta> deltas, bool final)
    {
        while (true)
        {
            var s = _buf.ToString();
            switch (_state)
            {
                case State.Content:
                {
                    int at = -1;
                    string? marker = null;
                    foreach (var m in ContentMarkers)
                    {
                        int i = s.IndexOf(m, StringComparison.Ordinal);
                        if (i >= 0 && (at < 0 || i < at)) { at = i; marker = m; }
                    }
                    if (marker is not null)
                    {
                        content.Append(s, 0, at);
                        Consume(at + marker.Length);
                        _state = marker == QwenBegin ? State.Qwen : marker == DsCallsBegin ? State.DsSection : State.DsHeader;
                        BeginCall();
                        continue;
                    }
                    int hold = final ? 0 : ContentMarkers.Max(m => ReasoningParser.HeldBack(s, m));
                    content.Append(s, 0, s.Length - hold);
                    Consume(s.Length - hold);
                    return;
                }
                case State.DsSection:
                {
                    int ws = 0;
                    while (ws < s.Length && char.IsWhiteSpace(s[ws])) ws++;
                    var rest = s[ws..];
                    if (rest.StartsWith(DsCallBegin, StringComparison.Ordinal)) { Consume(ws + DsCallBegin.Length); BeginCall(); _state = State.DsHeader; continue; }
                    if (rest.StartsWith(DsCallsEnd, StringComparison.Ordinal)) { Consume(ws + DsCallsEnd.Length); _state = State.Content; continue; }
                    if (!final && (DsCallBegin.StartsWith(rest, StringComparison.Ordinal) || DsCallsEnd.StartsWith(rest, StringComparison.Ordinal))) return;
                    _state = State.Content; // anything else ends the section; it is content
                    if (final && s.Length == 0) return;
                    continue;
                }
                case State.DsHeader:
                {
                    int sep = s.IndexOf(DsSep, StringComparison.Ordinal);
                    if (sep < 0)
                    {
                        if (!final) return;
                        GiveBack(content, DsCallBegin + s);
                        return;
                    }
                    int after = sep + DsSep.Length;
                    if (after >= s.Length && !final) return;
                    if (after < s.Length && s[after] is '{' or '[')
                    {
                        // V3.1: NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>
                        StartCall(s[..sep].Trim(), deltas);
                        Consume(after);
                        _state = State.DsArgs;
                        continue;
                    }
                    int nl = s.IndexOf('\n', after);
                    if (nl < 0)
                    {
                        if (!final) return;
                        StartCall(s[after..].Trim(), deltas);
                        Consume(s.Length);
                        EndCall(deltas);
                        return;
                    }
                    StartCall(s[after..nl].Trim(), deltas);
                    Consume(nl + 1);
                    _state = State.DsFence;
                    continue;
                }
                case State.DsFence:
                {
                    const string Fence = "```json\n", Bare = "```\n";
                    if (s.StartsWith(Fence, StringComparison.Ordinal)) Consume(Fence.Length);
                    else if (s.StartsWith(Bare, StringComparison.Ordinal)) Consume(Bare.Length);
                    else if (!final && (Fence.StartsWith(s, StringComparison.Ordinal) || Bare.StartsWith(s, StringComparison.Ordinal))) return;
                    _state = State.DsArgs;
                    continue;
                }
                case State.DsArgs:
                {
                    int end = s.IndexOf(DsCallEnd, StringComparison.Ordinal);
                    if (end >= 0)
                    {
                        var args = s[..end];
                        if (args.EndsWith("```", StringComparison.Ordinal)) args = args[..^3];
                        if (args.EndsWith('\n')) args = args[..^1];
                        _args.Append(args);
                        Consume(end + DsCallEnd.Length);
                        EmitArgs(deltas, _args.Length);
                        EndCall(deltas);
                        _state = State.DsSection;
                        continue;
                    }
                    int hold = final ? 0 : DsArgsEnds.Max(m => ReasoningParser.HeldBack(s, m));
                    _args.Append(s, 0, s.Length - hold);
                    Consume(s.Length - hold);
                    EmitArgs(deltas, _args.Length);
                    if (final) EndCall(deltas);
                    return;
                }
                case State.Qwen:
                    if (ScanQwen(s, content, deltas, final)) continue;
                    return;
            }
        }
    }

    void Consume(int n) => _buf.Remove(0, n);

    void BeginCall()
    {
        _name = null;
        _args.Clear();
        _argsEmitted = 0;
        _started = false;
        _raw.Clear();
        _depth = 0;
        _argsStart = _argsEnd = _nameStart = -1;
        _inString = _escape = _closed = _expectValue = false;
        _lastString = _key = null;
    }

    void StartCall(string name, List<ToolCallDelta> deltas)
    {
        _name = name;
        _started = true;
        _calls.Add(new ToolCall(_idPrefix + _calls.Count, name, ""));
        deltas.Add(new ToolCallDelta(_calls.Count - 1, _calls[^1].Id, name, ""));
    }

    void EmitArgs(List<ToolCallDelta> deltas, int upTo)
    {
        if (!_started || upTo <= _argsEmitted) return;
        var piece = _args.ToString(_argsEmitted, upTo - _argsEmitted);
        _argsEmitted = upTo;
        _calls[^1] = _calls[^1] with { Arguments = _calls[^1].Arguments + piece };
        deltas.Add(new ToolCallDelta(_calls.Count - 1, null, null, piece));
    }

    void EndCall(List<ToolCallDelta> deltas)
    {
        if (_started && _argsEmitted == 0 && _calls[^1].Arguments.Length == 0)
        {
            _calls[^1] = _calls[^1] with { Arguments = "{}" };
            deltas.Add(new ToolCallDelta(_calls.Count - 1, null, null, "{}"));
        }
        _started = false;
    }

    void GiveBack(StringBuilder content, string text)
    {
        content.Append(text);
        _buf.Clear();
        _state = State.Content;
    }

    /// <summary>Scans Qwen call JSON; true when the call ended and the state changed.</summary>
    bool ScanQwen(string s, StringBuilder content, List<ToolCallDelta> deltas, bool final)
    {
        int i = 0;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (_closed || (_depth == 0 && !_inString && c == '<'))
            {
                // After the object: whitespace, then </tool_call>.
                if (char.IsWhiteSpace(c)) { _raw.Append(c); continue; }
                var rest = s[i..];
                if (rest.StartsWith(QwenEnd, StringComparison.Ordinal))
                {
                    Consume(i + QwenEnd.Length);
                    FinishQwen(content, deltas, QwenBegin + _raw + QwenEnd);
                    return true;
                }
                if (!final && QwenEnd.StartsWith(rest, StringComparison.Ordinal)) { Consume(i); return false; }
                // Something else after the object: the call ends here; the rest is content.
                Consume(i);
                FinishQwen(content, deltas, QwenBegin + _raw);
                return true;
            }
            _raw.Append(c);
            int pos = _raw.Length - 1;
            if (_inString)
            {
                if (_escape) _escape = false;
                else if (c == '\\') _escape = true;
                else if (c == '"')
                {
                    _inString = false;
                    if (_depth == 1) _lastString = _raw.ToString(_stringStart, pos + 1 - _stringStart);
                    if (_nameStart >= 0 && _depth == 1 && _key == "name") { TryName(_raw.ToString(_nameStart, pos + 1 - _nameStart), deltas); _nameStart = -1; }
                    if (_argsStart >= 0 && _argsEnd < 0 && _depth == 1) _argsEnd = pos + 1;
                }
                continue;
            }
            if (char.IsWhiteSpace(c)) continue;
            if (_expectValue && _depth == 1)
            {
                _expectValue = false;
                if (_key is "arguments" or "parameters") _argsStart = pos;
                if (_key == "name" && c == '"') _nameStart = pos;
            }
            switch (c)
            {
                case '"': _inString = true; _stringStart = pos; break;
                case '{' or '[': _depth++; break;
                case '}' or ']':
                    _depth--;
                    if (_argsStart >= 0 && _argsEnd < 0 && _depth == 1) _argsEnd = pos + 1;
                    if (_depth <= 0) { _closed = true; if (_argsStart >= 0 && _argsEnd < 0) _argsEnd = TrimEndIndex(pos); }
                    break;
                case ':' when _depth == 1:
                    _key = _lastString is null ? null : Unquote(_lastString);
                    _expectValue = true;
                    break;
                case ',' when _depth == 1:
                    if (_argsStart >= 0 && _argsEnd < 0) _argsEnd = TrimEndIndex(pos);
                    break;
            }
        }
        Consume(s.Length);
        StreamQwenArgs(deltas);
        if (final) FinishQwen(content, deltas, QwenBegin + _raw);
        return final;
    }

    int TrimEndIndex(int pos)
    {
        while (pos > _argsStart && char.IsWhiteSpace(_raw[pos - 1])) pos--;
        return pos;
    }

    static string? Unquote(string json)
    {
        try { return JsonDocument.Parse(json).RootElement.GetString(); }
        catch (JsonException) { return null; }
    }

    void TryName(string json, List<ToolCallDelta> deltas)
    {
        if (_started || Unquote(json) is not string name) return;
        StartCall(name, deltas);
        StreamQwenArgs(deltas);
    }

    void StreamQwenArgs(List<ToolCallDelta> deltas)
    {
        if (!_started || _argsStart < 0) return;
        // Scalars (numbers, literals) end only at ',' or '}', so they are streamed once complete.
        char first = _raw[_argsStart];
        int upTo = _argsEnd >= 0 ? _argsEnd : first is '{' or '[' or '"' ? _raw.Length : -1;
        if (upTo < 0) return;
        _args.Clear();
        _args.Append(_raw.ToString(_argsStart, upTo - _argsStart));
        EmitArgs(deltas, _args.Length);
    }

    void FinishQwen(StringBuilder content, List<ToolCallDelta> deltas, string rawBlock)
    {
        if (!_started)
        {
            content.Append(rawBlock); // no name: not a tool call after all
        }
        else
        {
            StreamQwenArgs(deltas);
            EndCall(deltas);
        }
        _state = State.Content;
        BeginCall();
    }
}
