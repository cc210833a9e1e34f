using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Jevons.Numerics;

namespace Jevons.Models.Blocks;

/// <summary>
/// One kind of cached row of one layer (GQA's K or V, MLA's c_kv or k_pe) for every block:
/// [blocks · blockSize, rowSize] values of the cache's element type. F32 rows are read in place;
/// F16 / BF16 rows are converted on write and into a caller's scratch row on read.
/// </summary>
public sealed class KvStore
{
    readonly float[]? _f32;
    readonly ushort[]? _u16; // F16 (IEEE half bits) or BF16

    internal KvStore(KvType type, long rows, int rowSize)
    {
        Type = type;
        RowSize = rowSize;
        long length = rows * rowSize;
        if (type == KvType.F32) _f32 = new float[length];
        else _u16 = new ushort[length];
    }

    public KvType Type { get; }
    /// <summary>Values per position.</summary>
    public int RowSize { get; }
    public static int ElementBytes(KvType type) => type == KvType.F32 ? sizeof(float) : sizeof(ushort);

    /// <summary>Stores x[RowSize] as row <paramref name="row"/> (block · blockSize + slot).</summary>
    public void Write(long row, ReadOnlySpan<float> x)
    {
        long o = row * RowSize;
        if (_f32 is not null) { x[..RowSize].CopyTo(_f32.AsSpan(checked((int)o), RowSize)); return; }
        var dst = _u16.AsSpan(checked((int)o), RowSize);
        if (Type == KvType.F16)
            System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(x[..RowSize], MemoryMarshal.Cast<ushort, Half>(dst));
        else
            for (int i = 0; i < dst.Length; i++) dst[i] = Quantization.FloatToBf16(x[i]);
    }

    /// <summary>
    /// Values [offset, offset + length) of row <paramref name="row"/> as float32: the stored values themselves
    /// (F32) or converted into <paramref name="scratch"/> (F16 / BF16).
    /// </summary>
    public ReadOnlySpan<float> Read(long row, int offset, int length, Span<float> scratch)
    {
        int o = (int)(row * RowSize) + offset;
        if (_f32 is not null) return new ReadOnlySpan<float>(_f32, o, length);
        var src = new ReadOnlySpan<ushort>(_u16, o, length);
        var dst = scratch[..length];
        if (Type == KvType.F16)
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(src), dst);
        else
            for (int i = 0; i < dst.Length; i++) dst[i] = Quantization.Bf16ToFloat(src[i]);
        return dst;
    }

    /// <summary>
    /// The first byte of the whole store (row 0), for kernels that pin the store once with <c>fixed</c> and address
    /// any row inside it: rows · <see cref="RowSize"/> · <see cref="ElementBytes"/> bytes follow it.
    /// </summary>
    internal ref byte Origin => ref _f32 is not null
        ? ref Unsafe.As<float, byte>(ref MemoryMarshal.GetArrayDataReference(_f32))
        : ref Unsafe.As<ushort, byte>(ref MemoryMarshal.GetArrayDataReference(_u16!));

    /// <summary>The raw bytes of rows [row, row + count).</summary>
    internal Span<byte> Bytes(long row, int count)
    {
        int o = checked((int)(row * RowSize)), n = count * RowSize;
        return _f32 is not null
            ? MemoryMarshal.AsBytes(_f32.AsSpan(o, n))
            : MemoryMarshal.AsBytes(_u16.AsSpan(o, n));
    }
}

/// <summary>
/// The paged KV storage the decoder writes and reads: a list of <see cref="KvStore"/>s (every layer's rows),
/// each [blocks · blockSize, rowSize]. Block operations (copy, export, import) act on all stores; a block's
/// exported bytes are the stores' rows of that block in store order. Also carries the scratch of steps run
/// over it (<see cref="Step"/>), so the same cache is never stepped from two threads at once.
/// </summary>
public abstract class DecoderKvCache : PagedKvCache
{
    readonly KvStore[] _stores;

    /// <summary>Largest single array a store may need, in elements (the CLR's array limit).</summary>
    const long MaxStoreElements = 0x7FFFFFC7;

    protected DecoderKvCache(object owner, int blockSize, int blocks, KvType type, int layers, ReadOnlySpan<int> rowSizes, int maxStepTokens)
        : base(blockSize, blocks, type)
    {
        Owner = owner;
        Layers = layers;
        long rows = (long)blockSize * blocks;
        long perBlock = 0;
        foreach (var r in rowSizes) perBlock += (long)r * KvStore.ElementBytes(type) * blockSize;
        BytesPerBlock = perBlock * layers;
        long total = BytesPerBlock * blocks;
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        foreach (var r in rowSizes)
            if (rows * r > MaxStoreElements)
                JevonsException.Throw($"a paged KV cache of {blocks} blocks x {blockSize} positions x {r} values per layer exceeds the largest array ({MaxStoreElements} elements); use fewer blocks");
        if (total > available)
            JevonsException.Throw($"a paged KV cache of {blocks} blocks x {blockSize} positions needs {total} bytes ({BytesPerBlock} per block, {type}), more than the {available} bytes available; use fewer blocks");
        try
        {
            _stores = new KvStore[layers * rowSizes.Length];
            for (int l = 0; l < layers; l++)
                for (int k = 0; k < rowSizes.Length; k++)
                    _stores[l * rowSizes.Length + k] = new KvStore(type, rows, rowSizes[k]);
        }
        catch (OutOfMemoryException)
        {
            JevonsException.Throw($"out of memory allocating a paged KV cache of {total} bytes ({blocks} blocks x {BytesPerBlock} bytes); use fewer blocks");
            throw;
        }
        Step = new StepWorkspace(maxStepTokens);
    }

    /// <summary>The model that created this cache (a cache only serves its own model's layout).</summary>
    internal object Owner { get; }
    public int Layers { get; }
    public override long BytesPerBlock { get; }

    /// <summary>Scratch of the steps run over this cache: grows to the largest step, then stays.</summary>
    internal StepWorkspace Step { get; }

    /// <summary>Store <paramref name="kind"/> (0 .. kinds − 1) of layer <paramref name="layer"/>.</summary>
    protected KvStore Store(int layer, int kind) => _stores[layer * (_stores.Length / Layers) + kind];

    public override void CopyBlock(int source, int destination)
    {
        CheckBlock(source, nameof(source));
        CheckBlock(destination, nameof(destination));
        if (source == destination) return;
        foreach (var s in _stores)
            s.Bytes((long)source * BlockSize, BlockSize).CopyTo(s.Bytes((long)destination * BlockSize, BlockSize));
    }

    public override void ExportBlock(int block, Span<byte> destination)
    {
        CheckBlock(block, nameof(block));
        if (destination.Length != BytesPerBlock)
            throw new ArgumentException($"a block holds {BytesPerBlock} bytes; the destination has {destination.Length}", nameof(destination));
        int o = 0;
        foreach (var s in _stores)
        {
            var src = s.Bytes((long)block * BlockSize, BlockSize);
            src.CopyTo(destination[o..]);
            o += src.Length;
        }
    }

    public override void ImportBlock(int block, ReadOnlySpan<byte> source)
    {
        CheckBlock(block, nameof(block));
        if (source.Length != BytesPerBlock)
            throw new ArgumentException($"a block holds {BytesPerBlock} bytes; the source has {source.Length}", nameof(source));
        int o = 0;
        foreach (var s in _stores)
        {
            var dst = s.Bytes((long)block * BlockSize, BlockSize);
            source.Slice(o, dst.Length).CopyTo(dst);
            o += dst.Length;
        }
    }

    void CheckBlock(int block, string name)
    {
        if ((uint)block >= (uint)Blocks)
            throw new ArgumentOutOfRangeException(name, block, $"block id outside 0..{Blocks - 1}");
    }

    /// <summary>The store row of position <paramref name="pos"/> under <paramref name="table"/>.</summary>
    public long Row(ReadOnlySpan<int> table, int pos) => (long)table[pos / BlockSize] * BlockSize + pos % BlockSize;
}

/// <summary>Grouped-query attention's paged cache: per layer K and V, kvHeads · headDim values per position each.</summary>
public sealed class GqaPagedCache : DecoderKvCache
{
    public GqaPagedCache(object owner, int blockSize, int blocks, KvType type, int layers, int kvHeads, int headDim, int maxStepTokens)
        : base(owner, blockSize, blocks, type, layers, [kvHeads * headDim, kvHeads * headDim], maxStepTokens)
    {
        KvHeads = kvHeads;
        HeadDim = headDim;
    }

    public int KvHeads { get; }
    public int HeadDim { get; }
    public KvStore Keys(int layer) => Store(layer, 0);
    public KvStore Values(int layer) => Store(layer, 1);
    public override string Layout => $"gqa k+v layers={Layers} kv_heads={KvHeads} head_dim={HeadDim} type={Type.ToString().ToLowerInvariant()} block={BlockSize}";

    /// <summary>Bytes per cached token: layers × 2 × kvHeads × headDim × element size.</summary>
    public static long BytesPerToken(int layers, int kvHeads, int headDim, KvType type) => 2L * layers * kvHeads * headDim * KvStore.ElementBytes(type);
}

/// <summary>MLA's paged latent cache: per layer the normalised c_kv (kv_lora_rank) and the roped, head-shared k_pe (qk_rope_head_dim).</summary>
public sealed class LatentPagedCache : DecoderKvCache
{
    public LatentPagedCache(object owner, int blockSize, int blocks, KvType type, int layers, int kvLoraRank, int ropeDims, int maxStepTokens)
        : base(owner, blockSize, blocks, type, layers, [kvLoraRank, ropeDims], maxStepTokens)
    {
        KvLoraRank = kvLoraRank;
        RopeDims = ropeDims;
    }

    public int KvLoraRank { get; }
    public int RopeDims { get; }
    public KvStore Latent(int layer) => Store(layer, 0);
    public KvStore RopeKey(int layer) => Store(layer, 1);
    public override string Layout => $"mla c_kv+k_pe layers={Layers} kv_lora={KvLoraRank} rope={RopeDims} type={Type.ToString().ToLowerInvariant()} block={BlockSize}";

    public static long BytesPerToken(int layers, int kvLoraRank, int ropeDims, KvType type) => (long)layers * (kvLoraRank + ropeDims) * KvStore.ElementBytes(type);
}
