using System.Numerics.Tensors;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Models.Blocks;

/// <summary>
/// Grouped-query attention (Llama, Qwen2): q = Wq·x (+bq), k, v likewise with kvHeads ≤ heads,
/// RoPE on q and k, causal softmax(q·kᵀ / sqrt(headDim)) over the KV cache, then Wo.
/// Query head h reads KV head h / (heads / kvHeads).
/// </summary>
public sealed class GqaAttention
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
    /// y[n, hidden] = attention of x[n, hidden] (already normed) at positions pos0 .. pos0+n-1, appending
    /// their K/V to layer <paramref name="layer"/> of the cache. cos/sin are [n, rotary pairs].
    /// Several tokens go through the batched (GEMM) projections; one token through MatVec.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int n, int pos0, KvCache cache, int layer,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool neox, AttentionScratch s, WorkerPool pool)
    {
        int qDim = QueryDim, kvDim = KvDim, pairs = cos.Length / n;
        var q = s.Q.AsSpan(0, n * qDim);    // [n, heads, headDim]
        var k = s.K.AsSpan(0, n * kvDim);   // [n, kvHeads, headDim]
        var v = s.V.AsSpan(0, n * kvDim);
        Project(Q, x, q, n, pool);
        Project(K, x, k, n, pool);
        Project(V, x, v, n, pool);

        for (int t = 0; t < n; t++)
        {
            var c = cos.Slice(t * pairs, pairs);
            var sn = sin.Slice(t * pairs, pairs);
            for (int h = 0; h < Heads; h++)
                RopeFrequencies.Rotate(q.Slice(t * qDim + h * HeadDim, pairs * 2), c, sn, neox);
            for (int h = 0; h < KvHeads; h++)
                RopeFrequencies.Rotate(k.Slice(t * kvDim + h * HeadDim, pairs * 2), c, sn, neox);
            k.Slice(t * kvDim, kvDim).CopyTo(cache.Key(layer, pos0 + t));
            v.Slice(t * kvDim, kvDim).CopyTo(cache.Value(layer, pos0 + t));
        }

        s.Begin(this, cache, layer, n, pos0);
        pool.For(Heads, s.HeadsBody);
        s.End();

        Project(O, s.Out.AsSpan(0, n * qDim), y, n, pool);
    }

    static void Project(Linear w, ReadOnlySpan<float> x, Span<float> y, int n, WorkerPool pool)
    {
        if (n == 1) MatMul.MatVec(w, x, y, pool);
        else MatMul.Gemm(w, x, y, n, pool);
    }

    /// <summary>Causal attention of query heads [start, end) for every token of the current call.</summary>
    internal void AttendHeads(AttentionScratch s, int start, int end)
    {
        int qDim = QueryDim, kvDim = KvDim, hd = HeadDim, group = Heads / KvHeads;
        var keys = s.Cache!.Keys(s.Layer);
        var values = s.Cache.Values(s.Layer);
        for (int h = start; h < end; h++)
        {
            int kvOffset = h / group * hd;
            var scores = s.Scores.AsSpan(h * s.Capacity, s.Capacity);
            for (int t = 0; t < s.Tokens; t++)
            {
                int last = s.Pos0 + t; // attends to positions 0..last
                var qh = new ReadOnlySpan<float>(s.Q, t * qDim + h * hd, hd);
                for (int j = 0; j <= last; j++)
                    scores[j] = TensorPrimitives.Dot(qh, new ReadOnlySpan<float>(keys, j * kvDim + kvOffset, hd)) * Scale;
                var w = scores[..(last + 1)];
                Ops.Softmax(w);
                var o = new Span<float>(s.Out, t * qDim + h * hd, hd);
                o.Clear();
                for (int j = 0; j <= last; j++)
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(values, j * kvDim + kvOffset, hd), w[j], o, o);
            }
        }
    }
}

/// <summary>
/// Scratch of one sequence's attention: projections for up to <see cref="MaxTokens"/> tokens and a score
/// row per head of the cache's capacity. Allocated once per state (grown only for a larger prefill chunk),
/// so decoding one token allocates nothing.
/// </summary>
public sealed class AttentionScratch
{
    readonly int queryDim, kvDim;

    public AttentionScratch(int heads, int kvHeads, int headDim, int capacity, int maxTokens)
    {
        queryDim = heads * headDim;
        kvDim = kvHeads * headDim;
        Capacity = capacity;
        Scores = new float[(long)heads * capacity];
        HeadsBody = (start, end) => Attention!.AttendHeads(this, start, end);
        EnsureTokens(maxTokens);
    }

    public int Capacity { get; }
    public int MaxTokens { get; private set; }
    internal float[] Q { get; private set; } = [];
    internal float[] K { get; private set; } = [];
    internal float[] V { get; private set; } = [];
    internal float[] Out { get; private set; } = [];
    internal float[] Scores { get; }

    // The call in progress (read by the parallel body; set by Begin, cleared by End).
    internal GqaAttention? Attention { get; private set; }
    internal KvCache? Cache { get; private set; }
    internal int Layer { get; private set; }
    internal int Tokens { get; private set; }
    internal int Pos0 { get; private set; }
    internal Action<int, int> HeadsBody { get; }

    /// <summary>Makes room for <paramref name="tokens"/> tokens per call.</summary>
    public void EnsureTokens(int tokens)
    {
        if (tokens <= MaxTokens) return;
        MaxTokens = tokens;
        Q = new float[tokens * queryDim];
        K = new float[tokens * kvDim];
        V = new float[tokens * kvDim];
        Out = new float[tokens * queryDim];
    }

    internal void Begin(GqaAttention attention, KvCache cache, int layer, int tokens, int pos0)
    {
        Attention = attention;
        Cache = cache;
        Layer = layer;
        Tokens = tokens;
        Pos0 = pos0;
    }

    internal void End()
    {
        Attention = null;
        Cache = null;
    }
}
