using System.Text.Json;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Cli;

public class InspectBenchTests
{
    [GoldenFact]
    public void InspectReportsFp8BytesAndTheLatentCache()
    {
        var r = CliHarness.Run("inspect", "--model", Golden.File("hf", "v3_fp8")!, "--json");
        Assert.Equal(0, r.ExitCode);
        var d = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal("DeepseekV3ForCausalLM", d.GetProperty("architecture").GetString());
        // one byte per FP8 weight: q_a/q_b/kv_a/kv_b/o and the dense, routed and shared expert projections
        Assert.Equal(1_638_912, d.GetProperty("weight_bytes_by_type").GetProperty("F8_E4M3").GetInt64());
        // 3 layers x (kv_lora_rank 112 + qk_rope_head_dim 32) x 4 bytes
        Assert.Equal(3 * (112 + 32) * 4, d.GetProperty("kv_bytes_per_token").GetInt64());
        Assert.Equal(3 * 4 * (48 + 32 + 40) * 4, d.GetProperty("mha_kv_bytes_per_token").GetInt64());
        Assert.True(d.GetProperty("active_parameters").GetInt64() < d.GetProperty("total_parameters").GetInt64());
    }

    [GoldenFact]
    public void BenchJsonHasBothTestsWithPositiveRates()
    {
        var r = CliHarness.Run("bench", "--model", Golden.File("llamacpp", "qwen2-tiny-f32.gguf")!,
            "-p", "8", "-n", "4", "-r", "2", "--json", "--no-roofline");
        Assert.Equal(0, r.ExitCode);
        var d = JsonDocument.Parse(r.Out).RootElement;
        var results = d.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(["pp8", "tg4"], results.Select(x => x.GetProperty("test").GetString()!).ToArray());
        foreach (var x in results)
        {
            Assert.True(x.GetProperty("median_tps").GetDouble() > 0);
            Assert.True(x.GetProperty("min_tps").GetDouble() <= x.GetProperty("max_tps").GetDouble());
            Assert.Equal(2, x.GetProperty("repetitions").GetInt32());
        }
        Assert.True(d.GetProperty("peak_working_set_bytes").GetInt64() > 0);
    }

    [GoldenFact]
    public void BenchProfileTimesThePhasesOfEachTest()
    {
        var r = CliHarness.Run("bench", "--model", Golden.File("llamacpp", "qwen2-tiny-f32.gguf")!,
            "-p", "8", "-n", "4", "-r", "1", "--json", "--no-roofline", "--profile");
        Assert.Equal(0, r.ExitCode);
        var profile = JsonDocument.Parse(r.Out).RootElement.GetProperty("profile").EnumerateArray().ToArray();
        Assert.Equal(["pp8", "tg4"], profile.Select(x => x.GetProperty("test").GetString()!).ToArray());
        Assert.Equal([1, 4], profile.Select(x => x.GetProperty("passes").GetInt32()).ToArray());
        foreach (var x in profile)
        {
            var phases = x.GetProperty("phases");
            double total = x.GetProperty("total_ms").GetDouble(), timed = phases.EnumerateObject().Sum(ph => ph.Value.GetDouble());
            Assert.True(phases.GetProperty("Attention").GetDouble() > 0 && phases.GetProperty("DenseFeedForward").GetDouble() > 0);
            Assert.Equal(0, phases.GetProperty("Router").GetDouble()); // a dense model routes nothing
            Assert.True(timed > 0 && timed <= total * 1.0001, $"phases {timed} ms of {total} ms");
        }
        var text = CliHarness.Run("bench", "--model", Golden.File("llamacpp", "qwen2-tiny-f32.gguf")!, "-p", "8", "-n", "0", "-r", "1", "--no-roofline", "--profile");
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("profile of pp8: 1 passes", text.Out);
        Assert.Contains("(outside the phases)", text.Out);
    }
}
