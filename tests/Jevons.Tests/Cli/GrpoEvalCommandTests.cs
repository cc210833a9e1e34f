using System.Text.Json;
using Jevons.Training;
using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>`jevons train grpo` and `jevons eval`: one-line flag errors, and short end-to-end runs on the embedded default model.</summary>
public sealed class GrpoEvalCommandTests : IDisposable
{
    static readonly string? Default = Jevons.Cli.Commands.Common.DefaultModel();
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-grpo-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(new[] { "train", "grpo", "-o", "x" }, "option '--from' is required")]
    [InlineData(new[] { "train", "grpo", "--from", "no-such-dir", "-o", "x" }, "--from 'no-such-dir' is not a directory")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--preset", "micro" }, "option '--preset' is for sft")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--clip", "1.5" }, "option '--clip' must be in (0, 1)")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--beta", "-1" }, "option '--beta' must be >= 0")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--task", "chess" }, "unknown --task 'chess'")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x", "--group", "1" }, "option '--group' must be an integer in [2, 256]")]
    [InlineData(new[] { "train", "grpo", "--from", ".", "-o", "x" }, "no tokenizer.json")]
    [InlineData(new[] { "train", "distill", "-o", "x" }, "option '--teacher' is required")]
    [InlineData(new[] { "train", "distill", "--teacher", "no-such-model", "-o", "x" }, "--teacher 'no-such-model' does not exist")]
    [InlineData(new[] { "train", "distill", "--teacher", ".", "-o", "x", "--student-preset", "huge" }, "unknown --student-preset 'huge'")]
    [InlineData(new[] { "train", "distill", "--teacher", ".", "-o", "x", "--preset", "micro" }, "--student-preset (--preset is for sft)")]
    [InlineData(new[] { "eval", "--task", "chess" }, "unknown --task 'chess'")]
    [InlineData(new[] { "eval", "--budget", "0" }, "option '--budget' wants integers from 1")]
    [InlineData(new[] { "eval", "--votes", "three" }, "option '--votes' wants integers from 1 to 256, got 'three'")]
    [InlineData(new[] { "eval", "--plot", "curve.svg" }, "--plot 'curve.svg' must name a .png file")]
    [InlineData(new[] { "eval", "--split", "dev" }, "--split 'dev': expected test or train")]
    [InlineData(new[] { "eval", "--temperature", "-1" }, "option '--temperature' must be >= 0")]
    [InlineData(new[] { "eval", "--log-samples", "/nonexistent-dir/x.jsonl" }, "--log-samples '/nonexistent-dir/x.jsonl': cannot write")]
    public void BadFlagsGiveOneErrorLine(string[] args, string message)
    {
        var r = CliHarness.Run(args);
        Assert.NotEqual(0, r.ExitCode);
        var error = Assert.Single(r.ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains(message, error);
        Assert.DoesNotContain("   at ", r.Error);
    }

    /// <summary>A micro model (random weights, the synthetic 300-id vocabulary) as `train sft` would have exported it.</summary>
    string MicroModel()
    {
        var tok = Path.Combine(_dir, "tok");
        var vocabulary = Jevons.Tokenization.SyntheticVocabulary.Create(300);
        vocabulary.WriteHuggingFace(tok);
        var config = TinyDeepSeekConfig.Preset("micro", 300) with { EosTokenId = vocabulary.EosId, BosTokenId = vocabulary.BosId };
        var dir = Path.Combine(_dir, "micro");
        Jevons.Training.Export.TinyDeepSeekExport.WriteHuggingFace(new TinyDeepSeek(config, new TrainRandom(1)), dir, tok);
        return dir;
    }

    [Fact]
    public void GrpoRunsEndToEndAndExportsLikeSft()
    {
        var output = Path.Combine(_dir, "grpo");
        var r = CliHarness.Run("train", "grpo", "--from", MicroModel(), "-o", output, "--steps", "2", "--questions-per-step", "2", "--group", "4",
            "--max-new-tokens", "24", "--eval-problems", "1", "--threads", "2");
        Assert.True(r.ExitCode == 0, r.Error);
        var lines = r.Out.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("step     2/2 | reward ", StringComparison.Ordinal) && l.Contains("| kl ") && l.Contains("tok/s"));
        Assert.Equal(2, lines.Count(l => l.StartsWith("eval ", StringComparison.Ordinal) && l.Contains("arithmetic test accuracy")));
        using (var loaded = Jevons.Models.LoadedModel.Load(Path.Combine(output, "hf"), new Jevons.Models.ModelOptions { Threads = 1 }))
            Assert.NotNull(loaded.Tokenizer);
        Assert.True(File.Exists(Path.Combine(output, "model.gguf")));
        var metrics = MetricsLog.Read(Path.Combine(output, MetricsLog.FileName));
        Assert.Equal(2, metrics.Count(m => (string?)m["kind"] == "step"));
        Assert.Equal(2, metrics.Count(m => (string?)m["kind"] == "eval"));
        Assert.True(new FileInfo(Path.Combine(output, "plots", "reward.png")).Length > 1000);
        Assert.True(File.Exists(Path.Combine(output, "plots", "accuracy.png")));
        Assert.False(Directory.Exists(Path.Combine(output, "policy-engine")));
        // The output is itself a starting point: the trainer reads back what it wrote.
        Assert.True(TinyDeepSeekExportReads(Path.Combine(output, "hf")) > 10_000);
    }

    static long TinyDeepSeekExportReads(string dir) => Jevons.Training.Export.TinyDeepSeekExport.ReadHuggingFace(dir).ParameterCount;

    [Fact]
    public void EvalTracesAccuracyAgainstTheThinkingBudgetAndPlotsIt()
    {
        if (Default is null) return;
        var plot = Path.Combine(_dir, "curve.png");
        var samples = Path.Combine(_dir, "samples.jsonl");
        var r = CliHarness.Run("eval", "--model", Default, "--task", "arithmetic", "--count", "3", "--budget", "4,none", "--max-new-tokens", "200", "--json", "--plot", plot, "--threads", "2",
            "--log-samples", samples);
        Assert.True(r.ExitCode == 0, r.Error);
        var points = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, points.Count);
        var forced = points.Single(p => p.GetProperty("budget").ValueKind == JsonValueKind.Number);
        var free = points.Single(p => p.GetProperty("budget").ValueKind == JsonValueKind.Null);
        Assert.Equal(4, forced.GetProperty("budget").GetInt32());
        // Forced at 4 reasoning tokens, every forced completion's think block closes within those 4 tokens (a few characters:
        // digits are one token each); the model's own think blocks run to lines of column work. What the model writes after a
        // forced </think> is its own business (today's tiny-r1 starts its reasoning over).
        var logged = File.ReadLines(samples).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(6, logged.Count);
        foreach (var sample in logged)
        {
            string completion = sample.GetProperty("completion").GetString()!;
            int close = completion.IndexOf("</think>", StringComparison.Ordinal);
            if (sample.GetProperty("budget").ValueKind == JsonValueKind.Number) Assert.InRange(close, 0, 24);
            else Assert.True(close is -1 or > 24, completion);
        }
        var png = File.ReadAllBytes(plot);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
    }

    [Fact]
    public void EvalLogsEverySampleWithItsVerdict()
    {
        if (Default is null) return;
        var log = Path.Combine(_dir, "samples.jsonl");
        var r = CliHarness.Run("eval", "--model", Default, "--count", "3", "--votes", "1,2", "--max-new-tokens", "300", "--json", "--log-samples", log, "--threads", "2");
        Assert.True(r.ExitCode == 0, r.Error);
        var rows = File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3 * 1 + 3 * 2, rows.Count);
        var points = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var point in points)
        {
            int k = point.GetProperty("votes").GetInt32();
            var mine = rows.Where(x => x.GetProperty("votes").GetInt32() == k).ToList();
            Assert.Equal(3 * k, mine.Count);
            // The per-sample accuracy the point reports is the mean of the logged verdicts.
            Assert.Equal(point.GetProperty("sample_accuracy").GetDouble(), mine.Average(x => x.GetProperty("correct").GetBoolean() ? 1.0 : 0.0), 9);
            // Expert load over the rows the engine ran: one max/mean per MoE layer of config.json, between perfect
            // balance (1) and every token on one expert (routed experts / top-k).
            using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(Default, "config.json")));
            var cfg = config.RootElement;
            int moeLayers = cfg.GetProperty("num_hidden_layers").GetInt32() - cfg.GetProperty("first_k_dense_replace").GetInt32();
            double worst = cfg.GetProperty("n_routed_experts").GetInt32() / (double)cfg.GetProperty("num_experts_per_tok").GetInt32();
            var load = point.GetProperty("expert_load").EnumerateArray().Select(x => x.GetDouble()).ToList();
            Assert.Equal(moeLayers, load.Count);
            Assert.All(load, v => Assert.InRange(v, 1.0, worst));
        }
        foreach (var row in rows)
        {
            var problem = new Jevons.Training.Tasks.ArithmeticTask().Parse(row.GetProperty("question").GetString()!)!;
            Assert.Equal(problem.Answer, row.GetProperty("expected").GetString());
            // The logged completion scores as logged (the template's "<think>\n" prefix restored).
            var v = Jevons.Training.Tasks.Verifier.Score(new Jevons.Training.Tasks.ArithmeticTask(), problem, "<think>\n" + row.GetProperty("completion").GetString());
            Assert.Equal(v.Correct, row.GetProperty("correct").GetBoolean());
            Assert.Equal(v.Extracted, row.GetProperty("answer").GetString());
        }
    }

    /// <summary>The teacher (the default model) writes verified traces; a micro dense student (MLA, or Qwen2's GQA) learns them and is exported.</summary>
    [Theory]
    [InlineData("micro", "DeepseekV3ForCausalLM")]
    [InlineData("micro-qwen2", "Qwen2ForCausalLM")]
    public void DistillWritesVerifiedTracesAndTrainsADenseStudent(string preset, string architecture)
    {
        if (Default is null) return;
        var output = Path.Combine(_dir, "distill");
        var r = CliHarness.Run("train", "distill", "--teacher", Default, "--student-preset", preset, "-o", output, "--questions", "12",
            "--steps", "3", "--batch", "2", "--seq", "192", "--eval-problems", "0", "--threads", "2");
        Assert.True(r.ExitCode == 0, r.Error + r.Out);
        Assert.Contains("verified traces", r.Out);
        // The teacher's generation reports its progress: 12 questions, a line per tenth (every question here) but the last.
        Assert.Contains("answering 12 questions × 1", r.Out);
        for (int done = 1; done < 12; done++) Assert.Contains($"teacher {done}/12 questions answered", r.Out);
        Assert.DoesNotContain("teacher 12/12", r.Out);
        var traces = File.ReadAllLines(Path.Combine(output, "traces.jsonl"));
        Assert.NotEmpty(traces);
        var task = ReasoningTasks.Get("arithmetic");
        foreach (var line in traces)
        {
            var t = JsonDocument.Parse(line).RootElement;
            var problem = task.Parse(t.GetProperty("question").GetString()!)!;
            var v = Verifier.Score(task, problem, t.GetProperty("completion").GetString()!);
            Assert.True(v.Correct && v.FormatOk, line);
        }
        using var loaded = Jevons.Models.LoadedModel.Load(Path.Combine(output, "hf"), new Jevons.Models.ModelOptions { Threads = 1 });
        Assert.NotNull(loaded.Tokenizer);
        Assert.Equal(architecture, loaded.Model.Description.Architecture);
        using var gguf = Jevons.Models.LoadedModel.Load(Path.Combine(output, "model.gguf"), new Jevons.Models.ModelOptions { Threads = 1 });
        Assert.Equal(loaded.Model.Description.TotalParameters, gguf.Model.Description.TotalParameters);
    }

    [Fact]
    public void TheQwen2StudentPresetIsUnderAThirdOfTinyR1sActiveParametersToo()
    {
        var student = new TinyDeepSeek(TinyDeepSeekConfig.Preset("tiny-r1-qwen2", 303), new TrainRandom(1));
        Assert.True(student.Config.IsQwen2);
        Assert.Contains("model.layers.0.self_attn.k_proj.bias", student.Parameters.Keys);
        Assert.Equal(2 * 32, student.Parameters["model.layers.0.self_attn.k_proj.weight"].Shape[0]);
        Assert.InRange(student.ParameterCount, 600_000, 900_000); // tiny-r1 uses ~2.5 M per token
    }

    [Fact]
    public void TheDenseStudentPresetIsUnderAThirdOfTinyR1sActiveParameters()
    {
        var student = new TinyDeepSeek(TinyDeepSeekConfig.Preset("tiny-r1-dense", 294), new TrainRandom(1));
        Assert.Equal(0, student.Config.RoutedExperts);
        Assert.Empty(student.RouterBias);
        // tiny-r1 per token: 4 attention blocks, one dense FFN (768), 3 × (shared + 2 of 8 routed experts of 192), embedding + head.
        var t = TinyDeepSeekConfig.Preset("tiny-r1", 294);
        var teacher = new TinyDeepSeek(t, new TrainRandom(1));
        double active = teacher.Parameters.Where(p => !p.Key.StartsWith($"model.layers.{t.Layers}.", StringComparison.Ordinal))
            .Sum(p => p.Key.Contains(".mlp.experts.", StringComparison.Ordinal) ? p.Value.Length * (double)t.ExpertsPerToken / t.RoutedExperts : p.Value.Length);
        Assert.True(student.ParameterCount <= active / 3, $"student {student.ParameterCount}, teacher active {active:0}");
    }

    [Fact]
    public void MajorityVoteCountsAnswersNotSamples()
    {
        Verdict V(string? answer, bool correct) => new(correct, true, answer, null);
        Assert.Equal("12", TaskEval.Majority([V("7", false), V("12", true), V(" 12 ", true), V(null, false), V(null, false)]));
        Assert.Equal("7", TaskEval.Majority([V("7", false), V("12", true)])); // a tie: the first seen
        Assert.Null(TaskEval.Majority([V(null, false)]));
    }
}
