using Jevons.Fuzz;
using Jevons.Tests.Formats;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Fuzz;

/// <summary>
/// A short fuzz campaign per format against the readers and the CLI's load → tokenize → forward path:
/// every case ends ok or in a clean <see cref="JevonsException"/>; none in another exception type, a
/// hang or an allocation over the cap. The soak (docs/reliability.md) runs the same engine longer.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    [Fact]
    public void EverySeedRunsCleanly()
    {
        var harness = new Harness();
        using var tmp = new TempDir();
        foreach (var seed in TinyModels.Gguf.Concat(TinyModels.HuggingFace))
        {
            var path = Campaign.Materialize(new Campaign.Case(seed, seed.Kind == SeedKind.Gguf ? Seed.GgufFileName : "config.json",
                seed.Kind == SeedKind.Gguf ? seed.Files[Seed.GgufFileName] : seed.Files["config.json"]), Path.Combine(tmp.Path, seed.Name));
            var r = harness.Run(path);
            Assert.True(r.Outcome == Outcome.Ok, $"{seed.Name}: {r.Detail}");
            Assert.InRange(seed.Files.Values.Sum(b => (long)b.Length), 1, 256 << 10);
        }
    }

    [Theory]
    [InlineData(FuzzFormat.Gguf, 1500)]
    [InlineData(FuzzFormat.Safetensors, 700)]
    [InlineData(FuzzFormat.Json, 700)]
    public void CampaignFindsNoInternalErrorsHangsOrOverMemory(FuzzFormat format, int cases)
    {
        var campaign = new Campaign(TinyModels.Gguf, TinyModels.HuggingFace) { Log = output.WriteLine };
        var stats = campaign.Run(format, cases, seed: 20261201);
        output.WriteLine($"{format}: {stats}");
        Assert.Equal(cases, stats.Cases);
        Assert.True(stats.Bad == 0, string.Join("\n", stats.Failures.Select(kv => $"{kv.Value} x {kv.Key}")));
        // The mutators must reach past the first check: both outcomes occur often.
        Assert.True(stats[Outcome.Ok] > cases / 50, $"only {stats[Outcome.Ok]} cases loaded and ran");
        Assert.True(stats[Outcome.Clean] > cases / 4, $"only {stats[Outcome.Clean]} cases were refused");
    }

    [Fact]
    public void MinimizerRevertsIrrelevantChanges()
    {
        byte[] seed = [1, 2, 3, 4, 5, 6, 7, 8];
        byte[] failing = [9, 2, 9, 4, 9, 6, 9, 8]; // only byte 4 matters
        var min = Minimizer.Minimize(seed, failing, b => b[4] == 9);
        Assert.Equal([1, 2, 3, 4, 9, 6, 7, 8], min);
    }
}
