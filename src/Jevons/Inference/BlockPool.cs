using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Jevons.Inference;

/// <summary>
/// The KV blocks of a runner (ids 0 .. Blocks − 1): reference counts, a free list and the prefix
/// cache. A full block whose K/V is computed is keyed by a hash chain — XxHash128 of the parent
/// block's hash and the block's token ids, the chain rooted in the runner's fingerprint — so a later
/// prompt with the same leading tokens takes the block instead of recomputing it. A cached block
/// nobody references stays cached and is evicted least-recently-released first when no clean free
/// block is left. No model code: the runner copies, exports and imports block contents.
/// </summary>
public sealed class BlockPool
{
    readonly IModelRunner _runner;
    readonly int[] _refs;
    readonly UInt128[] _hash;
    readonly bool[] _cached;
    readonly Stack<int> _clean = new();
    // Cached blocks with no reference, least recently released first.
    readonly LinkedList<int> _lru = new();
    readonly LinkedListNode<int>?[] _lruNode;
    readonly Dictionary<UInt128, int> _byHash;
    readonly PrefixDiskCache? _disk;
    byte[] _scratch = [];

    public BlockPool(IModelRunner runner, PrefixDiskCache? disk = null)
    {
        _runner = runner;
        Blocks = runner.Blocks;
        BlockSize = runner.BlockSize;
        _refs = new int[Blocks];
        _hash = new UInt128[Blocks];
        _cached = new bool[Blocks];
        _lruNode = new LinkedListNode<int>?[Blocks];
        _byHash = new Dictionary<UInt128, int>(Blocks);
        for (int b = Blocks - 1; b >= 0; b--) _clean.Push(b);
        Root = XxHash128.HashToUInt128(Encoding.UTF8.GetBytes(runner.Fingerprint));
        _disk = disk;
    }

    public int Blocks { get; }
    public int BlockSize { get; }
    /// <summary>The hash chain's root: the runner's fingerprint (model + KV layout).</summary>
    public UInt128 Root { get; }
    /// <summary>Blocks an allocation can take now: clean free ones plus unreferenced cached ones.</summary>
    public int Available => _clean.Count + _lru.Count;
    /// <summary>Blocks referenced by at least one sequence.</summary>
    public int Used => Blocks - Available;
    /// <summary>Blocks in the prefix cache (referenced or not).</summary>
    public int CachedBlocks => _byHash.Count;
    /// <summary>Cached blocks dropped to make room.</summary>
    public long Evictions { get; private set; }
    /// <summary>Blocks brought back from the disk tier.</summary>
    public long DiskHits { get; private set; }
    public PrefixDiskCache? Disk => _disk;

    public int RefCount(int block) => _refs[block];
    public bool IsCached(int block) => _cached[block];

    /// <summary>The chain hash of a full block of <paramref name="tokens"/> after a block hashed <paramref name="parent"/>.</summary>
    public static UInt128 ChainHash(UInt128 parent, ReadOnlySpan<int> tokens)
    {
        // parent (16 bytes, little-endian) then the ids (4 bytes each, little-endian); no allocation.
        int length = 16 + 4 * tokens.Length;
        Span<byte> bytes = length <= 4096 ? stackalloc byte[length] : new byte[length];
        BinaryPrimitives.WriteUInt128LittleEndian(bytes, parent);
        for (int i = 0; i < tokens.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes[(16 + 4 * i)..], tokens[i]);
        return XxHash128.HashToUInt128(bytes);
    }

    /// <summary>A block with one reference, or -1 when every block is referenced.</summary>
    public int Allocate()
    {
        int block;
        if (_clean.Count > 0) block = _clean.Pop();
        else if (_lru.First is { } oldest)
        {
            block = oldest.Value;
            RemoveFromLru(block);
            _byHash.Remove(_hash[block]);
            _cached[block] = false;
            Evictions++;
        }
        else return -1;
        _refs[block] = 1;
        return block;
    }

    public void Retain(int block)
    {
        if (_refs[block]++ == 0) RemoveFromLru(block);
    }

    public void Release(int block)
    {
        if (_refs[block] <= 0) throw new InvalidOperationException($"block {block} released more often than taken");
        if (--_refs[block] > 0) return;
        if (_cached[block]) _lruNode[block] = _lru.AddLast(block);
        else _clean.Push(block);
    }

    /// <summary>Releases every block of <paramref name="sequence"/>, last block first (so a chain's tail is evicted before its head).</summary>
    public void ReleaseAll(Sequence sequence)
    {
        var table = sequence.BlockTable;
        for (int i = table.Length - 1; i >= 0; i--) Release(table[i]);
        sequence.ClearBlocks();
    }

    /// <summary>
    /// Gives <paramref name="sequence"/> (holding no blocks) the cached blocks of its leading full
    /// blocks, from memory or else from the disk tier, at most <paramref name="maxBlocks"/>; stops at the
    /// first miss. Returns the number of tokens covered.
    /// </summary>
    public int MatchPrefix(Sequence sequence, int maxBlocks)
    {
        var tokens = sequence.Tokens;
        UInt128 hash = Root;
        int hits = 0;
        for (; hits < maxBlocks; hits++)
        {
            var blockTokens = tokens.Slice(hits * BlockSize, BlockSize);
            var next = ChainHash(hash, blockTokens);
            if (_byHash.TryGetValue(next, out int block)) Retain(block);
            else if (_disk is not null && (block = ImportFromDisk(hash, next, blockTokens)) >= 0) { }
            else break;
            sequence.AddBlock(block);
            hash = next;
        }
        sequence.HashedBlocks = hits;
        sequence.LastHash = hash;
        sequence.Computed = hits * BlockSize;
        return hits * BlockSize;
    }

    int ImportFromDisk(UInt128 parent, UInt128 hash, ReadOnlySpan<int> tokens)
    {
        if (!_disk!.Contains(hash)) return -1;
        // The blocks already matched are referenced, so this allocation cannot evict them; a failed
        // read gives the block back clean.
        int block = Allocate();
        if (block < 0) return -1;
        if (!_disk.TryRead(hash, parent, tokens, block, _runner))
        {
            _refs[block] = 0;
            _clean.Push(block);
            return -1;
        }
        Register(block, hash);
        DiskHits++;
        return block;
    }

    /// <summary>
    /// Registers the full, computed blocks of <paramref name="sequence"/> not yet in the chain
    /// (positions below sequence.Computed). A block whose hash another block already holds stays
    /// uncached (it is freed clean); the disk tier, when present, gets a copy of each new one.
    /// </summary>
    public void RegisterFullBlocks(Sequence sequence)
    {
        int full = sequence.Computed / BlockSize;
        var tokens = sequence.Tokens;
        var table = sequence.BlockTable;
        while (sequence.HashedBlocks < full)
        {
            int i = sequence.HashedBlocks;
            var blockTokens = tokens.Slice(i * BlockSize, BlockSize);
            var hash = ChainHash(sequence.LastHash, blockTokens);
            int block = table[i];
            if (!_cached[block] && !_byHash.ContainsKey(hash))
            {
                Register(block, hash);
                if (_disk is not null && !_disk.Contains(hash))
                {
                    if (_scratch.Length != _runner.BytesPerBlock) _scratch = new byte[_runner.BytesPerBlock];
                    _runner.ExportBlock(block, _scratch);
                    _disk.Write(hash, sequence.LastHash, blockTokens, _scratch);
                }
            }
            sequence.LastHash = hash;
            sequence.HashedBlocks = i + 1;
        }
    }

    void Register(int block, UInt128 hash)
    {
        _hash[block] = hash;
        _cached[block] = true;
        _byHash[hash] = block;
    }

    /// <summary>
    /// Makes the block at <paramref name="index"/> of <paramref name="sequence"/>'s table writable:
    /// a block shared with another sequence is copied into a fresh one first (copy-on-write). False
    /// when no block is free for the copy.
    /// </summary>
    public bool MakeWritable(Sequence sequence, int index)
    {
        int block = sequence.BlockTable[index];
        if (_refs[block] == 1 && !_cached[block]) return true;
        int copy = Allocate();
        if (copy < 0) return false;
        _runner.CopyBlock(block, copy);
        sequence.SetBlock(index, copy);
        Release(block);
        return true;
    }

    void RemoveFromLru(int block)
    {
        if (_lruNode[block] is { } node)
        {
            _lru.Remove(node);
            _lruNode[block] = null;
        }
    }

    /// <summary>Unreferenced cached blocks, next to be evicted first (for tests and metrics).</summary>
    public IEnumerable<int> EvictionOrder() => _lru;
}
