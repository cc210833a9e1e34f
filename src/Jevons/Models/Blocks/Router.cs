using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;

namespace Jevons.Models.Blocks;

/// <summary>How router logits become expert scores (config.json scoring_func; GGUF expert_gating_func 1/2).</summary>
public enum ScoringFunction { Softmax, Sigmoid }

/// <summary>How the top-k experts are chosen (config.json topk_method).</summary>
public enum TopkMethod
{
    /// <summary>Top-k of all scores (DeepSeek-V2-Lite).</summary>
    Greedy,
    /// <summary>Keep the topk_group groups with the largest max score, then top-k inside them (DeepSeek-V2).</summary>
    GroupLimitedGreedy,
    /// <summary>Choice score = score + e_score_correction_bias; group score = sum of its 2 largest choice scores (DeepSeek-V3).</summary>
    NoAuxTc,
}

/// <summary>
/// The DeepSeekMoE router: gate logits (fp32) → scores → group-limited top-k → weights.
/// Weights are the unbiased scores of the chosen experts, divided by their sum when
/// <see cref="NormalizeTopK"/>, times <see cref="ScalingFactor"/>.
/// </summary>
public sealed class Router
{
    public Router(Linear gate, float[]? selectionBias, int topK, int groups, int topKGroups,
        ScoringFunction scoring, TopkMethod method, bool normalizeTopK, float scalingFactor)
    {
        int experts = gate.OutFeatures;
        if (topK <= 0 || topK > experts)
            JevonsException.Throw($"num_experts_per_tok {topK} must be in 1..{experts}", gate.File, gate.Name);
        if (groups <= 0 || experts % groups != 0)
            JevonsException.Throw($"n_group {groups} must divide the {experts} routed experts", gate.File, gate.Name);
        if (topKGroups <= 0 || topKGroups > groups)
            JevonsException.Throw($"topk_group {topKGroups} must be in 1..n_group {groups}", gate.File, gate.Name);
        if (groups > 1 && topKGroups * (experts / groups) < topK)
            JevonsException.Throw($"topk_group {topKGroups} groups of {experts / groups} experts cannot hold {topK} experts", gate.File, gate.Name);
        if (selectionBias is not null && selectionBias.Length != experts)
            JevonsException.Throw($"e_score_correction_bias has {selectionBias.Length} values for {experts} experts", gate.File, gate.Name);
        if (method == TopkMethod.NoAuxTc && groups > 1 && experts / groups < 2)
            JevonsException.Throw("noaux_tc needs at least 2 experts per group", gate.File, gate.Name);
        Gate = gate;
        SelectionBias = selectionBias;
        TopK = topK;
        Groups = groups;
        TopKGroups = topKGroups;
        Scoring = scoring;
        Method = method;
        NormalizeTopK = normalizeTopK;
        ScalingFactor = scalingFactor;
    }

    /// <summary>[experts, hidden] router weights.</summary>
    public Linear Gate { get; }
    public float[]? SelectionBias { get; }
    public int Experts => Gate.OutFeatures;
    public int TopK { get; }
    public int Groups { get; }
    public int TopKGroups { get; }
    public ScoringFunction Scoring { get; }
    public TopkMethod Method { get; }
    public bool NormalizeTopK { get; }
    public float ScalingFactor { get; }

    /// <summary>Floats of scratch <see cref="Route"/> needs.</summary>
    public int ScratchSize => 3 * Experts + Groups;

    /// <summary>Routes one token: <paramref name="experts"/>[TopK] ids and their final weights.</summary>
    public void Route(ReadOnlySpan<float> x, Span<int> experts, Span<float> weights, Span<float> scratch, WorkerPool pool)
    {
        var logits = scratch[..Experts];
        MatMul.MatVec(Gate, x, logits, pool);
        Select(logits, experts, weights, scratch[Experts..], pool.Path);
    }

    /// <summary>
    /// The selection from router logits (overwritten with scores). scratch holds 2·Experts + Groups floats.
    /// Experts come out in descending choice-score order.
    /// </summary>
    public void Select(Span<float> logits, Span<int> experts, Span<float> weights, Span<float> scratch) =>
        Select(logits, experts, weights, scratch, KernelDispatch.Default);

    /// <summary><see cref="Select(Span{float}, Span{int}, Span{float}, Span{float})"/> with the softmax on the given kernel path.</summary>
    public void Select(Span<float> logits, Span<int> experts, Span<float> weights, Span<float> scratch, KernelPath path)
    {
        int n = Experts;
        var scores = logits;
        if (Scoring == ScoringFunction.Softmax) Ops.Softmax(scores, path);
        else for (int i = 0; i < n; i++) scores[i] = 1f / (1f + MathF.Exp(-scores[i]));

        // Choice scores: biased for noaux_tc; masked to -inf outside the kept groups. A NaN (from a
        // NaN weight or activation) loses to every number, so routing stays defined; below, NaN in
        // choice is reserved to mark experts already taken.
        var choice = scratch[..n];
        for (int i = 0; i < n; i++)
        {
            float c = SelectionBias is null ? scores[i] : scores[i] + SelectionBias[i];
            choice[i] = float.IsNaN(c) ? float.NegativeInfinity : c;
        }

        if (Groups > 1 && Method != TopkMethod.Greedy)
        {
            int per = n / Groups;
            var groupScore = scratch.Slice(2 * n, Groups);
            for (int g = 0; g < Groups; g++)
            {
                var s = choice.Slice(g * per, per);
                if (Method == TopkMethod.NoAuxTc)
                {
                    float a = float.NegativeInfinity, b = float.NegativeInfinity;
                    foreach (var v in s)
                    {
                        if (v > a) { b = a; a = v; }
                        else if (v > b) b = v;
                    }
                    float sum = a + b; // +inf + -inf is NaN: such a group loses
                    groupScore[g] = float.IsNaN(sum) ? float.NegativeInfinity : sum;
                }
                else
                {
                    float m = float.NegativeInfinity;
                    foreach (var v in s) m = MathF.Max(m, v);
                    groupScore[g] = m;
                }
            }
            // Drop all but the TopKGroups best groups (ties: the lower index).
            var keep = scratch.Slice(n, Groups); // reuse: 1 = kept
            keep.Clear();
            for (int k = 0; k < TopKGroups; k++)
            {
                int best = -1;
                for (int g = 0; g < Groups; g++)
                    if (keep[g] == 0 && (best < 0 || groupScore[g] > groupScore[best])) best = g;
                keep[best] = 1;
            }
            for (int g = 0; g < Groups; g++)
                if (keep[g] == 0) choice.Slice(g * per, per).Fill(float.NegativeInfinity);
        }

        // Ties go to the lower index. TopK <= Experts, so an untaken expert always remains.
        for (int k = 0; k < TopK; k++)
        {
            int best = -1;
            float bestValue = 0;
            for (int i = 0; i < n; i++)
            {
                float v = choice[i];
                if (float.IsNaN(v)) continue; // already taken
                if (best < 0 || v > bestValue) { best = i; bestValue = v; }
            }
            experts[k] = best;
            weights[k] = scores[best];
            choice[best] = float.NaN;
        }
        // As llama.cpp (and the references): divide by the sum (accumulated in double, as ggml_sum_rows), then scale.
        if (NormalizeTopK)
        {
            double total = 0;
            for (int k = 0; k < TopK; k++) total += weights[k];
            float denominator = (float)total + 1e-20f;
            for (int k = 0; k < TopK; k++) weights[k] /= denominator;
        }
        if (ScalingFactor != 1f)
            for (int k = 0; k < TopK; k++) weights[k] *= ScalingFactor;
    }
}
