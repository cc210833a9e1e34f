using Jevons.Tokenization;
using Jevons.Training.Tasks;

namespace Jevons.Tests.Training.Tasks;

/// <summary>One tokenizer trained on the task corpus, shared by the tests that need it.</summary>
public static class TaskTokenizerFixture
{
    static readonly Lazy<Tokenizer> Lazy = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), $"jevons-task-tokenizer-{Environment.ProcessId}");
        return TaskTokenizer.Train(dir, vocabSize: 1024, samplesPerTask: 3000, seed: 1);
    });

    public static Tokenizer Tokenizer => Lazy.Value;
}
