using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Quants;
using Jevons.Numerics.Simd;

namespace Jevons.Models.Blocks;

/// <summary>How MLA evaluates attention over the latent cache.</summary>
public enum MlaAttentionMode
{
    /// <summary>
    /// W_UK folded into the query, attention over the latent c_kv, W_UV applied after: each step reads the
    /// latent cache once for all heads and never materialises per-head keys or values. The default.
    /// </summary>
    Absorbed,
    /// <summary>The readable reference: every cached latent is expanded by kv_b_proj into per-head k_nope and v.</summary>
    Decompressed,
}

/// <summary>The shapes of one MLA layer.</summary>
public sealed record MlaShape(int Hidden, int Heads, int QLoraRank, int KvLoraRank, int QkNopeHeadDim, int QkRopeHeadDim, int VHeadDim)
{
    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;
}

/// <summary>
/// Multi-head Latent Attention (DeepSeek-V2/V3). q = q_proj(x) or q_b_proj(rmsnorm(q_a_proj(x))), per head
/// [q_nope | q_pe]; kv_a_proj_with_mqa(x) = [c_kv | k_pe]; c_kv is normalised by kv_a_layernorm and cached;
/// kv_b_proj expands it per head into [k_nope | v]; RoPE (interleaved pairs) acts on q_pe and the shared k_pe;
/// o_proj maps heads·v_head_dim back to hidden. The key/value up-projection is either kv_b_proj
/// [heads·(nope+v), kv_lora] or llama.cpp's split form k_b [heads, kv_lora, nope] and v_b [heads, v, kv_lora].
/// </summary>
public sealed class Mla : IAttentionBlock
{
    readonly Linear? _q, _qA, _qB, _kvB;
    readonly float[]? _qANorm;
    readonly Linear _kvA, _o;
    readonly float[] _kvANorm;
    readonly Linear[]? _kB, _vB;
    readonly float _eps;
    readonly DType _latentActivation;
    readonly float[]? _kvBFloat;
    readonly float[][]? _kBFloat, _vBFloat;

    static float[] Decode(Linear w)
    {
        var f = new float[(long)w.OutFeatures * w.InFeatures];
        for (int i = 0; i < w.OutFeatures; i++) MatMul.DecodeRow(w, i, f.AsSpan(i * w.InFeatures, w.InFeatures));
        return f;
    }

    /// <summary>Bytes of the load-time float32 copies of a quantised kv_b (or k_b/v_b) this layer keeps; 0 when none.</summary>
    public long DecodedWeightBytes =>
        ((long?)_kvBFloat?.Length ?? 0) * sizeof(float)
        + (_kBFloat?.Sum(a => (long)a.Length) ?? 0) * sizeof(float)
        + (_vBFloat?.Sum(a => (long)a.Length) ?? 0) * sizeof(float);

    /// <summary>Largest float32 copy of a quantised kv_b kept per layer (V2-Lite: 8 MiB; V2/V3 with 128 heads: 64 MiB, not kept).</summary>
    public const long DecodedKvBLimit = 16L << 20;

    public Mla(MlaShape shape, float eps, float[] inverseFrequencies, float softmaxScale,
        Linear? q, Linear? qA, float[]? qANorm, Linear? qB,
        Linear kvA, float[] kvANorm, Linear? kvB, Linear[]? kB, Linear[]? vB, Linear o)
    {
        Shape = shape;
        _eps = eps;
        InverseFrequencies = inverseFrequencies;
        SoftmaxScale = softmaxScale;
        _q = q; _qA = qA; _qANorm = qANorm; _qB = qB;
        _kvA = kvA; _kvANorm = kvANorm; _kvB = kvB; _kB = kB; _vB = vB; _o = o;
        if ((q is null) == (qA is null || qB is null || qANorm is null))
            throw new ArgumentException("MLA needs either q_proj or all of q_a_proj, q_a_layernorm and q_b_proj");
        if (kvB is null && (kB is null || vB is null))
            throw new ArgumentException("MLA needs kv_b_proj or both split k_b and v_b");
        if (inverseFrequencies.Length * 2 != shape.QkRopeHeadDim)
            throw new ArgumentException("inverse frequencies must cover qk_rope_head_dim / 2 pairs");
        // Every step multiplies by all of kv_b; decoding it once here (same values, same arithmetic) instead of
        // once per step is ~3.5x faster attention on V2-Lite shapes, for a float copy bounded per layer.
        if (kvB is not null && kvB.Type != DType.F32 && (long)kvB.OutFeatures * kvB.InFeatures * sizeof(float) <= DecodedKvBLimit)
        {
            _kvBFloat = new float[(long)kvB.OutFeatures * kvB.InFeatures];
            for (int i = 0; i < kvB.OutFeatures; i++) MatMul.DecodeRow(kvB, i, _kvBFloat.AsSpan(i * kvB.InFeatures, kvB.InFeatures));
        }
        if (kB is not null && vB is not null && kB.Length > 0 && kB[0].Type != DType.F32
            && (long)kB.Length * (kB[0].OutFeatures * (long)kB[0].InFeatures + vB[0].OutFeatures * (long)vB[0].InFeatures) * sizeof(float) <= DecodedKvBLimit)
        {
            _kBFloat = kB.Select(Decode).ToArray();
            _vBFloat = vB.Select(Decode).ToArray();
        }
        _latentActivation = kvB is null ? DType.F32 : ActivationTypeOf(kvB.Type);
        if (_latentActivation != DType.F32 && shape.KvLoraRank % _latentActivation.BlockSize() != 0)
            _latentActivation = DType.F32;
    }

    /// <summary>
    /// The block type llama.cpp's CPU backend quantises activations to before an integer dot with weights of
    /// type <paramref name="weight"/>: Q8_K for k-quants, Q8_0 for the 32-element formats, F32 (none) for floats.
    /// </summary>
    public static DType ActivationTypeOf(DType weight) => weight switch
    {
        DType.F32 or DType.F16 or DType.BF16 or DType.F8_E4M3 => DType.F32,
        DType.Q2_K or DType.Q3_K or DType.Q4_K or DType.Q5_K or DType.Q6_K => DType.Q8_K,
        _ => DType.Q8_0,
    };

    /// <summary>
    /// The type the cached latent is rounded through (F32: none). llama.cpp evaluates MLA expanded:
    /// k_nope|v = kv_b · c, an integer dot against c quantised to Q8_0/Q8_K blocks. Since that dot equals
    /// the float dot of the dequantised weights with the dequantised activation blocks, caching c through the
    /// same round trip makes the absorbed form (and the decompressed one) compute llama.cpp's expanded values
    /// up to float summation order, without materialising per-head keys and values.
    /// </summary>
    public DType LatentActivation => _latentActivation;

    public MlaShape Shape { get; }
    int RowScratch => Math.Max(Shape.KvLoraRank, Math.Max(Shape.QkNopeHeadDim, Shape.VHeadDim));
    public float[] InverseFrequencies { get; }
    public float SoftmaxScale { get; }

    /// <summary>The Linears of this layer (for parameter and byte counts).</summary>
    public IEnumerable<Linear> Linears
    {
        get
        {
            foreach (var l in new[] { _q, _qA, _qB, _kvA, _kvB, _o })
                if (l is not null) yield return l;
            if (_kvB is null)
            {
                foreach (var l in _kB!) yield return l;
                foreach (var l in _vB!) yield return l;
            }
        }
    }

    /// <summary>Absorbed (default) or the decompressed reference.</summary>
    public MlaAttentionMode Mode { get; init; } = MlaAttentionMode.Absorbed;

    /// <summary>
    /// Scratch for <see cref="Forward"/>; grows to the largest step and context seen, then stays. It also
    /// carries the call in progress to the parallel loops through delegates made once, so a decode step
    /// allocates nothing.
    /// </summary>
    public sealed class Workspace
    {
        public float[] Q = [], QA = [], KvA = [], Heads = [], HeadScratch = [], Expanded = [], Row = [];
        public byte[] LatentBlocks = [];
        internal int[] RowSegment = [];
        internal readonly GroupedGemm Grouped = new();

        public Workspace()
        {
            AbsorbedBody = (i0, i1) => Layer!.AttendAbsorbedItems(this, i0, i1);
            ExpandBody = (h0, h1) => Layer!.ExpandHeads(this, h0, h1);
            DecompressedBody = (h0, h1) => Layer!.AttendDecompressedHeads(this, h0, h1);
        }

        // The call in progress (set before a parallel loop, cleared after).
        internal Mla? Layer;
        internal StepWorkspace? Step;
        internal LatentPagedCache? Cache;
        internal KvStore? Latent, RopeKey;
        internal int Segment, PerHead, RowLen, Bound, RowBlocks;
        /// <summary>The kernel path of the pool the call runs on (its worker bodies take no pool).</summary>
        internal KernelPath Path;
        internal readonly Action<int, int> AbsorbedBody, ExpandBody, DecompressedBody;

        internal static Span<float> Ensure(ref float[] buffer, long size)
        {
            if (buffer.Length < size) buffer = new float[size];
            return buffer.AsSpan(0, checked((int)size));
        }

        /// <summary>Points the bodies at this call's layer, cache stores and scratch layout.</summary>
        internal void Begin(Mla layer, StepWorkspace step, LatentPagedCache cache, KvStore latent, KvStore ropeKey, int rowLen)
        {
            Layer = layer;
            Step = step;
            Cache = cache;
            Latent = latent;
            RopeKey = ropeKey;
            RowLen = rowLen;
        }

        internal void End()
        {
            Layer = null;
            Step = null;
            Cache = null;
            Latent = RopeKey = null;
        }
    }

    /// <summary>
    /// y[rows, hidden] = MLA(x[rows, hidden]) for every row of the step: projections over all rows at once,
    /// each row's normalised c_kv and roped k_pe written into its sequence's blocks, then attention per
    /// (segment, head) over the segment's cached latents.
    /// </summary>
    public void Forward(StepWorkspace step, ReadOnlySpan<float> x, Span<float> y, DecoderKvCache cache, int layer, WorkerPool pool)
    {
        var kv = (LatentPagedCache)cache;
        var ws = step.Mla;
        ws.Path = pool.Path;
        var s = Shape;
        int n = step.Rows, qDim = s.Heads * s.QkHeadDim, kvADim = s.KvLoraRank + s.QkRopeHeadDim;

        // Query [rows, heads, nope + rope] (through q_a [rows, q_lora] with a q LoRA) and latent + rope key
        // [rows, kv_lora + rope]: q (or q_a) and kv_a read the same x, so they run as one grouped product
        var q = Workspace.Ensure(ref ws.Q, (long)n * qDim);
        var kva = Workspace.Ensure(ref ws.KvA, (long)n * kvADim);
        var qFirst = _q ?? _qA!;
        var qOut = _q is not null ? q : Workspace.Ensure(ref ws.QA, (long)n * s.QLoraRank);
        if (GroupedGemm.Supports(qFirst) && GroupedGemm.Supports(_kvA))
            ws.Grouped.RunOnSameInput(x, n, qFirst, qOut, _kvA, kva, pool);
        else
        {
            MatMul.Gemm(qFirst, x, qOut, n, pool);
            MatMul.Gemm(_kvA, x, kva, n, pool);
        }
        if (_q is null)
        {
            for (int t = 0; t < n; t++)
            {
                var row = qOut.Slice(t * s.QLoraRank, s.QLoraRank);
                Ops.RmsNorm(row, _qANorm, _eps, row, pool.Path);
            }
            MatMul.Gemm(_qB!, qOut, q, n, pool);
        }
        step.Profile?.Mark(StepPhase.AttentionProjections);

        // c_kv and k_pe → cache
        KvStore latent = kv.Latent(layer), ropeKey = kv.RopeKey(layer);
        var c = Workspace.Ensure(ref ws.Row, s.KvLoraRank);
        for (int sg = 0; sg < step.Segments; sg++)
        {
            var table = step.Table(sg);
            for (int t = step.Row0(sg); t < step.Row0(sg) + step.Count(sg); t++)
            {
                long row = kv.Row(table, step.Position(t));
                var cos = step.CosOf(t);
                var sin = step.SinOf(t);
                Ops.RmsNorm(kva.Slice(t * kvADim, s.KvLoraRank), _kvANorm, _eps, c, pool.Path);
                if (_latentActivation != DType.F32) RoundTrip(_latentActivation, c, ws);
                latent.Write(row, c);
                var kpe = kva.Slice(t * kvADim + s.KvLoraRank, s.QkRopeHeadDim);
                RopeFrequencies.Rotate(kpe, cos, sin, step.Neox);
                ropeKey.Write(row, kpe);
                for (int h = 0; h < s.Heads; h++)
                    RopeFrequencies.Rotate(q.Slice(t * qDim + h * s.QkHeadDim + s.QkNopeHeadDim, s.QkRopeHeadDim), cos, sin, step.Neox);
            }
        }

        step.Profile?.Mark(StepPhase.CacheWrite);
        Workspace.Ensure(ref ws.Heads, (long)n * s.Heads * s.VHeadDim); // [rows, heads, v]
        ws.Begin(this, step, kv, latent, ropeKey, RowScratch);
        try
        {
            if (Mode == MlaAttentionMode.Absorbed) AttendAbsorbed(step, kv.BlockSize, ws, pool);
            else AttendDecompressed(step, kv.BlockSize, ws, pool);
        }
        finally { ws.End(); }
        step.Profile?.Mark(StepPhase.Attention);

        MatMul.Gemm(_o, ws.Heads.AsSpan(0, n * s.Heads * s.VHeadDim), y, n, pool);
        step.Profile?.Mark(StepPhase.AttentionOutput);
    }

    /// <summary>
    /// Per head: q_lat = W_UKᵀ·q_nope (kv_lora), score_s = (q_lat·c_s + q_pe·kpe_s)·scale, o_lat = Σ p_s c_s,
    /// out = W_UV·o_lat. One parallel loop over (head, block of up to <see cref="TokenBlock"/> consecutive rows)
    /// items across all sequences of the step: a block's W_UK / W_UV products share one pass over the head's kv_b
    /// rows whichever sequences its rows belong to (at 8 decode streams a layer reads each head's kv_b once,
    /// not once per stream), and each row attends over its own sequence's positions.
    /// </summary>
    void AttendAbsorbed(StepWorkspace step, int blockSize, Workspace ws, WorkerPool pool)
    {
        int n = step.Rows, blocks = (n + TokenBlock - 1) / TokenBlock, bound = 0;
        var rowSegment = StepWorkspace.Ensure(ref ws.RowSegment, n);
        for (int sg = 0; sg < step.Segments; sg++)
        {
            rowSegment.Slice(step.Row0(sg), step.Count(sg)).Fill(sg);
            bound = Math.Max(bound, step.PositionBound(sg, blockSize));
        }
        ws.Bound = bound;
        ws.PerHead = AbsorbedItemFixed + bound;
        ws.RowBlocks = blocks;
        Workspace.Ensure(ref ws.HeadScratch, (long)Shape.Heads * blocks * ws.PerHead);
        pool.For(Shape.Heads * blocks, ws.AbsorbedBody);
    }

    /// <summary>
    /// Scratch of one (head, row block) item besides its scores: qLat and oLat per row, a decoded weight row, a
    /// c_kv and a k_pe row (16-bit caches). Laid out qLats | oLats | row | scores (the step's largest position
    /// bound) | c_kv | k_pe.
    /// </summary>
    int AbsorbedItemFixed => 2 * Shape.KvLoraRank * TokenBlock + RowScratch + Shape.KvLoraRank + Shape.QkRopeHeadDim;

    /// <summary>Rows whose W_UK / W_UV products share one decode of the head's kv_b rows.</summary>
    const int TokenBlock = 32;

    void AttendAbsorbedItems(Workspace ws, int i0, int i1)
    {
        var s = Shape;
        var step = ws.Step!;
        var cache = ws.Cache!;
        KvStore latent = ws.Latent!, ropeKey = ws.RopeKey!;
        int r = s.KvLoraRank, rowLen = ws.RowLen, qDim = s.Heads * s.QkHeadDim, rope = s.QkRopeHeadDim, bs = cache.BlockSize;
        int positions = ws.Bound;
        var path = ws.Path;
        for (int item = i0; item < i1; item++)
        {
            // item = head · blocks + block: a thread's consecutive items share the head's kv_b rows
            int h = item / ws.RowBlocks, r0 = item % ws.RowBlocks * TokenBlock, tn = Math.Min(TokenBlock, step.Rows - r0);
            var hs = ws.HeadScratch.AsSpan(item * ws.PerHead, ws.PerHead);
            var qLats = hs[..(r * TokenBlock)];
            var oLats = hs.Slice(r * TokenBlock, r * TokenBlock);
            var row = hs.Slice(2 * r * TokenBlock, rowLen);
            var cRow = hs.Slice(2 * r * TokenBlock + rowLen + positions, r);
            var kRow = hs.Slice(2 * r * TokenBlock + rowLen + positions + r, rope);
            AbsorbKeys(h, ws.Q.AsSpan(r0 * qDim + h * s.QkHeadDim), qDim, tn, qLats, row, path);
            for (int i = 0; i < tn; i++)
            {
                int t = r0 + i, len = step.Position(t) + 1;
                var table = step.Table(ws.RowSegment[t]);
                var qLat = qLats.Slice(i * r, r);
                var oLat = oLats.Slice(i * r, r);
                var scores = hs.Slice(2 * r * TokenBlock + rowLen, len);
                var qPe = ws.Q.AsSpan(t * qDim + h * s.QkHeadDim + s.QkNopeHeadDim, rope);
                for (int j0 = 0; j0 < len; j0 += bs) // block by block: rows of a block are consecutive
                {
                    long rowBase = (long)table[j0 / bs] * bs;
                    for (int k = 0, stop = Math.Min(bs, len - j0); k < stop; k++)
                        scores[j0 + k] = (Ops.Dot(qLat, latent.Read(rowBase + k, 0, r, cRow), path) + Ops.Dot(qPe, ropeKey.Read(rowBase + k, 0, rope, kRow), path)) * SoftmaxScale;
                }
                Ops.Softmax(scores, path);
                oLat.Clear();
                for (int j0 = 0; j0 < len; j0 += bs)
                {
                    long rowBase = (long)table[j0 / bs] * bs;
                    for (int k = 0, stop = Math.Min(bs, len - j0); k < stop; k++)
                        Ops.Axpy(scores[j0 + k], latent.Read(rowBase + k, 0, r, cRow), oLat, path);
                }
            }
            ExpandValues(h, oLats, tn, ws.Heads.AsSpan((r0 * s.Heads + h) * s.VHeadDim), s.Heads * s.VHeadDim, row, path);
        }
    }

    /// <summary>
    /// The reference: per segment, expand every cached latent to per-head [k_nope | v], then plain attention.
    /// Segments run one after another (each over its own expansion); heads in parallel.
    /// </summary>
    void AttendDecompressed(StepWorkspace step, int blockSize, Workspace ws, WorkerPool pool)
    {
        var s = Shape;
        int kvDim = s.QkNopeHeadDim + s.VHeadDim;
        for (int sg = 0; sg < step.Segments; sg++)
        {
            int positions = step.PositionBound(sg, blockSize);
            Workspace.Ensure(ref ws.Expanded, (long)positions * s.Heads * kvDim); // [positions, heads, nope + v]
            ws.PerHead = ws.RowLen + positions + s.KvLoraRank + s.QkRopeHeadDim;
            Workspace.Ensure(ref ws.HeadScratch, (long)s.Heads * ws.PerHead);
            ws.Segment = sg;
            pool.For(s.Heads, ws.ExpandBody);
            pool.For(s.Heads, ws.DecompressedBody);
        }
    }

    void ExpandHeads(Workspace ws, int h0, int h1)
    {
        var s = Shape;
        var step = ws.Step!;
        var table = step.Table(ws.Segment);
        int r = s.KvLoraRank, kvDim = s.QkNopeHeadDim + s.VHeadDim, total = step.Pos0(ws.Segment) + step.Count(ws.Segment);
        int bound = step.PositionBound(ws.Segment, ws.Cache!.BlockSize);
        for (int h = h0; h < h1; h++)
        {
            var row = ws.HeadScratch.AsSpan(h * ws.PerHead, ws.RowLen);
            var cRow = ws.HeadScratch.AsSpan(h * ws.PerHead + ws.RowLen + bound, r);
            for (int j = 0; j < total; j++)
                ExpandKeyValue(h, ws.Latent!.Read(ws.Cache!.Row(table, j), 0, r, cRow), ws.Expanded.AsSpan((j * s.Heads + h) * kvDim, kvDim), row, ws.Path);
        }
    }

    void AttendDecompressedHeads(Workspace ws, int h0, int h1)
    {
        var s = Shape;
        var step = ws.Step!;
        int sg = ws.Segment;
        var table = step.Table(sg);
        int r0 = step.Row0(sg), count = step.Count(sg), pos0 = step.Pos0(sg), bound = step.PositionBound(sg, ws.Cache!.BlockSize);
        int kvDim = s.QkNopeHeadDim + s.VHeadDim, qDim = s.Heads * s.QkHeadDim, nope = s.QkNopeHeadDim, rope = s.QkRopeHeadDim;
        float[] ex = ws.Expanded;
        var path = ws.Path;
        for (int h = h0; h < h1; h++)
        {
            var kRow = ws.HeadScratch.AsSpan(h * ws.PerHead + ws.RowLen + bound + s.KvLoraRank, rope);
            for (int t = 0; t < count; t++)
            {
                int len = pos0 + t + 1;
                var scores = ws.HeadScratch.AsSpan(h * ws.PerHead + ws.RowLen, len);
                var qh = ws.Q.AsSpan((r0 + t) * qDim + h * s.QkHeadDim, s.QkHeadDim);
                for (int j = 0; j < len; j++)
                {
                    var kv = ex.AsSpan((j * s.Heads + h) * kvDim, kvDim);
                    scores[j] = (Ops.Dot(qh[..nope], kv[..nope], path) + Ops.Dot(qh[nope..], ws.RopeKey!.Read(ws.Cache!.Row(table, j), 0, rope, kRow), path)) * SoftmaxScale;
                }
                Ops.Softmax(scores, path);
                var o = ws.Heads.AsSpan(((r0 + t) * s.Heads + h) * s.VHeadDim, s.VHeadDim);
                o.Clear();
                for (int j = 0; j < len; j++)
                    Ops.Axpy(scores[j], ex.AsSpan((j * s.Heads + h) * kvDim + nope, s.VHeadDim), o, path);
            }
        }
    }

    /// <summary>
    /// qLats[i][kv_lora] = W_UK[h]ᵀ · qNope_i for <paramref name="count"/> queries <paramref name="stride"/> floats
    /// apart (each starting with its nope part). Every weight row is decoded once for all of them; each query
    /// sees the same operations in the same order as alone.
    /// </summary>
    void AbsorbKeys(int h, ReadOnlySpan<float> queries, int stride, int count, Span<float> qLats, Span<float> row, KernelPath path)
    {
        int r = Shape.KvLoraRank, nope = Shape.QkNopeHeadDim;
        if (_kB is not null)
        {
            // k_b[h] is [kv_lora, nope]
            RowDots(_kB[h], _kBFloat?[h], 0, r, queries, stride, count, qLats, r, row, path);
            return;
        }
        for (int i = 0; i < count; i++) qLats.Slice(i * r, r).Clear();
        int baseRow = h * (nope + Shape.VHeadDim);
        for (int d = 0; d < nope; d++)
        {
            var w = KvBRow(baseRow + d, row);
            for (int i = 0; i < count; i++)
                Ops.Axpy(queries[i * stride + d], w, qLats.Slice(i * r, r), path);
        }
    }

    /// <summary>out[v] = W_UV[h] · oLat[kv_lora].</summary>
    void ExpandValue(int h, ReadOnlySpan<float> oLat, Span<float> output, Span<float> row, KernelPath path) =>
        ExpandValues(h, oLat, 1, output, Shape.VHeadDim, row, path);

    /// <summary>outputs[i·stride ..][v] = W_UV[h] · oLats[i] for <paramref name="count"/> latents (kv_lora apart).</summary>
    void ExpandValues(int h, ReadOnlySpan<float> oLats, int count, Span<float> outputs, int stride, Span<float> row, KernelPath path)
    {
        int r = Shape.KvLoraRank;
        if (_vB is not null)
        {
            RowDots(_vB[h], _vBFloat?[h], 0, Shape.VHeadDim, oLats, r, count, outputs, stride, row, path);
            return;
        }
        int b0 = h * (Shape.QkNopeHeadDim + Shape.VHeadDim) + Shape.QkNopeHeadDim;
        if (_kvBFloat is not null)
        {
            for (int o = 0; o < Shape.VHeadDim; o++)
            {
                var wr = _kvBFloat.AsSpan((b0 + o) * r, r);
                for (int i = 0; i < count; i++) outputs[i * stride + o] = Ops.Dot(wr, oLats.Slice(i * r, r), path);
            }
            return;
        }
        RowDots(_kvB!, null, b0, Shape.VHeadDim, oLats, r, count, outputs, stride, row, path);
    }

    /// <summary>
    /// ys[i·yStride + o] = W[row0 + o] · xs[i·xStride ..] for o &lt; rows and i &lt; count, on the calling thread,
    /// decoding each row once (F32 rows are read in place).
    /// </summary>
    static unsafe void RowDots(Linear w, float[]? decoded, int row0, int rows, ReadOnlySpan<float> xs, int xStride, int count,
        Span<float> ys, int yStride, Span<float> row, KernelPath path)
    {
        int len = w.InFeatures;
        for (int o = 0; o < rows; o++)
        {
            ReadOnlySpan<float> wr;
            if (decoded is not null) wr = decoded.AsSpan((row0 + o) * len, len);
            else if (w.Type == DType.F32 && w.ScaleInv == null) wr = new ReadOnlySpan<float>(w.Row(row0 + o), len);
            else
            {
                MatMul.DecodeRow(w, row0 + o, row);
                wr = row[..len];
            }
            for (int i = 0; i < count; i++)
                ys[i * yStride + o] = Ops.Dot(wr, xs.Slice(i * xStride, len), path);
        }
    }

    /// <summary>Row i of kv_b as float32: the mapped row itself for F32 weights, else decoded into <paramref name="row"/>.</summary>
    unsafe ReadOnlySpan<float> KvBRow(int i, Span<float> row)
    {
        var w = _kvB!;
        if (_kvBFloat is not null) return _kvBFloat.AsSpan(i * w.InFeatures, w.InFeatures);
        if (w.Type == DType.F32) return new ReadOnlySpan<float>(w.Row(i), w.InFeatures);
        MatMul.DecodeRow(w, i, row);
        return row[..w.InFeatures];
    }

    /// <summary>kv[nope + v] = [W_UK[h]·c | W_UV[h]·c].</summary>
    void ExpandKeyValue(int h, ReadOnlySpan<float> c, Span<float> kv, Span<float> row, KernelPath path)
    {
        int nope = Shape.QkNopeHeadDim;
        if (_kvB is not null && _kB is null)
        {
            int baseRow = h * (nope + Shape.VHeadDim);
            for (int j = 0; j < kv.Length; j++)
                kv[j] = Ops.Dot(KvBRow(baseRow + j, row), c, path);
            return;
        }
        // Split form: k_b[h] is [kv_lora, nope] (its transpose is W_UK[h]); v_b[h] is [v, kv_lora].
        var k = kv[..nope];
        k.Clear();
        var kRow = row[..nope];
        for (int i = 0; i < Shape.KvLoraRank; i++)
        {
            MatMul.DecodeRow(_kB![h], i, kRow);
            Ops.Axpy(c[i], kRow, k, path);
        }
        ExpandValue(h, c, kv[nope..], row, path);
    }

    /// <summary>x = dequantise(quantise(x)) through activation blocks of <paramref name="type"/>.</summary>
    static unsafe void RoundTrip(DType type, Span<float> x, Workspace ws)
    {
        int bytes = ActivationQuant.ByteCount(type, x.Length);
        if (ws.LatentBlocks.Length < bytes) ws.LatentBlocks = new byte[bytes];
        fixed (float* px = x)
        fixed (byte* pq = ws.LatentBlocks)
            ActivationQuant.Quantize(type, px, pq, x.Length);
        Quantization.Dequantize(type, ws.LatentBlocks.AsSpan(0, bytes), x);
    }
}
