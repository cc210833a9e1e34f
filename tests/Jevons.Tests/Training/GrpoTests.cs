using Jevons.Inference;
using Jevons.Numerics.Kernels;
using Jevons.Tokenization;
using Jevons.Training;
using Jevons.Training.Autograd;
using Jevons.Training.Tasks;
using Xunit;

namespace Jevons.Tests.Training;

public sealed class GrpoTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-grpo-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    const double Tolerance = 2e-3;

    [Fact]
    public void TokenLogprobsGradients()
    {
        var logits = GradCheck.Random(new TrainRandom(1), [5, 7]);
        int[] targets = [1, 6, 0, 3, 3];
        Assert.InRange(GradCheck.MaxRelativeError(t => t.TokenLogprobs(logits, targets), [logits]), 0, Tolerance);
    }

    [Fact]
    public void TokenLogprobsAreLogSoftmaxAtTheTarget()
    {
        var logits = GradCheck.Random(new TrainRandom(2), [3, 4], grad: false);
        using var pool = new WorkerPool(1);
        var lp = new Tape(pool).TokenLogprobs(logits, [0, 3, 2]);
        for (int r = 0; r < 3; r++)
        {
            var row = logits.Data.AsSpan(r * 4, 4).ToArray();
            double lse = Math.Log(row.Sum(v => Math.Exp(v)));
            Assert.Equal(row[new[] { 0, 3, 2 }[r]] - lse, lp.Data[r], 5);
        }
    }

    /// <summary>
    /// The GRPO objective through the log-probs, against finite differences: rows inside the clip range, rows clipped
    /// on either side (their gradient is only the KL's), negative and positive advantages, a masked row, β on.
    /// </summary>
    [Fact]
    public void GrpoObjectiveGradients()
    {
        var logits = GradCheck.Random(new TrainRandom(3), [6, 5]);
        int[] targets = [0, 1, 2, 3, 4, 0];
        using var pool = new WorkerPool(1);
        var lp = new Tape(pool) { Recording = false }.TokenLogprobs(logits, targets).Data;
        // old = logp − log ρ: ρ of 1, 1.05, 1.6 (clipped when A > 0), 0.5 (clipped when A < 0), 0.9, and a masked row.
        float[] logRatio = [0, 0.05f, 0.47f, -0.69f, -0.1f, 0];
        var old = lp.Select((v, i) => v - logRatio[i]).ToArray();
        var reference = lp.Select((v, i) => v + 0.3f * (i - 2)).ToArray();
        float[] weights = [0.2f, 0.1f, 0.3f, 0.15f, 0.25f, 0];
        float[] adv = [1.2f, -0.7f, 0.9f, -1.1f, 0.4f, 2f];
        Assert.InRange(GradCheck.MaxRelativeError(t =>
            t.GrpoObjective(t.TokenLogprobs(logits, targets), weights, adv, old, reference, 0.2f, 0.04f, out _), [logits]), 0, Tolerance);
    }

    [Fact]
    public void GrpoObjectiveValuesAndClipping()
    {
        using var pool = new WorkerPool(1);
        var tape = new Tape(pool);
        // ρ = 1 everywhere, ref = π: the loss is −Σ w·A, KL 0, nothing clipped, and dL/dlogp = −w·A.
        var logp = new Tensor([3], [-1f, -2f, -0.5f], requiresGrad: true);
        var loss = tape.GrpoObjective(logp, [0.5f, 0.25f, 0.25f], [1f, -2f, 0.5f], [-1f, -2f, -0.5f], [-1f, -2f, -0.5f], 0.2f, 0.04f, out var s);
        Assert.Equal(-(0.5 - 0.5 + 0.125), loss.Data[0], 6);
        Assert.Equal(0, s.Kl, 9);
        Assert.Equal(0, s.ClipFraction);
        tape.Backward(loss);
        Assert.Equal([-0.5f, 0.5f, -0.125f], logp.Grad!);

        // ρ = e^0.5 > 1 + ε with A > 0: the clipped term (1.2·A) is the minimum and the ratio gets no gradient; with β = 0 none at all.
        var far = new Tensor([1], [-0.5f], requiresGrad: true);
        var l2 = tape.GrpoObjective(far, [1f], [2f], [-1f], [], 0.2f, 0f, out var s2);
        Assert.Equal(-1.2 * 2, l2.Data[0], 5);
        Assert.Equal(1, s2.ClipFraction);
        tape.Backward(l2);
        Assert.Equal(0f, far.Grad![0]);

        // k3: π_ref/π − log(π_ref/π) − 1 at log π_ref − log π = 0.5.
        var l3 = tape.GrpoObjective(new Tensor([1], [-1f]), [1f], [0f], [-1f], [-0.5f], 0.2f, 1f, out var s3);
        Assert.Equal(Math.Exp(0.5) - 0.5 - 1, s3.Kl, 6);
        Assert.Equal(Math.Exp(0.5) - 0.5 - 1, l3.Data[0], 6);
    }

    [Fact]
    public void AdvantagesAreNormalisedWithinTheGroup()
    {
        var a = GrpoTrainer.Advantages([1, 0, 0, 1])!;
        Assert.Equal([1f, -1f, -1f, 1f], a);
        var b = GrpoTrainer.Advantages([1.1, 0, 0, 0])!;
        Assert.Equal(0, b.Sum(), 5);
        Assert.Equal(1, b.Select(x => (double)x * x).Average(), 5); // unit population variance
        Assert.True(b[0] > 0 && b[1] < 0);
        Assert.Null(GrpoTrainer.Advantages([0.1, 0.1, 0.1]));
    }

    [Fact]
    public void RewardIsAnswerPlusFormat()
    {
        var task = ReasoningTasks.Get("arithmetic");
        var p = new Problem("arithmetic", "What is 2 + 3?", "5");
        Assert.Equal(1.1, Reward.Of(Verifier.Score(task, p, "<think>\n2+3=5\n</think>\n\\boxed{5}"), 0.1).Value, 9);
        Assert.Equal(1.0, Reward.Of(Verifier.Score(task, p, "\\boxed{5}"), 0.1).Value, 9);
        Assert.Equal(0.1, Reward.Of(Verifier.Score(task, p, "<think>\nhm\n</think>\n\\boxed{6}"), 0.1).Value, 9);
        Assert.Equal(0.0, Reward.Of(Verifier.Score(task, p, "no idea"), 0.1).Value, 9);
    }

    [Fact]
    public void AnswerOnlyTaskTeachesTheLayoutWithoutReasoning()
    {
        foreach (var inner in ReasoningTasks.All)
        {
            var task = new AnswerOnlyTask(inner);
            var rng = new TaskRng(3);
            var p = task.Sample(ref rng, Split.Train);
            var solution = task.Solve(p);
            Assert.Equal($"<think>\n\n</think>\n\\boxed{{{p.Answer}}}", solution);
            var v = Verifier.Score(task, p, solution);
            Assert.True(v.Correct && v.FormatOk, v.Reason);
            Assert.True(inner.Solve(p).Length > solution.Length + 20, "the wrapped task's solution should carry reasoning");
        }
    }

    Tokenizer Vocabulary(int size)
    {
        var dir = Path.Combine(_dir, "tok");
        SyntheticVocabulary.Create(size).WriteHuggingFace(dir);
        return Tokenizer.Load(dir);
    }

    /// <summary>
    /// The engine's log-probs of the tokens it sampled (π_old) equal the trainer's forward on the same sequences
    /// (π_θ before the update) within float32 rounding: the ratio starts at 1 and the gradient is the policy's.
    /// </summary>
    [Fact]
    public void EngineLogprobsMatchTheTrainersForward()
    {
        var tokenizer = Vocabulary(300);
        var model = TinyDeepSeekTests.RandomModel(TinyDeepSeekConfig.Preset("micro", 300) with { EosTokenId = tokenizer.EosIds[0] }, 21);
        var rng = new TrainRandom(22);
        var prompts = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 5).Select(_ => rng.NextInt(290)).ToArray()).ToList();
        List<Rollout> completions;
        using (var engine = PolicyEngine.Create(model, tokenizer, Path.Combine(_dir, "engine"), 2, 12, 16))
            completions = engine.Generate(prompts.Select((p, i) => new GenerationRequest
            {
                Prompt = p, N = 4, MaxTokens = 8, TopLogprobs = 0,
                Sampling = new SamplerOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = (ulong)(10 * i) },
            }).ToList());
        Assert.Equal(12, completions.Count);
        using var pool = new WorkerPool(2);
        var tape = new Tape(pool) { Recording = false };
        double worst = 0, lowest = 0;
        int compared = 0;
        foreach (var c in completions)
        {
            var ids = prompts[c.Request].Concat(c.Ids).ToArray();
            var batch = new TrainingBatch(1, ids.Length - 1, ids[..^1], ids[1..], new float[ids.Length - 1]);
            var lp = model.TokenLogprobs(tape, batch).Data;
            for (int k = 0; k < c.Ids.Length; k++)
            {
                worst = Math.Max(worst, Math.Abs(lp[prompts[c.Request].Length - 1 + k] - c.Logprobs[k]));
                lowest = Math.Min(lowest, c.Logprobs[k]);
                compared++;
            }
        }
        Assert.True(compared >= 40, $"only {compared} tokens compared");
        Assert.True(lowest < -2, $"log-probs all near 0 ({lowest:0.00}): the comparison would prove little");
        Assert.True(worst <= 1e-4, $"max |Δ log π| {worst:e2}");
    }

    /// <summary>
    /// A miniature GRPO from scratch: a micro model, 3 new tokens per completion, reward = the share of them in
    /// the lowest quarter of the vocabulary (≈ 0.25 by chance at the uniform init). The reward must climb.
    /// </summary>
    [Fact]
    public void MiniatureGrpoRaisesTheReward()
    {
        var tokenizer = Vocabulary(300);
        var config = TinyDeepSeekConfig.Preset("micro", 300) with { EosTokenId = tokenizer.EosIds[0] };
        var policy = new TinyDeepSeek(config, new TrainRandom(31));
        var reference = new TinyDeepSeek(config, new TrainRandom(31));
        var options = new GrpoOptions { Group = 8, Beta = 0.04f, LearningRate = 1e-2f, Updates = 2, MaxNewTokens = 3, Threads = 2, Seed = 5 };
        using var trainer = new GrpoTrainer(policy, reference, tokenizer, options, Path.Combine(_dir, "engine"));
        var rng = new TrainRandom(32);
        var rewards = new List<double>();
        for (int step = 0; step < 20; step++)
        {
            var prompts = Enumerable.Range(0, 6).Select(_ => new[] { tokenizer.BosId ?? 0, rng.NextInt(290), rng.NextInt(290) }).ToList();
            var r = trainer.TrainStep(prompts, (_, c) =>
            {
                double share = c.Ids.Count(id => id < 75) / 3.0;
                return new Reward(share, share == 1, true);
            }, options.LearningRate);
            rewards.Add(r.Reward);
            Assert.True(r.LogprobError <= 1e-3, $"step {step}: engine and trainer log-probs differ by {r.LogprobError:e2}");
        }
        double first = rewards.Take(4).Average(), last = rewards.TakeLast(4).Average();
        Assert.True(first < 0.45, $"initial reward {first:0.00}: the task is not at chance");
        Assert.True(last > first + 0.25, $"reward {first:0.00} → {last:0.00} ({string.Join(" ", rewards.Select(x => x.ToString("0.00")))})");
    }

    [Fact]
    public void StepCheckFindsEachStatedEquationAndChecksIt()
    {
        var cd = StepCheck.Steps("88+56=144, 144-18=127 no\n45*14=630, 630/5=126 yes\n</think>\n88+56-18 = 126\n\\boxed{88+56-18}");
        Assert.Equal([true, false, true, true], cd.Select(x => x.Holds));
        Assert.Equal("88+56=144", "88+56=144, 144-18=127 no"[..cd[0].End]);
        // Arithmetic's column steps are whole chains (never the tail 3-0=2 of 5-3-0=2), a signed result is read whole,
        // and text after </think> is not a step.
        var ar = StepCheck.Steps("5-3: 5-3-0=2 b0 → 2\n8+2+1=12 c1\n1-1502=-1501\n7*8=56 x\n</think>\n2+2=5\n\\boxed{2}");
        Assert.Equal([true, false, true, true], ar.Select(x => x.Holds));
        // An inexact division and a division by zero do not hold; a bare number or "a op b" without "=" is no step.
        Assert.Equal([false, false], StepCheck.Steps("7/2=3, 5/0=0").Select(x => x.Holds));
        Assert.Empty(StepCheck.Steps("144 and 88+56, then 1-(2)=3"));
    }

    /// <summary>
    /// The process term: each step's 0/1 reward normalised over the group's steps goes to the tokens from after the
    /// previous step through that step's result; tokens after the last step get none; a group whose steps all hold
    /// carries no process signal.
    /// </summary>
    [Fact]
    public void StepAdvantagesCreditEachStepsOwnTokens()
    {
        var dir = Jevons.Cli.Commands.Common.DefaultModel();
        Assert.NotNull(dir);
        var tokenizer = Tokenizer.Load(dir);
        var model = TinyDeepSeekTests.RandomModel(TinyDeepSeekConfig.Preset("micro", tokenizer.VocabSize) with { EosTokenId = tokenizer.EosIds[0] }, 3);
        using var trainer = new GrpoTrainer(model, null, tokenizer, new GrpoOptions { Beta = 0, StepReward = 0.5f, Threads = 1 }, Path.Combine(_dir, "engine"));
        string[] texts =
        [
            "88+56=144, 144-18=126 yes\n</think>\n\\boxed{88+56-18}",
            "88+56=145, 145-18=128 no\n</think>\n\\boxed{88+56-18}",
            "88+56=144, 144-18=127 no\n</think>\n\\boxed{88+56-18}",
        ];
        var group = texts.Select((t, i) => new Rollout(0, i, tokenizer.Encode(t, addSpecialTokens: false), [], t, FinishReason.EndOfSequence)).ToList();
        foreach (var c in group) Assert.Equal(c.Text, tokenizer.Decode(c.Ids));
        var rewards = group.Select(c => new Reward(0, false, true, StepCheck.Steps(c.Text))).ToArray();
        var adv = trainer.StepAdvantages(group, rewards)!;
        Assert.NotNull(adv);
        // 3 of 6 steps hold: +1 for a holding step's tokens, −1 for a false one's.
        float[] Expected(string text, float first, float second)
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: false);
            var e = new float[ids.Length];
            int firstEnd = "88+56=14x".Length, secondEnd = "88+56=14x, 14x-18=12x".Length, at = 0;
            for (int k = 0; k < ids.Length; k++)
            {
                at += tokenizer.Decode(ids.AsSpan(k, 1)).Length;
                e[k] = at <= firstEnd ? first : at <= secondEnd ? second : 0;
            }
            return e;
        }
        Assert.Equal(Expected(texts[0], 1, 1), adv[0]);
        Assert.Equal(Expected(texts[1], -1, -1), adv[1]);
        Assert.Equal(Expected(texts[2], 1, -1), adv[2]);
        Assert.Null(trainer.StepAdvantages(group.Take(1).ToList(), rewards.AsSpan(0, 1)));
        Assert.Null(trainer.StepAdvantages(group, group.Select(_ => new Reward(1, true, true)).ToArray()));
    }
}
