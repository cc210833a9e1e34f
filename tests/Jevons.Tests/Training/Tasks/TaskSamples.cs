using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training.Tasks;

/// <summary>Drawing problems from a task and checking them, shared by the task tests.</summary>
static class TaskSamples
{
    /// <summary>n problems of one split from one seed, in draw order.</summary>
    public static List<Problem> Draw(this IReasoningTask task, int n, ulong seed, Split split = Split.Train, Difficulty? d = null)
    {
        var rng = new TaskRng(seed);
        var list = new List<Problem>(n);
        for (int i = 0; i < n; i++) list.Add(task.Sample(ref rng, split, d));
        return list;
    }

    /// <summary>n problems of each split: every worked solution verifies, and every question hashes to the split it was drawn for.</summary>
    public static void AssertSolutionsVerifyInTheirSplit(IReasoningTask task, int n, ulong seed)
    {
        foreach (var split in new[] { Split.Train, Split.Test })
            foreach (var p in task.Draw(n, seed, split))
            {
                var v = Verifier.Score(p, task.Solve(p));
                Assert.True(v.Correct && v.FormatOk, $"{p.Question}: {v.Reason}");
                Assert.Equal(split, ReasoningTasks.SplitOf(task, p.Question));
            }
    }
}
