using Jevons.Training;
using Jevons.Tokenization;
using Jevons.Training.Tasks;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Training.Tasks;

public class SftDatasetTests(ITestOutputHelper output)
{
    static Tokenizer T => TaskTokenizerFixture.Tokenizer;

    [Fact]
    public void ExamplesArePromptThenMaskedCompletionEndingInEos()
    {
        var task = new ArithmeticTask();
        var p = task.Parse("What is 4821 + 377?")!;
        var format = ChatFormat.For(T);
        var e = SftDataset.Encode(T, format, task, p);
        var prompt = T.Encode("<｜begin▁of▁sentence｜><｜User｜>What is 4821 + 377?<｜Assistant｜><think>\n", addSpecialTokens: false);
        Assert.Equal(prompt, e.Ids[..prompt.Length]);
        Assert.Equal(prompt.Length, e.PromptLength);
        Assert.Equal(0, e.Ids[0]);
        Assert.Equal(1, e.Ids[^1]);
        Assert.Equal(e.Ids.Length, e.LossMask.Length);
        Assert.All(e.LossMask[..prompt.Length], m => Assert.False(m));
        Assert.All(e.LossMask[prompt.Length..], m => Assert.True(m));
        // Prompt + completion decode to the whole R1 conversation: the think block opens in the prompt.
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>What is 4821 + 377?<｜Assistant｜>" + task.Solve(p) + "<｜end▁of▁sentence｜>", T.Decode(e.Ids));
        Assert.DoesNotContain(4, e.Ids[prompt.Length..]); // no second <think>
    }

    [Fact]
    public void MixesTasksByWeightDeterministicallyAndFiltersLength()
    {
        TaskMix[] mix = [new(new ArithmeticTask(), 3), new(new CountdownTask(), 1)];
        var a = SftDataset.Build(T, mix, 400, seed: 5, maxLength: 512);
        var b = SftDataset.Build(T, mix, 400, seed: 5, maxLength: 512);
        Assert.Equal(a.Select(x => x.Ids), b.Select(x => x.Ids));
        Assert.NotEqual(a.Select(x => x.Ids), SftDataset.Build(T, mix, 400, seed: 6, maxLength: 512).Select(x => x.Ids));
        Assert.InRange(a.Count(x => x.Task == "arithmetic"), 260, 340);
        var short_ = SftDataset.Build(T, mix, 200, seed: 5, maxLength: 60);
        Assert.All(short_, x => Assert.InRange(x.Ids.Length, 1, 60));
        Assert.Throws<JevonsException>(() => SftDataset.Build(T, mix, 1, seed: 5, maxLength: 10));
        Assert.Throws<JevonsException>(() => SftDataset.Build(T, [new(new ArithmeticTask(), 0)], 1, seed: 5, maxLength: 512));
    }

    [Fact]
    public void HardWeightAddsTheHardProblemsBesideTheFullMix()
    {
        IReasoningTask[] tasks = [new ArithmeticTask()];
        double ExpressionShare(TaskSftOptions options)
        {
            var examples = SftDataset.Build(T, TaskSft.Mix(tasks, options), 2000, seed: 3, maxLength: 1024);
            // A three-number expression has two operators between spaces: "What is (17 + 5) * 3?".
            return examples.Count(e => T.Decode(e.Ids[..e.PromptLength]).Split(' ').Count(w => w is "+" or "-" or "*") == 2) / 2000.0;
        }
        Assert.InRange(ExpressionShare(new TaskSftOptions()), 0.22, 0.28);
        Assert.InRange(ExpressionShare(new TaskSftOptions { HardWeight = 0.33 }), 0.40, 0.48); // (0.25 + 0.33) / 1.33 = 0.44
        var atEasy = TaskSft.Mix(tasks, new TaskSftOptions { HardWeight = 0.33, Difficulty = Difficulty.Easy });
        Assert.Equal(Difficulty.Easy, Assert.Single(atEasy).Difficulty); // a set difficulty is the whole mix
        Assert.Throws<JevonsException>(() => TaskSft.Mix(tasks, new TaskSftOptions { HardWeight = -1 }));
    }

    [Fact]
    public void EvaluateScoresAGeneratorOnTestProblems()
    {
        var format = ChatFormat.For(T);
        foreach (var task in ReasoningTasks.All)
        {
            // A perfect generator: it writes the worked solution after the prompt's "<think>\n".
            var perfect = SftDataset.Evaluate(task, prompt => Solve(task, prompt, format), 50, seed: 1, format);
            Assert.Equal(50, perfect.Count);
            Assert.Equal(1.0, perfect.Accuracy);
            Assert.Equal(1.0, perfect.FormatRate);
            Assert.All(perfect.Items, i => Assert.Equal(Split.Test, ReasoningTasks.SplitOf(task, i.Problem.Question)));

            var noThink = SftDataset.Evaluate(task, prompt => "</think>\n\\boxed{1}", 50, seed: 1, format);
            Assert.Equal(1.0, noThink.FormatRate); // the prompt opened the block
            Assert.True(noThink.Accuracy < 0.2);
            var junk = SftDataset.Evaluate(task, prompt => "no idea", 20, seed: 1, format);
            Assert.Equal(0, junk.FormatOk + junk.Correct);
        }
    }

    static string Solve(IReasoningTask task, string prompt, ChatFormat format)
    {
        var question = prompt[(prompt.IndexOf("<｜User｜>") + "<｜User｜>".Length)..prompt.IndexOf("<｜Assistant｜>")];
        return task.Solve(task.Parse(question)!)[format.GenerationSuffix.Length..];
    }

    [Fact]
    public void SolutionsFitTheTokenBudget()
    {
        var format = ChatFormat.For(T);
        foreach (var task in ReasoningTasks.All)
            foreach (Difficulty? d in new Difficulty?[] { null, Difficulty.Easy, Difficulty.Medium, Difficulty.Hard })
            {
                var rng = new TaskRng(3);
                var lengths = new List<int>();
                var reasoning = new List<int>();
                for (int i = 0; i < 2000; i++)
                {
                    var p = task.Sample(ref rng, Split.Train, d);
                    var e = SftDataset.Encode(T, format, task, p);
                    lengths.Add(e.Ids.Length);
                    var solution = task.Solve(p);
                    reasoning.Add(T.Encode(solution[..solution.IndexOf("</think>")], false).Length);
                }
                lengths.Sort();
                reasoning.Sort();
                output.WriteLine($"{task.Name,-10} {d?.ToString() ?? "mix",-6} example tokens p50 {lengths[1000]} p99 {lengths[1980]} max {lengths[^1]}; reasoning p50 {reasoning[1000]} p99 {reasoning[1980]} max {reasoning[^1]}");
                Assert.True(lengths[^1] <= 768, // the tiny-r1 run's --seq 768 keeps every example whole
                    $"{task.Name} {d}: {lengths[^1]} tokens");
            }
    }
}
