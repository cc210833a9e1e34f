namespace Jevons.Inference;

/// <summary>
/// Watches streamed text for stop sequences. Text that could still be the start of a stop sequence
/// is held back until it is known not to be one, so a stop string is never partly emitted.
/// </summary>
public sealed class StopSequences
{
    readonly string[] _stops;
    string _pending = "";

    public StopSequences(IReadOnlyList<string> stops)
    {
        _stops = stops.Where(s => s.Length > 0).ToArray();
    }

    /// <summary>True once a stop sequence was seen; nothing more is emitted after it.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The stop sequence that matched, when <see cref="Stopped"/>.</summary>
    public string? Matched { get; private set; }

    /// <summary>Adds newly decoded text; returns the text that is safe to emit now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (_stops.Length == 0) return text;
        var buffer = _pending + text;
        int cut = -1;
        foreach (var stop in _stops)
        {
            int at = buffer.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut))
            {
                cut = at;
                Matched = stop;
            }
        }
        if (cut >= 0)
        {
            Stopped = true;
            _pending = "";
            return buffer[..cut];
        }
        int hold = 0;
        foreach (var stop in _stops)
            for (int k = Math.Min(stop.Length - 1, buffer.Length); k > hold; k--)
                if (buffer.AsSpan(buffer.Length - k).SequenceEqual(stop.AsSpan(0, k)))
                {
                    hold = k;
                    break;
                }
        _pending = buffer[^hold..];
        return buffer[..^hold];
    }

    /// <summary>Emits whatever was held back (end of generation without a stop).</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }
}
