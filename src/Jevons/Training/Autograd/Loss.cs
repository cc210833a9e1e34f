namespace Jevons.Training.Autograd;

/// <summary>A masked cross-entropy's value and what it saw.</summary>
public readonly record struct LossStats(double Loss, int Tokens, int Correct);

public sealed partial class Tape
{
    /// <summary>
    /// Mean cross-entropy over the rows with mask[r] ≠ 0 (weighted by the mask): logits [n, vocab], targets [n].
    /// Returns a scalar tensor; log-sum-exp per row in double. Backward: dlogits = mask·(softmax − onehot)/Σmask.
    /// <paramref name="stats"/> counts the masked rows and those whose argmax is the target.
    /// </summary>
    public Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> mask, out LossStats stats)
    {
        int n = logits.Rows, v = logits.Cols;
        if (targets.Length != n || mask.Length != n) throw new ArgumentException($"CrossEntropy: {n} rows, {targets.Length} targets, {mask.Length} mask values");
        var loss = Result([1], logits);
        var tgt = targets.ToArray();
        var m = mask.ToArray();
        // Rows in parallel; their terms are summed afterwards in row order.
        var lse = new double[n];
        var term = new double[n];
        var hit = new bool[n];
        Spread(n, (long)n * v * 2, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                if (m[r] == 0) continue;
                var row = logits.Data.AsSpan(r * v, v);
                int arg = 0;
                float max = row[0];
                for (int i = 1; i < v; i++) if (row[i] > max) { max = row[i]; arg = i; }
                double s = 0;
                for (int i = 0; i < v; i++) s += Math.Exp(row[i] - max);
                lse[r] = max + Math.Log(s);
                term[r] = m[r] * (lse[r] - row[tgt[r]]);
                hit[r] = arg == tgt[r];
            }
        });
        double total = 0, weight = 0;
        int tokens = 0, correct = 0;
        for (int r = 0; r < n; r++)
        {
            if (m[r] == 0) continue;
            total += term[r];
            weight += m[r];
            tokens++;
            if (hit[r]) correct++;
        }
        loss.Data[0] = weight == 0 ? 0 : (float)(total / weight);
        stats = new LossStats(weight == 0 ? 0 : total / weight, tokens, correct);
        Record(loss, () =>
        {
            if (weight == 0) return;
            float g = loss.Grad![0];
            Spread(n, (long)n * v * 2, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++)
                {
                    if (m[r] == 0) continue;
                    var row = logits.Data.AsSpan(r * v, v);
                    var dr = logits.Grad.AsSpan(r * v, v);
                    float scale = (float)(g * m[r] / weight);
                    for (int i = 0; i < v; i++) dr[i] += scale * (float)Math.Exp(row[i] - lse[r]);
                    dr[tgt[r]] -= scale;
                }
            });
        });
        return loss;
    }
}
