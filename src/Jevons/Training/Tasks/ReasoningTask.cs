namespace Jevons.Training.Tasks;

/// <summary>Which side of a task's problem space: the two are disjoint by construction.</summary>
public enum Split { Train, Test }

/// <summary>
/// How hard a sampled problem is. Arithmetic: Easy = + and − of 1–2 digit numbers, Medium = + −
/// of up to 4 digits and ×, Hard = three-number expressions. Countdown: Easy = 3 numbers, Medium
/// and Hard = 4 numbers. No difficulty (null) samples the task's full mix.
/// </summary>
public enum Difficulty { Easy, Medium, Hard }

/// <summary>
/// One problem: the user message (<see cref="Question"/>) and the reference answer as it goes in
/// \boxed{} (a number; for Countdown one solving expression, though any valid one scores).
/// </summary>
public sealed record Problem(string Task, string Question, string Answer);

/// <summary>What <see cref="Verifier.Score"/> found in a completion.</summary>
/// <param name="Correct">The last \boxed{...} holds a right answer.</param>
/// <param name="FormatOk">Exactly one &lt;think&gt;…&lt;/think&gt; block first, text after it, and the last line is \boxed{…}.</param>
/// <param name="Extracted">The content of the last \boxed{...}, if any.</param>
/// <param name="Reason">Why it is wrong or malformed (null when both checks pass).</param>
public sealed record Verdict(bool Correct, bool FormatOk, string? Extracted, string? Reason)
{
    /// <summary>1 when correct and well formed, else 0 (the RL reward).</summary>
    public double Reward => Correct && FormatOk ? 1 : 0;
}

/// <summary>
/// A task with checkable answers: it generates problems from a seed, writes the worked
/// completion a model should learn (&lt;think&gt; reasoning &lt;/think&gt; then an answer ending in
/// \boxed{}), and checks an answer.
/// </summary>
public interface IReasoningTask
{
    /// <summary>The registry name ("arithmetic", "countdown").</summary>
    string Name { get; }

    /// <summary>A problem of the given split; only rng advances, so the same rng state gives the same problem.</summary>
    Problem Sample(ref TaskRng rng, Split split, Difficulty? difficulty = null);

    /// <summary>The full worked completion for a problem: "&lt;think&gt;\n…\n&lt;/think&gt;\n…\n\\boxed{…}".</summary>
    string Solve(Problem problem);

    /// <summary>Whether <paramref name="answer"/> (the \boxed{} content) answers the problem.</summary>
    bool IsCorrect(Problem problem, string answer, out string? reason);

    /// <summary>Rebuilds a problem from its question text (with its reference answer), or null when it is not this task's.</summary>
    Problem? Parse(string question);

    /// <summary>The text that decides a question's split: the question itself unless the task spells one problem several ways.</summary>
    string Canonical(string question) => question;
}

/// <summary>The tasks by name, and the split rule they share.</summary>
public static class ReasoningTasks
{
    public static IReadOnlyList<IReasoningTask> All { get; } = [new ArithmeticTask(), new CountdownTask()];

    public static IReasoningTask Get(string name) =>
        All.FirstOrDefault(t => t.Name == name)
        ?? throw new JevonsException($"unknown task '{name}' (known: {string.Join(", ", All.Select(t => t.Name))})");

    /// <summary>
    /// The split a problem belongs to, from a fixed 64-bit FNV-1a hash of its canonical text
    /// (the question, whose numbers the generators write in canonical order; hashed as UTF-16
    /// code units after a version salt): one problem in <see cref="TestModulus"/> is a test
    /// problem. Generators draw until the split matches, so a test problem can never be drawn
    /// for training.
    /// </summary>
    public static Split SplitOf(string canonical)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var c in "jevons-split-v1|") h = (h ^ c) * 0x100000001B3UL;
        foreach (var c in canonical) h = (h ^ c) * 0x100000001B3UL;
        h ^= h >> 29;
        return h % TestModulus == 0 ? Split.Test : Split.Train;
    }

    public const int TestModulus = 10;

    /// <summary>The split of one of <paramref name="task"/>'s questions (by its canonical text).</summary>
    public static Split SplitOf(IReasoningTask task, string question) => SplitOf(task.Canonical(question));
}
