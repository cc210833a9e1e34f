using Jevons.Models.Blocks;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Models;

/// <summary>
/// The attention half of a decoder layer (GQA, MLA): y[rows, hidden] from normed x[rows, hidden] for every
/// row of the step, writing each row's K/V (or latent) into <paramref name="cache"/> through its sequence's
/// block table and attending per sequence over that sequence's cached positions.
/// </summary>
public interface IAttentionBlock
{
    void Forward(StepWorkspace step, ReadOnlySpan<float> x, Span<float> y, DecoderKvCache cache, int layer, WorkerPool pool);
}

/// <summary>The feed-forward half of a decoder layer (SwiGLU, MoE): y[rows, hidden] = FFN(x[rows, hidden]), rows independent.</summary>
public interface IFeedForwardBlock
{
    void Forward(StepWorkspace step, ReadOnlySpan<float> x, Span<float> y, int layer, WorkerPool pool);
}

/// <summary>One pre-norm decoder layer: x += attn(norm(x)); x += ffn(norm(x)).</summary>
public sealed record DecoderLayer(float[] AttentionNorm, IAttentionBlock Attention, float[] FfnNorm, IFeedForwardBlock Ffn);

/// <summary>
/// One (sub)step as the blocks see it: rows are the tokens of all its segments concatenated; a segment is
/// a run of one sequence's tokens at positions Pos0 .. Pos0 + Count − 1 with its block table. Owned by a
/// cache (<see cref="DecoderKvCache.Step"/>), grown to the largest step seen, then reused.
/// </summary>
public sealed class StepWorkspace
{
    internal StepWorkspace(int maxTokens) => MaxTokens = Math.Max(1, maxTokens);

    /// <summary>Most rows of one pass; larger batches are cut into passes of this many rows.</summary>
    public int MaxTokens { get; }
    /// <summary>Rows of the current pass.</summary>
    public int Rows { get; internal set; }
    public int Segments { get; internal set; }

    // per segment
    internal int[] SegRow = [], SegCount = [], SegPos0 = [];
    internal ReadOnlyMemory<int>[] SegTable = [];
    internal ReadOnlyMemory<int>[] SegTokens = [];
    internal LogitsWanted[] SegLogits = [];
    // per row: position, and rotary cos/sin [rows, pairs] shared by every layer and head
    internal int[] RowPos = [];
    internal float[] Cos = [], Sin = [];
    internal int Pairs;
    /// <summary>Rotary pair layout of the model: rotate-half (NeoX) or adjacent pairs.</summary>
    public bool Neox { get; internal set; }
    // residual stream and its normed copy / block output, [rows, hidden]
    internal float[] X = [], Normed = [], Delta = [];

    // block scratch
    internal readonly GqaAttention.Workspace Gqa = new();
    internal readonly Mla.Workspace Mla = new();
    internal readonly Moe.Workspace Moe = new();
    internal RoutingObserver? Routing;
    /// <summary>The pass's phase timer, or null (the default).</summary>
    internal StepProfile? Profile;

    public int Row0(int segment) => SegRow[segment];
    public int Count(int segment) => SegCount[segment];
    public int Pos0(int segment) => SegPos0[segment];
    public ReadOnlySpan<int> Table(int segment) => SegTable[segment].Span;
    /// <summary>
    /// Positions the segment's block table can address: what per-sequence scratch is sized by, so it stays the
    /// same size while a sequence decodes (the table, not the position, grows).
    /// </summary>
    public int PositionBound(int segment, int blockSize) => SegTable[segment].Length * blockSize;
    /// <summary>cos / sin [Pairs] of row <paramref name="row"/>'s position.</summary>
    public ReadOnlySpan<float> CosOf(int row) => new(Cos, row * Pairs, Pairs);
    public ReadOnlySpan<float> SinOf(int row) => new(Sin, row * Pairs, Pairs);
    public int Position(int row) => RowPos[row];

    internal static Span<T> Ensure<T>(ref T[] buffer, long size)
    {
        if (buffer.Length < size) buffer = new T[size];
        return buffer.AsSpan(0, checked((int)size));
    }

    internal void EnsureSegments(int segments)
    {
        if (SegRow.Length >= segments) return;
        int n = Math.Max(segments, 2 * SegRow.Length);
        Array.Resize(ref SegRow, n);
        Array.Resize(ref SegCount, n);
        Array.Resize(ref SegPos0, n);
        Array.Resize(ref SegTable, n);
        Array.Resize(ref SegTokens, n);
        Array.Resize(ref SegLogits, n);
    }
}

/// <summary>
/// The one decoder skeleton every architecture runs: embed → layers (attention block, feed-forward block,
/// RMSNorm before each, residual adds) → final norm → head, over all rows of a step at once so every
/// weight matrix is read once per pass whatever the number of sequences. An architecture supplies its
/// blocks, its rope and a factory for its paged cache.
/// </summary>
public sealed class Decoder
{
    readonly TensorView _embed;      // [vocab, hidden], any dtype
    readonly long _embedRowBytes;
    readonly DecoderLayer[] _layers;
    readonly float[] _finalNorm;
    readonly Linear _head;           // [vocab, hidden]
    readonly RopeFrequencies _rope;
    readonly float _eps;
    readonly WorkerPool _pool;
    readonly string _file;

    public Decoder(TensorView embed, DecoderLayer[] layers, float[] finalNorm, Linear head, RopeFrequencies rope,
        float rmsEps, int contextLength, WorkerPool pool, string file)
    {
        _embed = embed;
        Hidden = checked((int)embed.Shape[1]);
        Vocab = checked((int)embed.Shape[0]);
        _embedRowBytes = embed.Type.ByteCount(Hidden);
        _layers = layers;
        _finalNorm = finalNorm;
        _head = head;
        _rope = rope;
        _eps = rmsEps;
        ContextLength = contextLength;
        _pool = pool;
        _file = file;
    }

    public int Hidden { get; }
    public int Vocab { get; }
    public int ContextLength { get; }
    public IReadOnlyList<DecoderLayer> Layers => _layers;

    public delegate void LayerObserver(int layer, ReadOnlySpan<float> hidden);
    /// <summary>Called with the residual stream [rows, hidden] after each layer (debugging against hidden goldens).</summary>
    public LayerObserver? LayerHook { get; set; }
    /// <summary>Called with every row's routing decision in every MoE layer.</summary>
    public RoutingObserver? RoutingHook { get; set; }
    /// <summary>Times every pass phase by phase (development timing), or null.</summary>
    public StepProfile? Profile { get; set; }

    /// <summary>
    /// Checks a batch against the cache before anything runs: token ids inside the vocabulary, positions
    /// inside <paramref name="maxPosition"/>, block tables long enough with ids inside the cache, logits sized.
    /// </summary>
    public void Validate(ForwardBatch batch, DecoderKvCache cache, int logitsLength, int maxPosition, string limitName)
    {
        if (logitsLength != (long)batch.LogitRows * Vocab)
            throw new ArgumentException($"logits has {logitsLength} floats; the batch wants {batch.LogitRows} rows x {Vocab}", "logits");
        for (int e = 0; e < batch.Count; e++)
        {
            var entry = batch.Entries[e];
            var tokens = entry.Tokens.Span;
            for (int i = 0; i < tokens.Length; i++)
                if ((uint)tokens[i] >= (uint)Vocab)
                    JevonsException.Throw($"token id {tokens[i]} at index {i} of batch entry {e} is out of range: the vocabulary has {Vocab} tokens (ids 0..{Vocab - 1})", _file);
            long end = (long)entry.StartPosition + tokens.Length;
            if (end > maxPosition)
                JevonsException.Throw($"batch entry {e}: positions {entry.StartPosition}..{end - 1} go beyond the {limitName} of {maxPosition} tokens", _file);
            int needed = (int)((end + cache.BlockSize - 1) / cache.BlockSize);
            var table = entry.BlockTable.Span;
            if (table.Length < needed)
                throw new ArgumentException($"batch entry {e}: its block table has {table.Length} blocks; positions 0..{end - 1} need {needed} blocks of {cache.BlockSize}", nameof(batch));
            for (int b = 0; b < needed; b++)
                if ((uint)table[b] >= (uint)cache.Blocks)
                    throw new ArgumentException($"batch entry {e}: block id {table[b]} at table index {b} is outside the cache's blocks 0..{cache.Blocks - 1}", nameof(batch));
        }
    }

    /// <summary>
    /// Runs a validated batch: entries' tokens are cut into passes of at most MaxTokens rows (a long prefill
    /// spans several passes; a pass may hold pieces of many entries), each pass one read of the weights.
    /// </summary>
    public void Forward(ForwardBatch batch, DecoderKvCache cache, Span<float> logits)
    {
        var ws = cache.Step;
        int max = ws.MaxTokens, e = 0, offset = 0, logitBase = 0;
        var entries = batch.Entries;
        while (e < entries.Count)
        {
            int rows = 0, segments = 0, firstOut = -1, outRows = 0;
            while (e < entries.Count && rows < max)
            {
                var entry = entries[e];
                int take = Math.Min(entry.Tokens.Length - offset, max - rows);
                ws.EnsureSegments(segments + 1);
                ws.SegRow[segments] = rows;
                ws.SegCount[segments] = take;
                ws.SegPos0[segments] = entry.StartPosition + offset;
                ws.SegTable[segments] = entry.BlockTable;
                ws.SegTokens[segments] = entry.Tokens.Slice(offset, take);
                segments++;
                rows += take;
                offset += take;
                bool done = offset == entry.Tokens.Length;
                int produced = entry.Logits == LogitsWanted.All ? take : entry.Logits == LogitsWanted.Last && done ? 1 : 0;
                int outRow = entry.Logits == LogitsWanted.All ? logitBase + offset - take : logitBase;
                ws.SegLogits[segments - 1] = produced == 0 ? LogitsWanted.None : entry.Logits;
                if (produced > 0 && firstOut < 0) firstOut = outRow;
                outRows += produced;
                if (done)
                {
                    logitBase += entry.LogitRows;
                    e++;
                    offset = 0;
                }
            }
            ws.Rows = rows;
            ws.Segments = segments;
            var passLogits = outRows == 0 ? Span<float>.Empty : logits.Slice(firstOut * Vocab, outRows * Vocab);
            Pass(ws, cache, passLogits, firstOut >= 0);
        }
    }

    /// <summary>One read of the weights over the pass's rows.</summary>
    void Pass(StepWorkspace ws, DecoderKvCache cache, Span<float> logits, bool anyLogits)
    {
        int n = ws.Rows, h = Hidden, pairs = _rope.Pairs;
        var x = StepWorkspace.Ensure(ref ws.X, (long)n * h);           // [rows, hidden] residual stream
        var normed = StepWorkspace.Ensure(ref ws.Normed, (long)n * h); // [rows, hidden]
        var delta = StepWorkspace.Ensure(ref ws.Delta, (long)n * h);   // [rows, hidden] block output
        var pos = StepWorkspace.Ensure(ref ws.RowPos, n);
        var cos = StepWorkspace.Ensure(ref ws.Cos, (long)n * pairs);  // [rows, pairs]
        var sin = StepWorkspace.Ensure(ref ws.Sin, (long)n * pairs);
        ws.Pairs = pairs;
        ws.Neox = _rope.Neox;
        ws.Routing = RoutingHook;
        var profile = ws.Profile = Profile;
        profile?.Begin();

        for (int s = 0; s < ws.Segments; s++)
        {
            var tokens = ws.SegTokens[s].Span;
            int r0 = ws.SegRow[s];
            for (int t = 0; t < tokens.Length; t++)
            {
                int r = r0 + t;
                pos[r] = ws.SegPos0[s] + t;
                EmbedRow(tokens[t], x.Slice(r * h, h));
                _rope.Angles(pos[r], cos.Slice(r * pairs, pairs), sin.Slice(r * pairs, pairs));
            }
        }
        profile?.Mark(StepPhase.Embed);

        for (int l = 0; l < _layers.Length; l++)
        {
            var layer = _layers[l];
            for (int t = 0; t < n; t++) Ops.RmsNorm(x.Slice(t * h, h), layer.AttentionNorm, _eps, normed.Slice(t * h, h), _pool.Path);
            profile?.Mark(StepPhase.NormsAndResiduals);
            layer.Attention.Forward(ws, normed, delta, cache, l, _pool);
            Ops.Axpy(1f, delta, x, _pool.Path);

            for (int t = 0; t < n; t++) Ops.RmsNorm(x.Slice(t * h, h), layer.FfnNorm, _eps, normed.Slice(t * h, h), _pool.Path);
            profile?.Mark(StepPhase.NormsAndResiduals);
            layer.Ffn.Forward(ws, normed, delta, l, _pool);
            Ops.Axpy(1f, delta, x, _pool.Path);
            LayerHook?.Invoke(l, x);
            profile?.Mark(StepPhase.NormsAndResiduals);
        }
        ws.Routing = null;
        ws.Profile = null;
        if (!anyLogits) return;

        // The rows that want logits, normed into consecutive rows of `normed`, in output order.
        int m = 0;
        for (int s = 0; s < ws.Segments; s++)
        {
            int r0 = ws.SegRow[s], count = ws.SegCount[s];
            var wanted = ws.SegLogits[s];
            if (wanted == LogitsWanted.All)
                for (int t = 0; t < count; t++) Ops.RmsNorm(x.Slice((r0 + t) * h, h), _finalNorm, _eps, normed.Slice(m++ * h, h), _pool.Path);
            else if (wanted == LogitsWanted.Last)
                Ops.RmsNorm(x.Slice((r0 + count - 1) * h, h), _finalNorm, _eps, normed.Slice(m++ * h, h), _pool.Path);
        }
        MatMul.Gemm(_head, normed[..(m * h)], logits, m, _pool);
        profile?.Mark(StepPhase.Head);
    }

    /// <summary>Dequantises row <paramref name="token"/> of the embedding table, whatever its dtype.</summary>
    unsafe void EmbedRow(int token, Span<float> dst)
    {
        var row = new ReadOnlySpan<byte>(_embed.Data + token * _embedRowBytes, checked((int)_embedRowBytes));
        Quantization.Dequantize(_embed.Type, row, dst);
    }
}

/// <summary>
/// One sequence over the batch path: a private paged cache with the trivial block table 0, 1, 2, ... and a
/// one-entry batch, reused every call (so a decode step allocates nothing).
/// </summary>
public sealed class DecoderState : ModelState
{
    /// <summary>Positions per block of the private cache.</summary>
    public const int BlockSize = 16;

    readonly int[] _table;
    int[] _tokens = [];

    internal DecoderState(int capacity, Func<int, int, DecoderKvCache> createCache) : base(capacity)
    {
        int blocks = (int)(((long)capacity + BlockSize - 1) / BlockSize);
        Cache = createCache(BlockSize, blocks);
        _table = new int[blocks];
        for (int i = 0; i < blocks; i++) _table[i] = i;
    }

    /// <summary>This sequence's KV storage (block i holds positions 16i .. 16i + 15).</summary>
    public DecoderKvCache Cache { get; }
    internal ForwardBatch Batch { get; } = new();

    /// <summary>The one-entry batch for <paramref name="tokens"/> at the state's next positions.</summary>
    internal ForwardBatch Prepare(ReadOnlySpan<int> tokens, LogitsWanted logits)
    {
        if (_tokens.Length < tokens.Length) _tokens = new int[Math.Max(tokens.Length, 2 * _tokens.Length)];
        tokens.CopyTo(_tokens);
        Batch.Clear();
        Batch.Add(new BatchEntry(_tokens.AsMemory(0, tokens.Length), Length, _table, logits));
        return Batch;
    }
}

/// <summary>
/// What every decoder architecture shares on top of its <see cref="Decoder"/>: the single-sequence API as a
/// thin wrapper over the batch path, paged caches, KV sizes and the fingerprint. An architecture builds its
/// blocks, then sets <see cref="Decoder"/>, and says how its cache is laid out.
/// </summary>
public abstract class DecoderModel : Model
{
    string? _fingerprint;

    protected DecoderModel(ModelOptions options) => MaxStepTokens = options.MaxStepTokens;

    /// <summary>Most rows of one pass over the weights (<see cref="ModelOptions.MaxStepTokens"/>).</summary>
    public int MaxStepTokens { get; }

    protected Decoder Decoder { get; set; } = null!;

    /// <summary>Times every pass phase by phase (development timing), or null (the default).</summary>
    public StepProfile? Profile { get => Decoder.Profile; set => Decoder.Profile = value; }

    /// <summary>The source the fingerprint hashes (its architecture and every tensor's name, type and shape).</summary>
    protected abstract ModelSource Source { get; }

    /// <summary>Config values and recipe choices the fingerprint hashes, written culture-invariantly.</summary>
    protected abstract string FingerprintText();

    /// <summary>This architecture's paged cache (GQA K/V or MLA latents) with <paramref name="maxStepTokens"/> rows of step scratch.</summary>
    protected abstract DecoderKvCache NewCache(int blockSize, int blocks, KvType type, int maxStepTokens);

    public override ModelState CreateState(int maxTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        return new DecoderState(maxTokens, (bs, blocks) => NewCache(bs, blocks, KvType.F32, MaxStepTokens));
    }

    /// <summary>A single sequence whose private cache stores <paramref name="type"/> elements.</summary>
    public ModelState CreateState(int maxTokens, KvType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        return new DecoderState(maxTokens, (bs, blocks) => NewCache(bs, blocks, type, MaxStepTokens));
    }

    public override void Forward(ModelState state, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        if (state is not DecoderState s || !ReferenceEquals(s.Cache.Owner, this))
            throw new ArgumentException("the state was not created by this model", nameof(state));
        int n = tokens.Length, vocab = VocabSize;
        if (n == 0) return;
        bool all = logits.Length == (long)n * vocab;
        if (!all && logits.Length != vocab)
            throw new ArgumentException($"logits has {logits.Length} floats; expected {n}x{vocab} (every position) or {vocab} (last position)", nameof(logits));
        for (int i = 0; i < n; i++)
            if ((uint)tokens[i] >= (uint)vocab)
                JevonsException.Throw($"token id {tokens[i]} at index {i} is out of range: the vocabulary has {vocab} tokens (ids 0..{vocab - 1})", Source.Path);
        if ((long)s.Length + n > s.Capacity)
            JevonsException.Throw($"sequence of {s.Length + n} tokens ({s.Length} cached + {n} new) exceeds the state capacity of {s.Capacity} tokens", Source.Path);
        var batch = s.Prepare(tokens, all ? LogitsWanted.All : LogitsWanted.Last);
        Decoder.Forward(batch, s.Cache, logits);
        s.Length += n;
    }

    public override PagedKvCache CreatePagedCache(int blockSize, int blocks, KvType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocks);
        if (!Enum.IsDefined(type)) throw new ArgumentOutOfRangeException(nameof(type), type, "unknown KV element type");
        return NewCache(blockSize, blocks, type, MaxStepTokens);
    }

    public override void Forward(ForwardBatch batch, PagedKvCache cache, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (cache is not DecoderKvCache c || !ReferenceEquals(c.Owner, this))
            throw new ArgumentException("the cache was not created by this model", nameof(cache));
        if (batch.Count == 0) return;
        Decoder.Validate(batch, c, logits.Length, Decoder.ContextLength, "context length");
        Decoder.Forward(batch, c, logits);
    }

    public override string Fingerprint => _fingerprint ??= ComputeFingerprint();

    string ComputeFingerprint()
    {
        var text = new System.Text.StringBuilder();
        text.Append(GetType().Name).Append('\n').Append(Source.Architecture).Append('\n').Append(FingerprintText()).Append('\n');
        var names = Source.Weights.TensorNames.ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        foreach (var name in names)
        {
            var t = Source.Weights.Get(name);
            text.Append(name).Append(' ').Append(t.Type.Name()).Append(' ').Append(t.ShapeText).Append('\n');
        }
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text.ToString()));
        return Source.Architecture + "-" + Convert.ToHexStringLower(hash.AsSpan(0, 16));
    }

    /// <summary><paramref name="value"/>.ToString() under the invariant culture (records print doubles culture-dependently).</summary>
    protected static string Invariant(object value)
    {
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
        try { return value.ToString() ?? ""; }
        finally { System.Globalization.CultureInfo.CurrentCulture = saved; }
    }
}
