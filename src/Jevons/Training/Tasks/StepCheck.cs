using System.Globalization;
using System.Text.RegularExpressions;

namespace Jevons.Training.Tasks;

/// <summary>One worked step a completion's think block states, <c>a op b = c</c>, and whether it holds.</summary>
/// <param name="End">The index in the completion just past the step's result.</param>
/// <param name="Holds">The left side evaluates (exact integer arithmetic) to the right side.</param>
public readonly record struct WorkedStep(int End, bool Holds);

/// <summary>
/// Finds and checks the equations a think block states — Countdown's one-shot moves (<c>88+56=144</c>), arithmetic's
/// column steps (<c>8+2+1=11</c>) and results (<c>9865+9262=19127</c>) — the rule-based step reward of GRPO's process
/// supervision (DeepSeekMath §4.1.3, with a rule where the paper has a learned reward model). An equation is a
/// maximal run of integers joined by + - * / directly followed by <c>=</c> and an integer (so <c>5-3-0=2</c> is one
/// step, never its tail <c>3-0=2</c>); the left side is evaluated with the usual precedence and exact division.
/// Text after <c>&lt;/think&gt;</c> is the answer and is not a step.
/// </summary>
public static partial class StepCheck
{
    [GeneratedRegex(@"(?<![\d+\-*/()])(\d{1,9}(?:[+\-*/]\d{1,9}){1,7})=(-?\d{1,12})(?![\d(])")]
    private static partial Regex EquationPattern();

    /// <summary>The steps in <paramref name="completion"/> up to its first &lt;/think&gt; (all of it when there is none), in order.</summary>
    public static IReadOnlyList<WorkedStep> Steps(string completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        int close = completion.IndexOf(Completion.ThinkClose, StringComparison.Ordinal);
        var think = close < 0 ? completion : completion[..close];
        var steps = new List<WorkedStep>();
        foreach (Match m in EquationPattern().Matches(think))
        {
            bool holds = ExprParser.TryParse(m.Groups[1].Value)?.Evaluate() is long v
                && long.TryParse(m.Groups[2].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var stated)
                && v == stated;
            steps.Add(new WorkedStep(m.Index + m.Length, holds));
        }
        return steps;
    }
}
