namespace Jevons.Training.Tasks;

/// <summary>
/// A task whose worked solution is only the layout: "&lt;think&gt;\n\n&lt;/think&gt;\n\boxed{answer}" (an empty think
/// block, the reference answer). SFT on it gives the R1-Zero ablation's starting model: it knows the format and
/// has seen the answers, but no reasoning trace. Everything else is the wrapped task's.
/// </summary>
public sealed class AnswerOnlyTask(IReasoningTask inner) : IReasoningTask
{
    public string Name => inner.Name;

    public Problem Sample(ref TaskRng rng, Split split, Difficulty? difficulty = null) => inner.Sample(ref rng, split, difficulty);

    public string Solve(Problem problem) => $"<think>\n\n</think>\n\\boxed{{{problem.Answer}}}";

    public bool IsCorrect(Problem problem, string answer, out string? reason) => inner.IsCorrect(problem, answer, out reason);

    public Problem? Parse(string question) => inner.Parse(question);
}
