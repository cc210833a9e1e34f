namespace Jevons.Models.Blocks;

/// <summary>
/// One sequence's key/value cache for grouped-query attention, float32, allocated once:
/// per layer K and V are [capacity, kvHeads·headDim] (position-major, heads contiguous within a position).
/// </summary>
public sealed class KvCache
{
    readonly float[][] keys;
    readonly float[][] values;

    public KvCache(int layers, int capacity, int kvHeads, int headDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Layers = layers;
        Capacity = capacity;
        KvHeads = kvHeads;
        HeadDim = headDim;
        RowSize = kvHeads * headDim;
        long perLayer = (long)capacity * RowSize;
        if (perLayer > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"a KV cache of {capacity} tokens x {RowSize} values per layer is too large for one array");
        keys = new float[layers][];
        values = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            keys[l] = new float[perLayer];
            values[l] = new float[perLayer];
        }
    }

    public int Layers { get; }
    public int Capacity { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    /// <summary>Values per position per layer for K (and for V): kvHeads·headDim.</summary>
    public int RowSize { get; }

    /// <summary>Bytes held (K and V, all layers, full capacity).</summary>
    public long Bytes => 2L * Layers * Capacity * RowSize * sizeof(float);

    /// <summary>Bytes per cached token: layers × 2 × kvHeads × headDim × 4.</summary>
    public static long BytesPerToken(int layers, int kvHeads, int headDim) => 2L * layers * kvHeads * headDim * sizeof(float);

    /// <summary>K of layer <paramref name="layer"/> at position <paramref name="pos"/>: [kvHeads·headDim].</summary>
    public Span<float> Key(int layer, int pos) => keys[layer].AsSpan(pos * RowSize, RowSize);

    /// <summary>V of layer <paramref name="layer"/> at position <paramref name="pos"/>: [kvHeads·headDim].</summary>
    public Span<float> Value(int layer, int pos) => values[layer].AsSpan(pos * RowSize, RowSize);

    /// <summary>The whole K array of a layer [capacity, kvHeads·headDim], for the attention loop.</summary>
    public float[] Keys(int layer) => keys[layer];

    /// <summary>The whole V array of a layer [capacity, kvHeads·headDim].</summary>
    public float[] Values(int layer) => values[layer];
}
