using System.Text.Json;
using Jevons.Training;
using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training;

/// <summary>The built-in SFT pipeline learns a task: a micro model (0.21 M parameters), about two minutes of training on 2 cores.</summary>
public sealed class TaskSftTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), $"jevons-tasksft-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// Easy arithmetic (a ± b, 0–99) with worked solutions: the loss falls to a fraction of its start and the held-out
    /// exact-answer accuracy (greedy through the engine, the verifier scoring) is far above chance — a guess of an integer
    /// in −99…198 is right 1 time in 298, and even the right number of digits is no help without the columns.
    /// </summary>
    [Fact]
    public void AShortRunOnEasyArithmeticLearnsFarAboveChance()
    {
        var sft = new SftOptions
        {
            Train = new TrainOptions
            {
                Steps = 5000, BatchTokens = 512, MaxSequence = 160, LearningRate = 3e-3f, MinLearningRate = 3e-4f, WarmupSteps = 20,
                Threads = 2, Seed = 1,
            },
            OutputDirectory = _dir, CheckpointEvery = 0, LogEvery = 50,
        };
        var tasks = new TaskSftOptions { Difficulty = Difficulty.Easy, TrainExamples = 6000, VocabSize = 512, EvalProblems = 40, MaxNewTokens = 160 };
        var log = new StringWriter();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        TaskSft.Run("micro", sft, tasks, log, adjust: c => c with { HiddenSize = 64, Heads = 4, KvLoraRank = 32, IntermediateSize = 192, MoeIntermediateSize = 48 });
        var lines = File.ReadAllLines(Path.Combine(_dir, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var losses = lines.Where(l => l.GetProperty("kind").GetString() == "step").Select(l => l.GetProperty("loss").GetDouble()).ToList();
        double first = losses.Take(5).Average(), last = losses.TakeLast(20).Average();
        double accuracy = lines.Last(l => l.GetProperty("kind").GetString() == "eval").GetProperty("arithmetic").GetDouble();
        string summary = $"loss {first:0.00} → {last:0.00}, held-out accuracy {accuracy:0.00}, {watch.Elapsed.TotalSeconds:0} s\n{log}";
        output.WriteLine(summary);
        Assert.True(last < first / 4, summary);
        Assert.True(accuracy >= 0.25, summary);
    }

}
