namespace Jevons.Training.Autograd;

/// <summary>What one <see cref="Tape.GrpoObjective"/> saw, over the rows of weight ≠ 0 (completion tokens).</summary>
/// <param name="Objective">Σ w·(min(ρA, clip(ρ)A) − β·KL): the weighted surrogate the loss negates.</param>
/// <param name="Kl">Mean k3 estimate of KL(π_θ ‖ π_ref) per token.</param>
/// <param name="ClipFraction">Tokens whose clipped term was the smaller one (no gradient through them).</param>
/// <param name="MeanRatio">Mean ρ = π_θ/π_old per token.</param>
public readonly record struct GrpoStats(double Objective, double Kl, double ClipFraction, double MeanRatio, int Tokens);

public sealed partial class Tape
{
    /// <summary>
    /// log π(target | row) = logits[r, target_r] − logsumexp(logits[r]) per row: logits [n, vocab] → [n].
    /// Log-sum-exp in double. Backward: dlogits[r] = g_r·(onehot(target_r) − softmax(logits[r])).
    /// </summary>
    public Tensor TokenLogprobs(Tensor logits, ReadOnlySpan<int> targets)
    {
        int n = logits.Rows, v = logits.Cols;
        if (targets.Length != n) throw new ArgumentException($"TokenLogprobs: {n} rows, {targets.Length} targets");
        var result = Result([n], logits);
        var tgt = targets.ToArray();
        var lse = new double[n];
        for (int r = 0; r < n; r++)
        {
            var row = logits.Data.AsSpan(r * v, v);
            float max = row[0];
            for (int i = 1; i < v; i++) if (row[i] > max) max = row[i];
            double s = 0;
            for (int i = 0; i < v; i++) s += Math.Exp(row[i] - max);
            lse[r] = max + Math.Log(s);
            result.Data[r] = (float)(row[tgt[r]] - lse[r]);
        }
        Record(result, () =>
        {
            for (int r = 0; r < n; r++)
            {
                float g = result.Grad![r];
                if (g == 0) continue;
                var row = logits.Data.AsSpan(r * v, v);
                var dr = logits.Grad.AsSpan(r * v, v);
                for (int i = 0; i < v; i++) dr[i] -= g * (float)Math.Exp(row[i] - lse[r]);
                dr[tgt[r]] += g;
            }
        });
        return result;
    }

    /// <summary>
    /// GRPO's loss (DeepSeekMath eq. 3), negated for descent, from per-token log-probs <paramref name="logp"/> [n] of π_θ:
    /// −Σ_r w_r·(min(ρ_r·A_r, clip(ρ_r, 1 − ε, 1 + ε)·A_r) − β·KL_r), ρ = exp(logp − old),
    /// KL_r = exp(ref − logp) − (ref − logp) − 1 (the k3 estimator, unbiased and ≥ 0).
    /// w_r carries the 1/|o_i| and 1/(sequences) means (0 on prompt and padding rows).
    /// Backward: dlogp_r = −w_r·(ρ_r·A_r [unclipped side only] − β·(1 − exp(ref − logp))).
    /// With <paramref name="beta"/> = 0 <paramref name="refLogp"/> is not read.
    /// </summary>
    public Tensor GrpoObjective(Tensor logp, ReadOnlySpan<float> weights, ReadOnlySpan<float> advantages, ReadOnlySpan<float> oldLogp,
        ReadOnlySpan<float> refLogp, float clip, float beta, out GrpoStats stats)
    {
        int n = logp.Length;
        if (weights.Length != n || advantages.Length != n || oldLogp.Length != n || (beta != 0 && refLogp.Length != n))
            throw new ArgumentException($"GrpoObjective: {n} log-probs, {weights.Length} weights, {advantages.Length} advantages, {oldLogp.Length} old, {refLogp.Length} reference");
        var loss = Result([1], logp);
        var dlogp = new float[n];
        double objective = 0, kl = 0, ratioSum = 0;
        int tokens = 0, clipped = 0;
        for (int r = 0; r < n; r++)
        {
            float w = weights[r];
            if (w == 0) continue;
            double lp = logp.Data[r], a = advantages[r];
            double ratio = Math.Exp(lp - oldLogp[r]);
            double unclipped = ratio * a, clippedTerm = Math.Clamp(ratio, 1 - clip, 1 + clip) * a;
            double surrogate = Math.Min(unclipped, clippedTerm);
            double grad = unclipped <= clippedTerm ? unclipped : 0; // d surrogate / d logp (dρ/dlogp = ρ)
            if (unclipped > clippedTerm) clipped++;
            double k3 = 0;
            if (beta != 0)
            {
                double d = refLogp[r] - lp, e = Math.Exp(d);
                k3 = e - d - 1;
                grad -= beta * (1 - e);
            }
            objective += w * (surrogate - beta * k3);
            dlogp[r] = (float)(-w * grad);
            kl += k3;
            ratioSum += ratio;
            tokens++;
        }
        loss.Data[0] = (float)-objective;
        stats = new GrpoStats(objective, tokens == 0 ? 0 : kl / tokens, tokens == 0 ? 0 : (double)clipped / tokens,
            tokens == 0 ? 0 : ratioSum / tokens, tokens);
        Record(loss, () =>
        {
            float g = loss.Grad![0];
            for (int r = 0; r < n; r++) logp.Grad![r] += g * dlogp[r];
        });
        return loss;
    }
}
