using System.Collections.Concurrent;

namespace Jevons.Tokenization;

/// <summary>
/// Rank-based BPE over token ids: a pre-token's bytes start as byte tokens, then the adjacent
/// pair with the lowest merge rank (leftmost on ties) is merged until no pair has a merge.
/// A min-heap keyed by (rank, position) with lazy invalidation keeps long words O(n log n);
/// results per pre-token are cached because text repeats its words.
/// </summary>
internal sealed class BytePairEncoding
{
    readonly int[] _byteTokens;                       // [256] token id of each byte's alphabet char, -1 if absent
    readonly Dictionary<long, long> _merges;          // (left << 32 | right) -> (rank << 32 | result)
    readonly Dictionary<string, int> _vocab;          // alphabet string -> id (for ignore_merges)
    readonly bool _ignoreMerges;
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    const int CacheLimit = 100_000;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public BytePairEncoding(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, bool ignoreMerges)
    {
        _vocab = vocab;
        _ignoreMerges = ignoreMerges;
        _byteTokens = new int[256];
        for (int b = 0; b < 256; b++)
            _byteTokens[b] = vocab.TryGetValue(ByteLevel.ByteToChar((byte)b).ToString(), out var id) ? id : -1;
        _merges = new Dictionary<long, long>(merges.Count, PairComparer.Instance);
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        Span<char> joined = stackalloc char[256];
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r) = merges[rank];
            if (!vocab.TryGetValue(l, out var li) || !vocab.TryGetValue(r, out var ri)) continue;
            int res;
            if (l.Length + r.Length <= joined.Length)
            {
                l.CopyTo(joined);
                r.CopyTo(joined[l.Length..]);
                if (!lookup.TryGetValue(joined[..(l.Length + r.Length)], out res)) continue;
            }
            else if (!vocab.TryGetValue(l + r, out res)) continue; // a merge whose parts or result are not in the vocabulary can never apply
            _merges.TryAdd(((long)li << 32) | (uint)ri, ((long)rank << 32) | (uint)res);
        }
    }

    public int MergeCount => _merges.Count;

    /// <summary>Appends the token ids of one pre-token (given as text; it is UTF-8 encoded here).</summary>
    public void Encode(string piece, List<int> output)
    {
        if (_cache.TryGetValue(piece, out var cached)) { output.AddRange(cached); return; }
        var bytes = System.Text.Encoding.UTF8.GetBytes(piece);
        var ids = EncodeBytes(bytes);
        if (_cache.Count >= CacheLimit) _cache.Clear();
        _cache.TryAdd(piece, ids);
        output.AddRange(ids);
    }

    int[] EncodeBytes(byte[] bytes)
    {
        if (_ignoreMerges && _vocab.TryGetValue(ByteLevel.Encode(bytes), out var whole)) return [whole];

        int n = 0;
        var ids = new int[bytes.Length];
        foreach (var b in bytes)
        {
            int id = _byteTokens[b];
            if (id >= 0) ids[n++] = id; // bytes without a token are dropped, as the reference does without an unk token
        }
        if (n <= 1) return ids.AsSpan(0, n).ToArray();

        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
        var heap = new PriorityQueue<int, long>(n);
        for (int i = 0; i + 1 < n; i++) Push(heap, ids, i, i + 1);

        while (heap.TryDequeue(out int pos, out long key))
        {
            int rank = (int)(key >> 32);
            int right = next[pos];
            if (ids[pos] < 0 || right < 0) continue;
            if (!_merges.TryGetValue(((long)ids[pos] << 32) | (uint)ids[right], out var merge) || (int)(merge >> 32) != rank)
                continue; // stale entry: one side has changed since it was queued
            ids[pos] = (int)(uint)merge;
            ids[right] = -1;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) Push(heap, ids, prev[pos], pos);
            if (next[pos] >= 0) Push(heap, ids, pos, next[pos]);
        }

        var result = new List<int>(n);
        for (int i = 0; i >= 0; i = next[i]) result.Add(ids[i]);
        return result.ToArray();
    }

    /// <summary>
    /// long.GetHashCode is left ^ right, which collides heavily for pairs of small ids (loading
    /// DeepSeek-V3's 127k merges took 550 ms with it); a multiplicative hash spreads them.
    /// </summary>
    sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long a, long b) => a == b;
        public int GetHashCode(long key) => (int)((ulong)(key * -7046029254386353131L) >> 32);
    }

    void Push(PriorityQueue<int, long> heap, int[] ids, int left, int right)
    {
        if (_merges.TryGetValue(((long)ids[left] << 32) | (uint)ids[right], out var merge))
            heap.Enqueue(left, (merge & ~0xFFFFFFFFL) | (uint)left);
    }
}
