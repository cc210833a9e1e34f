using System.Text.Json;
using Jevons.Tests.Formats;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>run, chat and bench generate through the inference engine (scheduler, paged KV, prefix cache).</summary>
public class EngineCliTests
{
    static string Model => Golden.File("llamacpp", "llama-tiny-f32.gguf")!;

    static int[] RunIds(params string[] extra)
    {
        var r = CliHarness.Run(["run", "--model", Model, "--ids", "5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22", "-n", "6",
            "--temperature", "0", "--ignore-eos", "--print-ids", .. extra]);
        Assert.True(r.ExitCode == 0, r.Error);
        return JsonSerializer.Deserialize<int[]>(r.Out)!;
    }

    [GoldenFact]
    public void RunGivesTheSameIdsWhateverTheEngineOptions()
    {
        var plain = RunIds();
        Assert.Equal(6, plain.Length);
        Assert.Equal(plain, RunIds("--max-batch-tokens", "5"));      // the prompt in four chunks
        Assert.Equal(plain, RunIds("--kv-budget", "2blocks"));       // 18 + 6 tokens fit 2 blocks of 16
        Assert.Equal(plain, RunIds("--kv-budget", "64MiB"));
        Assert.Equal(6, RunIds("--kv-type", "bf16").Length);
    }

    [GoldenFact]
    public void ACacheDirectoryIsReusedAcrossRuns()
    {
        using var dir = new TempDir();
        var first = RunIds("--cache-dir", dir.Path);
        Assert.Single(Directory.GetFiles(dir.Path, "*.kvblock"));    // one full block of 16 positions
        Assert.Equal(first, RunIds("--cache-dir", dir.Path));
        File.WriteAllBytes(Directory.GetFiles(dir.Path, "*.kvblock")[0], [1, 2, 3]);
        var r = CliHarness.Run("run", "--model", Model, "--ids", "5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22", "-n", "6",
            "--temperature", "0", "--ignore-eos", "--print-ids", "--cache-dir", dir.Path);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(JsonSerializer.Serialize(first), r.Out.Trim());
        Assert.Single(r.ErrorLines, l => l.StartsWith("warning: prefix cache: ignoring", StringComparison.Ordinal) && l.Contains("bad magic"));
    }

    [GoldenFact]
    public void BadEngineOptionsGetOneLine()
    {
        var r = CliHarness.Run("run", "--model", Model, "--ids", "5,6", "-n", "2", "--kv-budget", "3XB");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: kv-budget '3XB' is not a size", r.Error);
        r = CliHarness.Run("run", "--model", Model, "--ids", "5,6", "-n", "2", "--kv-type", "q4");
        Assert.Contains("error: --kv-type 'q4': expected f32, f16 or bf16", r.Error);
        r = CliHarness.Run("run", "--model", Model, "--ids", "5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20", "-n", "20", "--kv-budget", "1blocks");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("needs 3 KV blocks of 16 tokens", Assert.Single(r.ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal)));
    }

    [GoldenFact]
    public void ChatReusesTheConversationThroughThePrefixCache()
    {
        var r = CliHarness.RunWithInput("hello there, how are you today?\nand now?\n/exit\n",
            "chat", "--model", Model, "--temperature", "0", "-n", "8", "--verbose");
        Assert.True(r.ExitCode == 0, r.Error);
        var usage = r.ErrorLines.Where(l => l.Contains("from the prefix cache")).ToArray();
        Assert.Equal(2, usage.Length);
        Assert.Contains(" 0 from the prefix cache", usage[0]);
        // The second turn starts with the whole first turn: at least one full block comes back.
        int cached = int.Parse(usage[1].Split(',')[1].Trim().Split(' ')[0]);
        Assert.True(cached >= 16 && cached % 16 == 0, usage[1]);
    }

    [GoldenFact]
    public void BenchReportsConcurrencyLevelsAndSharedPrefix()
    {
        var r = CliHarness.Run("bench", "--model", Model, "-p", "8", "-n", "4", "-r", "1", "--json", "--no-roofline",
            "--concurrency", "1,2,4", "--shared-prefix", "40");
        Assert.True(r.ExitCode == 0, r.Error);
        var d = JsonDocument.Parse(r.Out).RootElement;
        var levels = d.GetProperty("concurrency").EnumerateArray().ToArray();
        Assert.Equal([1, 2, 4], levels.Select(x => x.GetProperty("sequences").GetInt32()));
        foreach (var x in levels)
        {
            Assert.True(x.GetProperty("aggregate_tps").GetDouble() > 0);
            Assert.True(x.GetProperty("decode_tps").GetDouble() > 0);   // tokens after the last stream's first one
            Assert.True(x.GetProperty("per_stream_tps").GetDouble() > 0);
            Assert.True(x.GetProperty("ttft_ms").GetDouble() > 0);
        }
        var sp = d.GetProperty("shared_prefix");
        Assert.Equal(40, sp.GetProperty("tokens").GetInt32());
        Assert.Equal(56, sp.GetProperty("prompt_tokens").GetInt32());   // -p 8 is not past the prefix: 40 + 16
        Assert.Equal(32, sp.GetProperty("cached_tokens").GetInt32());   // floor(40 / 16) x 16
        Assert.True(sp.GetProperty("cold_ttft_ms").GetDouble() > 0 && sp.GetProperty("cached_ttft_ms").GetDouble() > 0);
        Assert.Equal(["pp8", "tg4"], d.GetProperty("results").EnumerateArray().Select(x => x.GetProperty("test").GetString()!));

        // A prompt longer than the prefix: -p tokens each, the first 20 shared (one full block of 16 cached).
        var longer = CliHarness.Run("bench", "--model", Model, "-p", "48", "-n", "0", "-r", "1", "--json", "--no-roofline", "--shared-prefix", "20");
        Assert.True(longer.ExitCode == 0, longer.Error);
        var lp = JsonDocument.Parse(longer.Out).RootElement.GetProperty("shared_prefix");
        Assert.Equal(48, lp.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(16, lp.GetProperty("cached_tokens").GetInt32());

        var plain = CliHarness.Run("bench", "--model", Model, "-p", "8", "-n", "4", "-r", "1", "--json", "--no-roofline");
        Assert.False(JsonDocument.Parse(plain.Out).RootElement.TryGetProperty("concurrency", out _));
    }

    [GoldenFact]
    public void BenchIdenticalStreamsRunOnePromptForAll()
    {
        // Distinct random prompts: the streams' greedy completions differ; one prompt for all (llama-batched-bench's
        // workload): every stream generates the same tokens, so the batch gave each of them the bits of one.
        var distinct = CliHarness.Run("bench", "--model", Model, "-p", "8", "-n", "6", "-r", "1", "--json", "--no-roofline", "--concurrency", "4");
        Assert.True(distinct.ExitCode == 0, distinct.Error);
        var d = JsonDocument.Parse(distinct.Out).RootElement;
        Assert.False(d.GetProperty("identical_streams").GetBoolean());
        Assert.True(d.GetProperty("concurrency")[0].GetProperty("distinct_completions").GetInt32() > 1);

        var same = CliHarness.Run("bench", "--model", Model, "-p", "8", "-n", "6", "-r", "1", "--json", "--no-roofline", "--concurrency", "1,4", "--identical-streams");
        Assert.True(same.ExitCode == 0, same.Error);
        var s = JsonDocument.Parse(same.Out).RootElement;
        Assert.True(s.GetProperty("identical_streams").GetBoolean());
        foreach (var level in s.GetProperty("concurrency").EnumerateArray())
        {
            Assert.Equal(1, level.GetProperty("distinct_completions").GetInt32());
            Assert.True(level.GetProperty("decode_tps").GetDouble() > 0);
        }

        var alone = CliHarness.Run("bench", "--model", Model, "-p", "8", "-n", "4", "--no-roofline", "--identical-streams");
        Assert.NotEqual(0, alone.ExitCode);
        Assert.Contains("--identical-streams goes with --concurrency", alone.Error);
    }
}
