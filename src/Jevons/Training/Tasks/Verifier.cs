namespace Jevons.Training.Tasks;

/// <summary>
/// Scores a completion against its problem: is the last \boxed{...} a right answer (checked by
/// the problem's task), and is the layout the one taught (exactly one &lt;think&gt;…&lt;/think&gt;
/// block at the start, an answer after it, \boxed{...} alone on the last line). A trailing EOS
/// token written out as text is ignored.
/// </summary>
public static class Verifier
{
    const string Eos = "<｜end▁of▁sentence｜>";

    public static Verdict Score(Problem problem, string completion) =>
        Score(ReasoningTasks.Get(problem.Task), problem, completion);

    public static Verdict Score(IReasoningTask task, Problem problem, string completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var text = completion.TrimEnd();
        if (text.EndsWith(Eos, StringComparison.Ordinal)) text = text[..^Eos.Length].TrimEnd();

        string? formatError = FormatError(text);
        var boxed = LastBoxed(text);
        if (boxed is null) return new Verdict(false, false, null, formatError ?? "no \\boxed{...} answer");
        bool correct = task.IsCorrect(problem, boxed, out var wrong);
        return new Verdict(correct, formatError is null, boxed, wrong ?? formatError);
    }

    static string? FormatError(string text)
    {
        if (!text.StartsWith(Completion.ThinkOpen, StringComparison.Ordinal)) return "does not start with <think>";
        if (Count(text, Completion.ThinkOpen) != 1) return "more than one <think>";
        int close = text.IndexOf(Completion.ThinkClose, StringComparison.Ordinal);
        if (close < 0) return "no </think>";
        if (Count(text, Completion.ThinkClose) != 1) return "more than one </think>";
        var after = text[(close + Completion.ThinkClose.Length)..];
        if (after.Trim().Length == 0) return "no answer after </think>";
        if (text.Contains(Eos, StringComparison.Ordinal)) return "text after the end of sentence";
        var lastLine = after[(after.LastIndexOf('\n') + 1)..].Trim();
        if (!lastLine.StartsWith("\\boxed{", StringComparison.Ordinal) || BoxedEnd(lastLine, "\\boxed{".Length) != lastLine.Length - 1)
            return "the last line is not \\boxed{...}";
        return null;
    }

    /// <summary>The content of the last \boxed{...} (braces matched), or null.</summary>
    public static string? LastBoxed(string text)
    {
        int at = text.LastIndexOf("\\boxed{", StringComparison.Ordinal);
        if (at < 0) return null;
        int open = at + "\\boxed{".Length;
        int end = BoxedEnd(text, open);
        return end < 0 ? null : text[open..end];
    }

    /// <summary>Index of the brace closing the one before <paramref name="open"/>, or -1.</summary>
    static int BoxedEnd(string text, int open)
    {
        int depth = 1;
        for (int i = open; i < text.Length; i++)
        {
            if (text[i] == '{') depth++;
            else if (text[i] == '}' && --depth == 0) return i;
        }
        return -1;
    }

    static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
