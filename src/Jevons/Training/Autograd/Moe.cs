using System.Numerics.Tensors;

namespace Jevons.Training.Autograd;

/// <summary>One MoE layer's routing of n tokens: expert ids [n, k] and gating weights [n, k] (a tape tensor).</summary>
public sealed record Routing(int[] Ids, Tensor Weights, int TopK, int Experts)
{
    /// <summary>Tokens sent to each expert.</summary>
    public int[] Load()
    {
        var load = new int[Experts];
        foreach (var e in Ids) load[e]++;
        return load;
    }

    /// <summary>Per expert: the token rows it serves and the top-k slot each came through, in token order.</summary>
    public (int[][] Tokens, int[][] Slots) ByExpert()
    {
        var load = Load();
        var tokens = new int[Experts][];
        var slots = new int[Experts][];
        for (int e = 0; e < Experts; e++) { tokens[e] = new int[load[e]]; slots[e] = new int[load[e]]; }
        var fill = new int[Experts];
        for (int i = 0; i < Ids.Length; i++)
        {
            int e = Ids[i];
            tokens[e][fill[e]] = i / TopK;
            slots[e][fill[e]++] = i % TopK;
        }
        return (tokens, slots);
    }
}

public sealed partial class Tape
{
    /// <summary>
    /// DeepSeek-V3 routing (sigmoid, noaux_tc with one group, as the engine's Router): s = σ(logits);
    /// the top-k of s + bias are chosen (bias is no parameter: it only moves the choice; ties go to the lower
    /// id); gating weights are the chosen s, divided by their sum when <paramref name="normalize"/>, times
    /// <paramref name="scaling"/>. Backward flows through s only: with S = Σ_k s_k and w = c·s/S,
    /// ds_k = c·(dw_k − Σ_j dw_j·s_j/S)/S; dlogit = ds·s·(1 − s).
    /// </summary>
    public Routing Route(Tensor logits, float[]? bias, int topK, bool normalize, float scaling)
    {
        int n = logits.Rows, experts = logits.Cols;
        var ids = new int[n * topK];
        var w = Result([n, topK], logits);
        var scores = new float[n * experts];
        var chosen = new float[n * topK];
        var sums = new float[n];
        var choice = new float[experts];
        for (int t = 0; t < n; t++)
        {
            var s = scores.AsSpan(t * experts, experts);
            for (int e = 0; e < experts; e++)
            {
                s[e] = 1f / (1f + MathF.Exp(-logits.Data[t * experts + e]));
                choice[e] = bias is null ? s[e] : s[e] + bias[e];
            }
            for (int k = 0; k < topK; k++)
            {
                int best = -1;
                float bestValue = 0;
                for (int e = 0; e < experts; e++)
                {
                    float v = choice[e];
                    if (float.IsNaN(v)) continue;
                    if (best < 0 || v > bestValue) { best = e; bestValue = v; }
                }
                ids[t * topK + k] = best;
                chosen[t * topK + k] = s[best];
                choice[best] = float.NaN;
            }
            double total = 0;
            for (int k = 0; k < topK; k++) total += chosen[t * topK + k];
            sums[t] = normalize ? (float)total + 1e-20f : 1f;
            for (int k = 0; k < topK; k++) w.Data[t * topK + k] = chosen[t * topK + k] / sums[t] * scaling;
        }
        Record(w, () =>
        {
            for (int t = 0; t < n; t++)
            {
                float S = sums[t], dot = 0;
                if (normalize)
                    for (int k = 0; k < topK; k++) dot += w.Grad![t * topK + k] * chosen[t * topK + k];
                for (int k = 0; k < topK; k++)
                {
                    int i = t * topK + k, e = ids[i];
                    float ds = normalize ? scaling * (w.Grad![i] - dot / S) / S : scaling * w.Grad![i];
                    float s = scores[t * experts + e];
                    logits.Grad![t * experts + e] += ds * s * (1 - s);
                }
            }
        });
        return new Routing(ids, w, topK, experts);
    }

    /// <summary>x[rows[i]] for each i: [rows.Length, d]. Backward adds each row's gradient back, in order.</summary>
    public Tensor Gather(Tensor x, int[] rows)
    {
        int d = x.Cols;
        var y = Result([rows.Length, d], zeroed: false, x);
        Spread(rows.Length, (long)rows.Length * d * 2, (i0, i1) =>
        {
            for (int i = i0; i < i1; i++) x.Data.AsSpan(rows[i] * d, d).CopyTo(y.Data.AsSpan(i * d, d));
        });
        Record(y, () =>
        {
            for (int i = 0; i < rows.Length; i++)
            {
                var g = x.Grad.AsSpan(rows[i] * d, d);
                TensorPrimitives.Add(g, y.Grad.AsSpan(i * d, d), g);
            }
        });
        return y;
    }

    /// <summary>
    /// The MoE combine: y[t] = Σ over experts e (in id order) and their rows i of w[t, slot]·out_e[i], where
    /// t = tokens[e][i], slot = slots[e][i]. Backward: dout_e[i] = w·dy[t]; dw[t, slot] = dy[t]·out_e[i].
    /// </summary>
    public Tensor Combine(int n, int d, IReadOnlyList<Tensor?> outputs, int[][] tokens, int[][] slots, Tensor weights)
    {
        int k = weights.Cols;
        var inputs = outputs.Where(o => o is not null).Cast<Tensor>().Append(weights).ToArray();
        var y = Result([n, d], inputs);
        // Spread by column blocks, so each element still sums its experts in id order.
        int blocks = (d + CombineBlock - 1) / CombineBlock;
        Spread(blocks, (long)n * d * (k + 1), (b0, b1) =>
        {
            int c0 = b0 * CombineBlock, width = Math.Min(d, b1 * CombineBlock) - c0;
            for (int e = 0; e < outputs.Count; e++)
            {
                if (outputs[e] is not { } oe) continue;
                for (int i = 0; i < tokens[e].Length; i++)
                {
                    int t = tokens[e][i];
                    var yt = y.Data.AsSpan(t * d + c0, width);
                    TensorPrimitives.MultiplyAdd(oe.Data.AsSpan(i * d + c0, width), weights.Data[t * k + slots[e][i]], yt, yt);
                }
            }
        });
        // Backward writes each expert's own rows and each (token, slot) once: spread by expert.
        Record(y, () => Spread(outputs.Count, (long)n * d * (k + 1), (e0, e1) =>
        {
            for (int e = e0; e < e1; e++)
            {
                if (outputs[e] is not { } oe) continue;
                for (int i = 0; i < tokens[e].Length; i++)
                {
                    int t = tokens[e][i], slot = t * k + slots[e][i];
                    var dy = y.Grad.AsSpan(t * d, d);
                    if (oe.Grad is not null)
                    {
                        var g = oe.Grad.AsSpan(i * d, d);
                        TensorPrimitives.MultiplyAdd(dy, weights.Data[slot], g, g);
                    }
                    if (weights.Grad is not null) weights.Grad[slot] += TensorPrimitives.Dot(dy, oe.Data.AsSpan(i * d, d));
                }
            }
        }));
        return y;
    }

    /// <summary>Columns per work item of the MoE combine (a multiple of every vector width).</summary>
    const int CombineBlock = 64;
}
