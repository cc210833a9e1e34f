using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Quants;

namespace Jevons.Models.Blocks;

/// <summary>Receives each token's routing decision (tests and tracing): layer, token, expert ids, weights.</summary>
public delegate void RoutingObserver(int layer, int token, ReadOnlySpan<int> experts, ReadOnlySpan<float> weights);

/// <summary>
/// DeepSeekMoE: y = Σ_k w_k·expert_k(x) over the router's top-k routed experts + the shared experts
/// (one SwiGLU MLP of width n_shared·moe_intermediate, unweighted). Only the selected experts' weights are
/// read. A batch of tokens is grouped by expert so each expert's weights are read once per call.
/// </summary>
public sealed unsafe class Moe : IFeedForwardBlock
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

    /// <summary>
    /// All experts of a step in two parallel loops (<see cref="GroupedGemm"/>; the default where the weights allow),
    /// or, when false, three Gemms per expert (the reference the grouped path is tested against; same bits).
    /// </summary>
    public bool GroupExperts { get; init; } = true;

    public long TotalParameters => Router.Gate.OutFeatures * (long)Router.Gate.InFeatures
        + Experts.Sum(e => e.Parameters) + (Shared?.Parameters ?? 0);

    /// <summary>Parameters one token touches: router, top-k routed experts (assuming equal sizes), shared.</summary>
    public long ActiveParameters => Router.Gate.OutFeatures * (long)Router.Gate.InFeatures
        + Router.TopK * Experts[0].Parameters + (Shared?.Parameters ?? 0);

    /// <summary>Scratch for <see cref="Forward"/>; grows to the largest batch seen, then stays.</summary>
    public sealed class Workspace
    {
        public float[] Logits = [], RouterScratch = [], Weights = [], Gathered = [], Gate = [], Up = [], Out = [];
        public int[] Ids = [], Counts = [], Offsets = [], Slots = [], SlotRows = [];
        internal readonly GroupedGemm Grouped = new();
        public float[] StepGate = [], StepUp = [], StepOut = [];
        public byte[] StepQuant = [];
    }

    static Span<T> Ensure<T>(ref T[] buffer, long size)
    {
        if (buffer.Length < size) buffer = new T[size];
        return buffer.AsSpan(0, checked((int)size));
    }

    /// <summary>
    /// y[rows, hidden] = MoE(x[rows, hidden]) over every row of the step, whatever sequence it belongs to: the
    /// rows are routed, then grouped by expert, so each selected expert's weights are read once per pass.
    /// </summary>
    public void Forward(StepWorkspace step, ReadOnlySpan<float> x, Span<float> y, int layer, WorkerPool pool) =>
        Forward(x, y, step.Rows, step.Moe, pool, step.Routing, layer, step.Profile);

    /// <summary>y[n, hidden] = MoE(x[n, hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int n, Workspace ws, WorkerPool pool,
        RoutingObserver? observer = null, int layer = 0, StepProfile? profile = null)
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
            r.Select(logits.Slice(t * experts, experts), ids.Slice(t * k, k), weights.Slice(t * k, k), routerScratch, pool.Path);
            observer?.Invoke(layer, t, ids.Slice(t * k, k), weights.Slice(t * k, k));
        }

        profile?.Mark(StepPhase.Router);

        if (GroupExperts && ForwardGrouped(x, y, n, ids[..(n * k)], weights[..(n * k)], ws, pool, profile)) return;
        if (n == 1 && ForwardStep(x, y, ids[..k], weights[..k], ws, pool))
        {
            profile?.Mark(StepPhase.ExpertsDown); // the other paths are timed as one phase
            return;
        }

        // Shared experts first (they write y), routed experts accumulate on top.
        if (Shared is not null) Dense(Shared, x, y, n, ws, pool);
        else y[..(n * hidden)].Clear();

        GroupByExpert(ids, n, ws, out var counts, out var offsets, out var slots);
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
                Ops.Axpy(weights[group[j]], output.Slice(j * hidden, hidden), y.Slice(group[j] / k * hidden, hidden), pool.Path);
        }
        profile?.Mark(StepPhase.ExpertsDown);
    }

    /// <summary>
    /// The n·k (token, expert) slots ids[n, k] grouped by expert: expert e's slots are slots[offsets[e] ..
    /// offsets[e] + counts[e]], in token order.
    /// </summary>
    void GroupByExpert(ReadOnlySpan<int> ids, int n, Workspace ws, out Span<int> counts, out Span<int> offsets, out Span<int> slots)
    {
        int k = Router.TopK, experts = Router.Experts;
        counts = Ensure(ref ws.Counts, experts);
        offsets = Ensure(ref ws.Offsets, experts + 1);
        slots = Ensure(ref ws.Slots, (long)n * k);
        counts.Clear();
        foreach (var e in ids) counts[e]++;
        offsets[0] = 0;
        for (int e = 0; e < experts; e++) offsets[e + 1] = offsets[e] + counts[e];
        counts.Clear();
        for (int i = 0; i < n * k; i++) slots[offsets[ids[i]] + counts[ids[i]]++] = i;
    }

    // ------------------------------------------------------------------ all experts of a step in two loops

    /// <summary>Whether an expert's three matrices take the grouped path and fit the layer's hidden size.</summary>
    static bool Groupable(FeedForward f, int hidden) =>
        GroupedGemm.Supports(f.Gate) && GroupedGemm.Supports(f.Up) && GroupedGemm.Supports(f.Down)
        && f.Gate.InFeatures == hidden && f.Down.OutFeatures == hidden;

    /// <summary>
    /// Every expert of the step in two parallel loops (<see cref="GroupedGemm"/>): gate and up of the shared expert
    /// over all rows and of each selected routed expert over the rows routed to it, then all their down projections.
    /// x is quantised once for the layer, each selected expert's weights are read once, and the pool forks and
    /// joins twice per layer instead of three times per expert. Each (row, token) is the dot the per-expert
    /// Gemms compute, SwiGLU runs over the same spans and the outputs are summed in the same order (shared,
    /// then routed by expert id, each expert's rows in token order), so the bits are those of the per-expert path.
    /// False (nothing done) where a weight is not a format <see cref="GroupedGemm"/> takes.
    /// </summary>
    bool ForwardGrouped(ReadOnlySpan<float> x, Span<float> y, int n, ReadOnlySpan<int> ids, ReadOnlySpan<float> weights, Workspace ws, WorkerPool pool,
        StepProfile? profile)
    {
        int k = Router.TopK, experts = Router.Experts, hidden = Router.Gate.InFeatures;
        if (Shared is not null && !Groupable(Shared, hidden)) return false;
        foreach (int e in ids)
            if (!Groupable(Experts[e], hidden)) return false;

        GroupByExpert(ids, n, ws, out var counts, out var offsets, out var slots);
        var slotRows = Ensure(ref ws.SlotRows, (long)n * k); // the row of x each grouped slot reads
        long routedWidth = 0;
        for (int i = 0; i < n * k; i++)
        {
            slotRows[i] = slots[i] / k;
            routedWidth += Experts[ids[slots[i]]].Hidden;
        }
        long sharedWidth = Shared is null ? 0 : (long)n * Shared.Hidden;
        // [shared rows, hidden_s] then per expert [its rows, hidden_e], in expert order
        var gate = Ensure(ref ws.Gate, sharedWidth + routedWidth);
        var up = Ensure(ref ws.Up, sharedWidth + routedWidth);
        var outs = Ensure(ref ws.Out, (long)n * k * hidden); // [grouped slot, hidden]
        var gg = ws.Grouped;
        fixed (float* px = x, py = y, pg = gate, pu = up, po = outs)
        {
            gg.Clear();
            int source = gg.AddSource(px, n, hidden);
            if (Shared is not null)
            {
                // first: its tiles (all n rows) cost the most, and the small ones are better left for the end of the loop
                int all = gg.AddSet(source, 0, n);
                gg.AddProduct(Shared.Gate, all, pg, Shared.Hidden);
                gg.AddProduct(Shared.Up, all, pu, Shared.Hidden);
            }
            long offset = sharedWidth;
            for (int e = 0; e < experts; e++)
            {
                int m = counts[e];
                if (m == 0) continue;
                var f = Experts[e];
                int set = gg.AddSet(source, slotRows.Slice(offsets[e], m));
                gg.AddProduct(f.Gate, set, pg + offset, f.Hidden);
                gg.AddProduct(f.Up, set, pu + offset, f.Hidden);
                offset += (long)m * f.Hidden;
            }
            gg.Run(pool);
            profile?.Mark(StepPhase.ExpertsGateUp);

            gg.Clear();
            if (Shared is not null)
            {
                Ops.SwiGlu(gate[..(int)sharedWidth], up[..(int)sharedWidth], pool.Path);
                int set = gg.AddSet(gg.AddSource(pg, n, Shared.Hidden), 0, n);
                gg.AddProduct(Shared.Down, set, py, hidden);
            }
            offset = sharedWidth;
            for (int e = 0; e < experts; e++)
            {
                int m = counts[e];
                if (m == 0) continue;
                var f = Experts[e];
                int width = m * f.Hidden;
                Ops.SwiGlu(gate.Slice((int)offset, width), up.Slice((int)offset, width), pool.Path);
                int set = gg.AddSet(gg.AddSource(pg + offset, m, f.Hidden), 0, m);
                gg.AddProduct(f.Down, set, po + (long)offsets[e] * hidden, hidden);
                offset += width;
            }
            gg.Run(pool);
            profile?.Mark(StepPhase.ExpertsDown);
        }

        if (Shared is null) y[..(n * hidden)].Clear();
        for (int i = 0; i < n * k; i++)
            Ops.Axpy(weights[slots[i]], outs.Slice(i * hidden, hidden), y.Slice(slotRows[i] * hidden, hidden), pool.Path);
        profile?.Mark(StepPhase.ExpertsCombine);
        return true;
    }

    // ------------------------------------------------------------------ one token, few dispatches

    /// <summary>
    /// One token's experts (routed + shared) in two parallel loops, gate and up of all experts then down of
    /// all experts, instead of three dispatches per expert. Every row is the same integer dot MatMul runs and
    /// the outputs are summed in the same order as the batched path, so the bits are those of
    /// <see cref="Dense"/> per expert. False (nothing done) where a weight does not take the integer path.
    /// </summary>
    bool ForwardStep(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<int> ids, ReadOnlySpan<float> weights, Workspace ws, WorkerPool pool)
    {
        int k = ids.Length, hidden = Router.Gate.InFeatures;
        int m = k + (Shared is null ? 0 : 1);
        // expert i: routed slots sorted by expert id (the batched path's accumulation order), then shared
        Span<int> order = stackalloc int[k];
        for (int i = 0; i < k; i++)
        {
            int j = i;
            while (j > 0 && ids[order[j - 1]] > ids[i]) { order[j] = order[j - 1]; j--; }
            order[j] = i;
        }
        Span<IntegerDot> dots = stackalloc IntegerDot[3 * m];
        long widths = 0, quantBytes = 0;
        for (int i = 0; i < m; i++)
        {
            var f = i < k ? Experts[ids[order[i]]] : Shared!;
            if (!FusedMatVec.IntegerPath(f.Gate, out dots[3 * i]) || !FusedMatVec.IntegerPath(f.Up, out dots[3 * i + 1])
                || !FusedMatVec.IntegerPath(f.Down, out dots[3 * i + 2]))
                return false;
            if (f.Gate.InFeatures != hidden || f.Up.InFeatures != hidden || f.Down.OutFeatures != hidden
                || f.Up.OutFeatures != f.Hidden || f.Gate.OutFeatures != f.Hidden || f.Down.InFeatures != f.Hidden)
                return false;
            widths += f.Hidden;
            quantBytes += ActivationQuant.ByteCount(dots[3 * i].Activation, hidden) + ActivationQuant.ByteCount(dots[3 * i + 1].Activation, hidden)
                + ActivationQuant.ByteCount(dots[3 * i + 2].Activation, f.Hidden);
        }
        var gate = Ensure(ref ws.StepGate, widths);
        var up = Ensure(ref ws.StepUp, widths);
        var outs = Ensure(ref ws.StepOut, (long)m * hidden);
        Ensure(ref ws.StepQuant, quantBytes);
        MatVecPart* parts = stackalloc MatVecPart[2 * m];
        fixed (float* px = x, pg = gate, pu = up, po = outs)
        fixed (byte* pq = ws.StepQuant)
        {
            // x quantised once per activation type (gate and up usually share one)
            byte* q = pq;
            byte* xq8_0 = null, xq8_k = null;
            for (int i = 0; i < 2 * m; i++)
            {
                var act = dots[3 * (i / 2) + i % 2].Activation;
                ref byte* cached = ref (act == DType.Q8_0 ? ref xq8_0 : ref xq8_k);
                if (act != DType.Q8_0 && act != DType.Q8_K) return false;
                if (cached == null)
                {
                    ActivationQuant.Quantize(act, px, q, hidden);
                    cached = q;
                    q += ActivationQuant.ByteCount(act, hidden);
                }
            }
            long offset = 0;
            for (int i = 0; i < m; i++)
            {
                var f = i < k ? Experts[ids[order[i]]] : Shared!;
                for (int g = 0; g < 2; g++)
                {
                    var d = dots[3 * i + g];
                    parts[2 * i + g] = FusedMatVec.Part(g == 0 ? f.Gate : f.Up, d, d.Activation == DType.Q8_0 ? xq8_0 : xq8_k, (g == 0 ? pg : pu) + offset);
                }
                offset += f.Hidden;
            }
            FusedMatVec.Run(pool, parts, 2 * m);

            offset = 0;
            for (int i = 0; i < m; i++)
            {
                var f = i < k ? Experts[ids[order[i]]] : Shared!;
                Ops.SwiGlu(gate.Slice((int)offset, f.Hidden), up.Slice((int)offset, f.Hidden), pool.Path);
                var d = dots[3 * i + 2];
                ActivationQuant.Quantize(d.Activation, pg + offset, q, f.Hidden);
                parts[i] = FusedMatVec.Part(f.Down, d, q, po + (long)i * hidden);
                q += ActivationQuant.ByteCount(d.Activation, f.Hidden);
                offset += f.Hidden;
            }
            FusedMatVec.Run(pool, parts, m);
        }

        if (Shared is not null) outs.Slice(k * hidden, hidden).CopyTo(y);
        else y[..hidden].Clear();
        for (int i = 0; i < k; i++)
            Ops.Axpy(weights[order[i]], outs.Slice(i * hidden, hidden), y[..hidden], pool.Path);
        return true;
    }

    /// <summary>Y[n, hidden] = FFN(X[n, hidden]) as three Gemms (dense layers, shared and routed experts).</summary>
    public static void Dense(FeedForward f, ReadOnlySpan<float> x, Span<float> y, int n, Workspace ws, WorkerPool pool)
    {
        var g = Ensure(ref ws.Gate, (long)n * f.Hidden);
        var u = Ensure(ref ws.Up, (long)n * f.Hidden);
        if (GroupedGemm.Supports(f.Gate) && GroupedGemm.Supports(f.Up))
        {
            // gate and up read the same x: one quantisation, one parallel loop (same bits as two Gemms)
            ws.Grouped.RunOnSameInput(x, n, f.Gate, g, f.Up, u, pool);
        }
        else
        {
            MatMul.Gemm(f.Gate, x, g, n, pool);
            MatMul.Gemm(f.Up, x, u, n, pool);
        }
        Ops.SwiGlu(g, u, pool.Path);
        MatMul.Gemm(f.Down, g, y, n, pool);
    }
}
