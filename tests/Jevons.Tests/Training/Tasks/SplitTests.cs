using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training.Tasks;

public class SplitTests
{
    [Theory]
    [InlineData("arithmetic", 100_000)]
    [InlineData("countdown", 10_000)]
    public void TrainAndTestAreDisjoint(string name, int count)
    {
        var task = ReasoningTasks.Get(name);
        var train = new HashSet<string>(StringComparer.Ordinal);
        var test = new HashSet<string>(StringComparer.Ordinal);
        var a = new TaskRng(1);
        var b = new TaskRng(2);
        for (int i = 0; i < count; i++)
        {
            train.Add(task.Sample(ref a, Split.Train).Question);
            test.Add(task.Sample(ref b, Split.Test).Question);
        }
        Assert.Empty(train.Intersect(test));
        Assert.All(test, q => Assert.Equal(Split.Test, ReasoningTasks.SplitOf(task, q)));
        Assert.True(test.Count > count / 2, $"only {test.Count} distinct test problems in {count}");
    }

    [Fact]
    public void AboutOneProblemInTenIsATestProblem()
    {
        int tests = 0;
        for (int a = 0; a < 100; a++)
            for (int b = 0; b < 100; b++)
                if (ReasoningTasks.SplitOf($"What is {a} + {b}?") == Split.Test) tests++;
        Assert.InRange(tests, 900, 1100);
    }

    [Fact]
    public void UnknownTaskNamesAreRejected()
    {
        var e = Assert.Throws<JevonsException>(() => ReasoningTasks.Get("sudoku"));
        Assert.Contains("arithmetic, countdown", e.Message);
    }
}
