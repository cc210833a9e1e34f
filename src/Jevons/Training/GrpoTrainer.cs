using System.Diagnostics;
using Jevons.Inference;
using Jevons.Numerics.Kernels;
using Jevons.Tokenization;
using Jevons.Training.Autograd;
using Jevons.Training.Tasks;

namespace Jevons.Training;

/// <summary>GRPO's settings (DeepSeekMath §4.1; the defaults are its β and ε, R1's G of 8–16 at the low end).</summary>
public sealed record GrpoOptions
{
    /// <summary>Completions sampled per question (G).</summary>
    public int Group { get; init; } = 8;
    /// <summary>β of the KL penalty to the frozen reference; 0 = none (no reference forward).</summary>
    public float Beta { get; init; } = 0.04f;
    /// <summary>ε of the ratio clip.</summary>
    public float Clip { get; init; } = 0.2f;
    /// <summary>Constant after a short warmup. 2e-5 held tiny-r1 steady where 3e-4 (SFT's final rate) collapsed it (docs/training.md).</summary>
    public float LearningRate { get; init; } = 2e-5f;
    /// <summary>Optimizer steps over each batch of rollouts (μ); from the second on, the ratio π_θ/π_old leaves 1 and the clip bites.</summary>
    public int Updates { get; init; } = 1;
    /// <summary>Sequences per forward + backward (their gradients are summed; the loss is normalised over the whole batch).</summary>
    public int MicroBatch { get; init; } = 16;
    /// <summary>Longest completion; 0 = what the context leaves after the longest prompt, at most 1000.</summary>
    public int MaxNewTokens { get; init; }
    /// <summary>Sampling temperature of the rollouts (no top-k/top-p/min-p, so at 1 the engine samples π_θ itself).</summary>
    public float Temperature { get; init; } = 1f;
    public float ClipNorm { get; init; } = 1f;
    public float WeightDecay { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>Threads of the trainer's matrix products and of the engine; 0 = all cores.</summary>
    public int Threads { get; init; }
    /// <summary>
    /// λ of the process term (DeepSeekMath §4.1.3 with a rule for its reward model): each worked step a completion's
    /// think block states (<see cref="StepCheck"/>) is rewarded 1 when it holds, 0 when not; the step rewards of a
    /// group are normalised over all its completions' steps, and each token's advantage gains λ × the normalised
    /// reward of the step it belongs to (the tokens after the previous step up to this one's result). 0 = outcome only.
    /// </summary>
    public float StepReward { get; init; }
}

/// <summary>A completion's reward and the two checks behind it; <paramref name="Steps"/>: its worked steps, for the process term.</summary>
public readonly record struct Reward(double Value, bool Correct, bool FormatOk, IReadOnlyList<WorkedStep>? Steps = null)
{
    /// <summary>R1's rule-based reward: 1 for a right answer, + <paramref name="formatWeight"/> when the layout is the taught one.</summary>
    public static Reward Of(Verdict v, double formatWeight) => new((v.Correct ? 1 : 0) + (v.FormatOk ? formatWeight : 0), v.Correct, v.FormatOk);
}

/// <summary>Scores completion <paramref name="completion"/> of prompt number <paramref name="question"/>.</summary>
public delegate Reward RewardFunction(int question, Rollout completion);

/// <summary>What one GRPO step did (GenerateSeconds includes ExportSeconds: writing the weights and starting the engine on them).</summary>
public sealed record GrpoStepReport(int Step, double Reward, double Accuracy, double FormatRate, double MeanLength, double Kl,
    double ClipFraction, double MeanRatio, double LogprobError, int TrainedGroups, int Groups, long GeneratedTokens, long TrainedTokens,
    double GenerateSeconds, double TrainSeconds, double GradientNorm, IReadOnlyDictionary<int, long[]> ExpertLoad, double ExportSeconds,
    double StepAccuracy = double.NaN)
{
    /// <summary>The share of the rollouts' worked steps that hold (NaN when the rewards carried no steps).</summary>
    public double GenerateTokensPerSecond => GeneratedTokens / Math.Max(1e-9, GenerateSeconds);
    public double TrainTokensPerSecond => TrainedTokens / Math.Max(1e-9, TrainSeconds);
}

/// <summary>
/// Group-relative policy optimisation (DeepSeekMath eq. 3, outcome rewards): per question G completions from
/// the batched engine running the current weights, rewards from a rule, advantages normalised within the
/// group, then the clipped surrogate with the k3 KL to a frozen reference, on per-token log-probs the
/// trainer's forward recomputes (the engine's log-probs are π_old; <see cref="GrpoStepReport.LogprobError"/> is
/// how far the two forwards differ on the sampled tokens).
/// </summary>
public sealed class GrpoTrainer : IDisposable
{
    readonly WorkerPool _pool;
    readonly Tokenizer _tokenizer;
    readonly string _engineDirectory;
    readonly int _threads;

    /// <param name="reference">The frozen π_ref (null when β = 0).</param>
    /// <param name="engineDirectory">Where the current weights are written for the engine each step.</param>
    public GrpoTrainer(TinyDeepSeek policy, TinyDeepSeek? reference, Tokenizer tokenizer, GrpoOptions options, string engineDirectory)
    {
        if (options.Beta != 0 && reference is null) throw new ArgumentException("β ≠ 0 needs a reference model", nameof(reference));
        if (tokenizer.EosIds.Count == 0) JevonsException.Throw("the tokenizer has no EOS token: completions could never end", tokenizer.Source);
        Policy = policy;
        Reference = reference;
        Options = options;
        _tokenizer = tokenizer;
        _engineDirectory = engineDirectory;
        _threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        _pool = new WorkerPool(_threads);
        Tape = new Tape(_pool);
        Optimizer = new AdamW(policy.Parameters.Values, options.WeightDecay, pool: _pool);
    }

    public TinyDeepSeek Policy { get; }
    public TinyDeepSeek? Reference { get; }
    public GrpoOptions Options { get; }
    public AdamW Optimizer { get; }
    public Tape Tape { get; }
    /// <summary>Steps done.</summary>
    public int Step { get; private set; }

    /// <summary>
    /// Group-normalised advantages Â_i = (r_i − mean r) / std r (population std) for one group, or null when every
    /// reward is the same (no signal: the group is skipped).
    /// </summary>
    public static float[]? Advantages(ReadOnlySpan<double> rewards)
    {
        double mean = 0;
        foreach (var r in rewards) mean += r;
        mean /= rewards.Length;
        double variance = 0;
        foreach (var r in rewards) variance += (r - mean) * (r - mean);
        double std = Math.Sqrt(variance / rewards.Length);
        if (std < 1e-9) return null;
        var a = new float[rewards.Length];
        for (int i = 0; i < a.Length; i++) a[i] = (float)((rewards[i] - mean) / std);
        return a;
    }

    /// <summary>One GRPO step: sample G completions per prompt, score, normalise, and take <see cref="GrpoOptions.Updates"/> optimizer steps.</summary>
    public GrpoStepReport TrainStep(IReadOnlyList<int[]> prompts, RewardFunction score, float learningRate, CancellationToken cancel = default)
    {
        var o = Options;
        int G = o.Group;
        var genClock = Stopwatch.StartNew();
        List<Rollout> completions;
        int longestPrompt = prompts.Max(p => p.Length);
        int maxNew = o.MaxNewTokens > 0 ? o.MaxNewTokens : Math.Min(1000, Policy.Config.ContextLength - longestPrompt);
        double exportSeconds;
        using (var engine = PolicyEngine.Create(Policy, _tokenizer, _engineDirectory, _threads, Math.Min(64, prompts.Count * G), longestPrompt + maxNew))
        {
            exportSeconds = genClock.Elapsed.TotalSeconds;
            var requests = prompts.Select((p, i) => new GenerationRequest
            {
                Prompt = p,
                N = G,
                MaxTokens = maxNew,
                TopLogprobs = 0,
                Sampling = new SamplerOptions
                {
                    Temperature = o.Temperature, TopK = 0, TopP = 1, MinP = 0,
                    Seed = unchecked(o.Seed * 0x9E3779B97F4A7C15UL + ((ulong)Step << 20) + (ulong)(i * G)),
                },
            }).ToList();
            completions = engine.Generate(requests, cancel);
        }
        double genSeconds = genClock.Elapsed.TotalSeconds;
        var trainClock = Stopwatch.StartNew();

        // Rewards and group-relative advantages; zero-variance groups carry no signal and are skipped.
        var rewards = completions.Select(c => score(c.Request, c)).ToArray();
        var trained = new List<(int[] Prompt, Rollout Rollout, float[] Advantage)>();
        int groups = 0;
        for (int q = 0; q < prompts.Count; q++)
        {
            var r = new double[G];
            for (int i = 0; i < G; i++) r[i] = rewards[q * G + i].Value;
            var outcome = Advantages(r);
            var group = completions.GetRange(q * G, G);
            var process = o.StepReward > 0 ? StepAdvantages(group, rewards.AsSpan(q * G, G)) : null;
            if (outcome is null && process is null) continue;
            groups++;
            for (int i = 0; i < G; i++)
            {
                var c = group[i];
                if (c.Ids.Length == 0) continue;
                var adv = new float[c.Ids.Length];
                for (int k = 0; k < adv.Length; k++) adv[k] = (outcome?[i] ?? 0) + (process is null ? 0 : o.StepReward * process[i][k]);
                trained.Add((prompts[q], c, adv));
            }
        }
        var checkedSteps = rewards.Where(x => x.Steps is not null).SelectMany(x => x.Steps!).ToList();
        double stepAccuracy = checkedSteps.Count > 0 ? checkedSteps.Count(x => x.Holds) / (double)checkedSteps.Count : double.NaN;

        double kl = 0, clipFraction = 0, ratio = 0, logprobError = 0, gradNorm = 0;
        long trainedTokens = 0;
        var load = new SortedDictionary<int, long[]>();
        if (trained.Count > 0)
        {
            // Longest first, so each micro-batch pads little; weights 1/|o_i| per token and 1/S per sequence.
            trained.Sort((a, b) => (b.Prompt.Length + b.Rollout.Ids.Length).CompareTo(a.Prompt.Length + a.Rollout.Ids.Length));
            var batches = new List<MicroBatch>();
            for (int at = 0; at < trained.Count; at += o.MicroBatch)
                batches.Add(BuildBatch(trained.GetRange(at, Math.Min(o.MicroBatch, trained.Count - at)), trained.Count));
            if (o.Beta != 0)
            {
                bool recording = Tape.Recording;
                Tape.Recording = false;
                foreach (var b in batches) b.RefLogp = Reference!.TokenLogprobs(Tape, b.Batch).Data;
                Tape.Recording = recording;
            }
            for (int u = 0; u < Math.Max(1, o.Updates); u++)
            {
                Optimizer.ZeroGradients();
                double klSum = 0, clipSum = 0, ratioSum = 0;
                int tokens = 0;
                var stepLoad = new SortedDictionary<int, long[]>();
                foreach (var b in batches)
                {
                    var routed = new Dictionary<int, int[]>();
                    var logp = Policy.TokenLogprobs(Tape, b.Batch, routed);
                    if (u == 0)
                        for (int r = 0; r < logp.Length; r++)
                            if (b.Weights[r] != 0) logprobError = Math.Max(logprobError, Math.Abs(logp.Data[r] - b.OldLogp[r]));
                    var loss = Tape.GrpoObjective(logp, b.Weights, b.Advantages, b.OldLogp, b.RefLogp ?? [], o.Clip, o.Beta, out var s);
                    Tape.Backward(loss);
                    klSum += s.Kl * s.Tokens;
                    clipSum += s.ClipFraction * s.Tokens;
                    ratioSum += s.MeanRatio * s.Tokens;
                    tokens += s.Tokens;
                    if (u == 0) trainedTokens += b.Batch.Tokens;
                    foreach (var (layer, counts) in routed)
                    {
                        if (!stepLoad.TryGetValue(layer, out var sum)) stepLoad[layer] = sum = new long[counts.Length];
                        for (int e = 0; e < counts.Length; e++) sum[e] += counts[e];
                    }
                }
                gradNorm = Optimizer.ClipGradients(o.ClipNorm);
                Optimizer.Update(learningRate);
                Policy.UpdateRouterBias(stepLoad);
                if (u == 0) { kl = klSum / Math.Max(1, tokens); load = stepLoad; }
                clipFraction = clipSum / Math.Max(1, tokens);
                ratio = ratioSum / Math.Max(1, tokens);
            }
        }
        Step++;
        return new GrpoStepReport(Step, rewards.Average(r => r.Value), rewards.Average(r => r.Correct ? 1.0 : 0), rewards.Average(r => r.FormatOk ? 1.0 : 0),
            completions.Average(c => (double)c.Ids.Length), kl, clipFraction, ratio, logprobError, groups, prompts.Count,
            completions.Sum(c => (long)c.Ids.Length), trainedTokens * Math.Max(1, o.Updates), genSeconds, trainClock.Elapsed.TotalSeconds, gradNorm, load, exportSeconds,
            stepAccuracy);
    }

    /// <summary>
    /// The process term of one group, per completion and token: each step's reward (1 holds, 0 not) normalised over
    /// every step of the group's completions, given to the tokens from just after the previous step through this
    /// step's result; tokens after the last step get 0. Null when the group's steps all hold or all fail (no signal).
    /// </summary>
    public float[][]? StepAdvantages(IReadOnlyList<Rollout> group, ReadOnlySpan<Reward> rewards)
    {
        int n = 0, holding = 0;
        foreach (var r in rewards)
            if (r.Steps is { } steps) { n += steps.Count; holding += steps.Count(x => x.Holds); }
        if (n == 0 || holding == 0 || holding == n) return null;
        double mean = holding / (double)n, std = Math.Sqrt(mean * (1 - mean));
        float up = (float)((1 - mean) / std), down = (float)(-mean / std);
        var result = new float[group.Count][];
        for (int i = 0; i < group.Count; i++)
        {
            var c = group[i];
            var adv = result[i] = new float[c.Ids.Length];
            if (rewards[i].Steps is not { Count: > 0 } steps) continue;
            var ends = TokenEnds(c.Ids);
            int j = 0;
            for (int k = 0; k < ends.Length && j < steps.Count; k++)
            {
                adv[k] = steps[j].Holds ? up : down;
                if (ends[k] >= steps[j].End) j++;
            }
        }
        return result;
    }

    /// <summary>Where each token's text ends in the decoded completion (one decode per token; a prefix decode per token where tokens split a character).</summary>
    int[] TokenEnds(int[] ids)
    {
        var ends = new int[ids.Length];
        int at = 0;
        for (int k = 0; k < ids.Length; k++) ends[k] = at += _tokenizer.Decode(ids.AsSpan(k, 1)).Length;
        if (ids.Length > 0 && at != _tokenizer.Decode(ids).Length)
            for (int k = 0; k < ids.Length; k++) ends[k] = _tokenizer.Decode(ids.AsSpan(0, k + 1)).Length;
        return ends;
    }

    sealed class MicroBatch(TrainingBatch batch, float[] weights, float[] advantages, float[] oldLogp)
    {
        public TrainingBatch Batch { get; } = batch;
        public float[] Weights { get; } = weights;
        public float[] Advantages { get; } = advantages;
        public float[] OldLogp { get; } = oldLogp;
        public float[]? RefLogp { get; set; }
    }

    /// <summary>prompt + completion per row, targets shifted by one; the completion's tokens carry weight 1/(|o|·S), their advantages and the engine's log-probs.</summary>
    MicroBatch BuildBatch(List<(int[] Prompt, Rollout Rollout, float[] Advantage)> items, int sequences)
    {
        int B = items.Count;
        int T = items.Max(x => x.Prompt.Length + x.Rollout.Ids.Length) - 1;
        if (T + 1 > Policy.Config.ContextLength)
            JevonsException.Throw($"a prompt + completion of {T + 1} tokens exceeds the model's context of {Policy.Config.ContextLength}");
        var inputs = new int[B * T];
        var targets = new int[B * T];
        var weights = new float[B * T];
        var adv = new float[B * T];
        var old = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            var (prompt, c, a) = items[b];
            var ids = prompt.Concat(c.Ids).ToArray();
            for (int i = 0; i + 1 < ids.Length; i++)
            {
                inputs[b * T + i] = ids[i];
                targets[b * T + i] = ids[i + 1];
            }
            float w = 1f / (c.Ids.Length * (float)sequences);
            for (int k = 0; k < c.Ids.Length; k++)
            {
                int r = b * T + prompt.Length - 1 + k;
                weights[r] = w;
                adv[r] = a[k];
                old[r] = c.Logprobs[k];
            }
        }
        return new MicroBatch(new TrainingBatch(B, T, inputs, targets, new float[B * T]), weights, adv, old);
    }

    public void Dispose() => _pool.Dispose();
}
