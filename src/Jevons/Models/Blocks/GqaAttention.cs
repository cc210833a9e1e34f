using System.Numerics.Tensors;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;

namespace Jevons.Models.Blocks;

/// <summary>
/// Grouped-query attention (Llama, Qwen2): q = Wq·x (+bq), k, v likewise with kvHeads ≤ heads,
/// RoPE on q and k, causal softmax(q·kᵀ / sqrt(headDim)) over the KV cache, then Wo.
/// Query head h reads KV head h / (heads / kvHeads).
/// </summary>
public sealed class GqaAttention : IAttentionBlock
{
    public GqaAttention(Linear q, Linear k, Linear v, Linear o, int heads, int kvHeads, int headDim)
    {
        if (heads % kvHeads != 0)
            JevonsException.Throw($"{heads} query heads is not a multiple of {kvHeads} KV heads", q.File, q.Name);
        Q = q;
        K = k;
        V = v;
        O = o;
        Heads = heads;
        KvHeads = kvHeads;
        HeadDim = headDim;
        Scale = 1f / MathF.Sqrt(headDim);
    }

    public Linear Q { get; }
    public Linear K { get; }
    public Linear V { get; }
    public Linear O { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public float Scale { get; }
    public int QueryDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;

    public long Parameters =>
        (long)Q.OutFeatures * Q.InFeatures + (long)K.OutFeatures * K.InFeatures + (long)V.OutFeatures * V.InFeatures + (long)O.OutFeatures * O.InFeatures
        + (Q.Bias?.Length ?? 0) + (K.Bias?.Length ?? 0) + (V.Bias?.Length ?? 0) + (O.Bias?.Length ?? 0);

    /// <summary>
    /// y[rows, hidden] = attention of x[rows, hidden] (already normed) for every row of the step: q/k/v for all
    /// rows at once (one read of Wq, Wk, Wv, Wo), rope at each row's position, each row's K/V written into its
    /// sequence's blocks, then causal attention per (segment, head) over that segment's cached positions.
    /// </summary>
    public void Forward(StepWorkspace step, ReadOnlySpan<float> x, Span<float> y, DecoderKvCache cache, int layer, WorkerPool pool)
    {
        var kv = (GqaPagedCache)cache;
        var ws = step.Gqa;
        int n = step.Rows, qDim = QueryDim, kvDim = KvDim, pairs = step.Pairs;
        var q = StepWorkspace.Ensure(ref ws.Q, (long)n * qDim);    // [rows, heads, headDim]
        var k = StepWorkspace.Ensure(ref ws.K, (long)n * kvDim);   // [rows, kvHeads, headDim]
        var v = StepWorkspace.Ensure(ref ws.V, (long)n * kvDim);
        if (GroupedGemm.Supports(Q) && GroupedGemm.Supports(K) && GroupedGemm.Supports(V))
            ws.Grouped.RunOnSameInput(x, n, Q, q, K, k, V, v, pool); // one quantisation, one loop (same bits, biases included)
        else
        {
            MatMul.Gemm(Q, x, q, n, pool);
            MatMul.Gemm(K, x, k, n, pool);
            MatMul.Gemm(V, x, v, n, pool);
        }
        step.Profile?.Mark(StepPhase.AttentionProjections);

        KvStore keys = kv.Keys(layer), values = kv.Values(layer);
        for (int sg = 0; sg < step.Segments; sg++)
        {
            var table = step.Table(sg);
            int r0 = step.Row0(sg), count = step.Count(sg);
            for (int t = r0; t < r0 + count; t++)
            {
                var c = step.CosOf(t);
                var sn = step.SinOf(t);
                for (int h = 0; h < Heads; h++)
                    RopeFrequencies.Rotate(q.Slice(t * qDim + h * HeadDim, pairs * 2), c, sn, step.Neox);
                for (int h = 0; h < KvHeads; h++)
                    RopeFrequencies.Rotate(k.Slice(t * kvDim + h * HeadDim, pairs * 2), c, sn, step.Neox);
                long row = kv.Row(table, step.Position(t));
                keys.Write(row, k.Slice(t * kvDim, kvDim));
                values.Write(row, v.Slice(t * kvDim, kvDim));
            }
        }
        step.Profile?.Mark(StepPhase.CacheWrite);
        AttentionItems.Layout(step, Heads, kv.BlockSize, ItemFixed, ref ws.ItemBase, ref ws.Scratch);
        var o = StepWorkspace.Ensure(ref ws.Out, (long)n * qDim);

        ws.Begin(this, step, kv, keys, values, pool.Path);
        try { pool.For(step.Segments * Heads, ws.Body); }
        finally { ws.End(); }
        step.Profile?.Mark(StepPhase.Attention);

        MatMul.Gemm(O, o, y, n, pool);
        step.Profile?.Mark(StepPhase.AttentionOutput);
    }

    /// <summary>Scratch of one (segment, head) item past its scores (none: keys and values are read in place).</summary>
    const int ItemFixed = 0;

    /// <summary>Causal attention of items [start, end) (item = segment · heads + head) over their cached positions.</summary>
    void AttendItems(Workspace ws, int start, int end)
    {
        switch (ws.Keys!.Type)
        {
            case KvType.F32: AttendItems<F32Elements>(ws, start, end); break;
            case KvType.F16: AttendItems<F16Elements>(ws, start, end); break;
            default: AttendItems<Bf16Elements>(ws, start, end); break;
        }
    }

    unsafe void AttendItems<TLoad>(Workspace ws, int start, int end) where TLoad : IElementLoader
    {
        var step = ws.Step!;
        var cache = ws.Cache!;
        KvStore keys = ws.Keys!, values = ws.Values!;
        int qDim = QueryDim, hd = HeadDim, group = Heads / KvHeads, bs = cache.BlockSize, stride = keys.RowSize;
        var path = ws.Path;
        int elementBytes = KvStore.ElementBytes(keys.Type);
        for (int item = start; item < end; item++)
        {
            var it = AttentionItems.Get(step, item, Heads, bs, ItemFixed, ws.ItemBase, ws.Scratch);
            var table = it.Table;
            int h = it.Head, r0 = it.Row0, count = it.Count, pos0 = it.Pos0, kvOffset = h / group * hd;
            fixed (float* scores = it.Scratch, qAll = ws.Q, oAll = ws.Out)
            fixed (byte* kBase = &keys.Origin, vBase = &values.Origin)
            {
                for (int t = 0; t < count; t++)
                {
                    int last = pos0 + t; // attends to positions 0..last
                    float* qh = qAll + (long)(r0 + t) * qDim + h * hd;
                    for (int j0 = 0; j0 <= last; j0 += bs) // block by block: rows of a block are consecutive
                    {
                        long rowBase = (long)table[j0 / bs] * bs;
                        HeadAttention.Scores<TLoad>(qh, kBase + (rowBase * stride + kvOffset) * elementBytes, stride,
                            Math.Min(bs, last + 1 - j0), hd, Scale, scores + j0, path);
                    }
                    Ops.Softmax(new Span<float>(scores, last + 1), path);
                    float* o = oAll + (long)(r0 + t) * qDim + h * hd;
                    new Span<float>(o, hd).Clear();
                    for (int j0 = 0; j0 <= last; j0 += bs)
                    {
                        long rowBase = (long)table[j0 / bs] * bs;
                        HeadAttention.Accumulate<TLoad>(scores + j0, vBase + (rowBase * stride + kvOffset) * elementBytes, stride,
                            Math.Min(bs, last + 1 - j0), hd, o, path);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Scratch of the attention of one step: projections for every row and per-(segment, head) score rows.
    /// Grown to the largest step seen, then reused; carries the call in progress to the parallel body through a
    /// delegate made once, so a decode step allocates nothing.
    /// </summary>
    public sealed class Workspace
    {
        internal float[] Q = [], K = [], V = [], Out = [], Scratch = [];
        internal int[] ItemBase = [];
        internal readonly GroupedGemm Grouped = new();

        public Workspace() => Body = (start, end) => Attention!.AttendItems(this, start, end);

        // The call in progress (set by Begin, cleared by End).
        internal GqaAttention? Attention;
        internal StepWorkspace? Step;
        internal GqaPagedCache? Cache;
        internal KvStore? Keys, Values;
        internal KernelPath Path;
        internal readonly Action<int, int> Body;

        internal void Begin(GqaAttention attention, StepWorkspace step, GqaPagedCache cache, KvStore keys, KvStore values, KernelPath path)
        {
            Path = path;
            Attention = attention;
            Step = step;
            Cache = cache;
            Keys = keys;
            Values = values;
        }

        internal void End()
        {
            Attention = null;
            Step = null;
            Cache = null;
            Keys = Values = null;
        }
    }
}
