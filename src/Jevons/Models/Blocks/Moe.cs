using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Models.Blocks;

/// <summary>Receives each token's routing decision (tests and tracing): layer, token, expert ids, weights.</summary>
public delegate void RoutingObserver(int layer, int token, ReadOnlySpan<int> experts, ReadOnlySpan<float> weights);

/// <summary>
/// DeepSeekMoE: y = Σ_k w_k·expert_k(x) over the router's top-k routed experts + the shared experts
/// (one SwiGLU MLP of width n_shared·moe_intermediate, unweighted). Only the selected experts' weights are
/// read. A batch of tokens is grouped by expert so each expert's weights are read once per call.
/// </summary>
public sealed class Moe
{
    public Moe(Router router, IReadOnlyList<FeedForward> experts, FeedForward? shared)
    {
        if (experts.Count != router.Experts)
            throw new ArgumentException($"router has {router.Experts} experts, {experts.Count} given");
        Router = router;
        Experts = experts;
        Shared = shared;
    }

    public Router Router { get; }
    public IReadOnlyList<FeedForward> Experts { get; }
    public FeedForward? Shared { get; }

    public long TotalParameters => Router.Gate.OutFeatures * (long)Router.Gate.InFeatures
        + Experts.Sum(e => e.Parameters) + (Shared?.Parameters ?? 0);

    /// <summary>Parameters one token touches: router, top-k routed experts (assuming equal sizes), shared.</summary>
    public long ActiveParameters => Router.Gate.OutFeatures * (long)Router.Gate.InFeatures
        + Router.TopK * Experts[0].Parameters + (Shared?.Parameters ?? 0);

    /// <summary>Scratch for <see cref="Forward"/>; grows to the largest batch seen, then stays.</summary>
    public sealed class Workspace
    {
        public float[] Logits = [], RouterScratch = [], Weights = [], Gathered = [], Gate = [], Up = [], Out = [];
        public int[] Ids = [], Counts = [], Offsets = [], Slots = [];
    }

    static Span<T> Ensure<T>(ref T[] buffer, long size)
    {
        if (buffer.Length < size) buffer = new T[size];
        return buffer.AsSpan(0, checked((int)size));
    }

    /// <summary>y[n, hidden] = MoE(x[n, hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int n, Workspace ws, WorkerPool pool,
        RoutingObserver? observer = null, int layer = 0)
    {
        var r = Router;
        int hidden = r.Gate.InFeatures, k = r.TopK, experts = r.Experts;

        // Route every token: ids/weights [n, k].
        var logits = Ensure(ref ws.Logits, (long)n * experts);
        MatMul.Gemm(r.Gate, x, logits, n, pool);
        var ids = Ensure(ref ws.Ids, (long)n * k);
        var weights = Ensure(ref ws.Weights, (long)n * k);
        var routerScratch = Ensure(ref ws.RouterScratch, r.ScratchSize);
        for (int t = 0; t < n; t++)
        {
            r.Select(logits.Slice(t * experts, experts), ids.Slice(t * k, k), weights.Slice(t * k, k), routerScratch);
            observer?.Invoke(layer, t, ids.Slice(t * k, k), weights.Slice(t * k, k));
        }

        // Shared experts first (they write y), routed experts accumulate on top.
        if (Shared is not null) Dense(Shared, x, y, n, ws, pool);
        else y[..(n * hidden)].Clear();

        // Group the n·k (token, expert) slots by expert.
        var counts = Ensure(ref ws.Counts, experts);
        var offsets = Ensure(ref ws.Offsets, experts + 1);
        var slots = Ensure(ref ws.Slots, (long)n * k);
        counts.Clear();
        foreach (var e in ids) counts[e]++;
        offsets[0] = 0;
        for (int e = 0; e < experts; e++) offsets[e + 1] = offsets[e] + counts[e];
        counts.Clear();
        for (int i = 0; i < n * k; i++) slots[offsets[ids[i]] + counts[ids[i]]++] = i;

        for (int e = 0; e < experts; e++)
        {
            int m = counts[e];
            if (m == 0) continue;
            var group = slots.Slice(offsets[e], m);
            var gathered = Ensure(ref ws.Gathered, (long)m * hidden);
            for (int j = 0; j < m; j++)
                x.Slice(group[j] / k * hidden, hidden).CopyTo(gathered.Slice(j * hidden, hidden));
            var output = Ensure(ref ws.Out, (long)m * hidden);
            Dense(Experts[e], gathered, output, m, ws, pool);
            for (int j = 0; j < m; j++)
                Ops.Axpy(weights[group[j]], output.Slice(j * hidden, hidden), y.Slice(group[j] / k * hidden, hidden));
        }
    }

    /// <summary>Y[n, hidden] = FFN(X[n, hidden]) as three Gemms (dense layers, shared and routed experts).</summary>
    public static void Dense(FeedForward f, ReadOnlySpan<float> x, Span<float> y, int n, Workspace ws, WorkerPool pool)
    {
        var g = Ensure(ref ws.Gate, (long)n * f.Hidden);
        var u = Ensure(ref ws.Up, (long)n * f.Hidden);
        MatMul.Gemm(f.Gate, x, g, n, pool);
        MatMul.Gemm(f.Up, x, u, n, pool);
        Ops.SwiGlu(g, u);
        MatMul.Gemm(f.Down, g, y, n, pool);
    }
}
