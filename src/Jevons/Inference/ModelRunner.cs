using System.Globalization;
using Jevons.Models;

namespace Jevons.Inference;

/// <summary>
/// The KV memory to give the paged cache: a byte size (<c>2GiB</c>, <c>512MiB</c>, <c>1.5GB</c>; KiB/MiB/GiB
/// are powers of 1024, KB/MB/GB of 1000, a bare number is bytes) or a block count (<c>4096blocks</c>).
/// </summary>
public readonly record struct KvBudget(long Bytes, int Blocks)
{
    public static KvBudget FromBytes(long bytes) => new(bytes, 0);
    public static KvBudget FromBlocks(int blocks) => new(0, blocks);

    /// <summary>Parses the --kv-budget syntax; a one-line error names the text and the expected forms.</summary>
    public static KvBudget Parse(string text)
    {
        var t = text.Trim();
        if (t.EndsWith("blocks", StringComparison.OrdinalIgnoreCase)
            && int.TryParse(t.AsSpan(0, t.Length - 6), NumberStyles.None, CultureInfo.InvariantCulture, out int blocks) && blocks > 0)
            return FromBlocks(blocks);
        (string Suffix, double Scale)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("TiB", 1L << 40),
            ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)];
        double scale = 1;
        var number = t;
        foreach (var (suffix, s) in units)
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                scale = s;
                number = t[..^suffix.Length];
                break;
            }
        if (double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value)
            && value * scale >= 1 && value * scale < long.MaxValue)
            return FromBytes((long)(value * scale));
        JevonsException.Throw($"kv-budget '{text}' is not a size: use bytes like 2GiB, 512MiB, 1.5GB or a block count like 4096blocks");
        return default;
    }

    /// <summary>The block count this budget buys at <paramref name="bytesPerBlock"/> (at least one).</summary>
    public int BlocksFor(long bytesPerBlock)
    {
        if (Blocks > 0) return Blocks;
        long n = Bytes / Math.Max(bytesPerBlock, 1);
        if (n < 1) JevonsException.Throw($"kv-budget of {Bytes} bytes holds no KV block ({bytesPerBlock} bytes each)");
        return (int)Math.Min(n, int.MaxValue);
    }

    public override string ToString() => Blocks > 0 ? $"{Blocks}blocks" : $"{Bytes}B";
}

/// <summary>The real <see cref="IModelRunner"/>: a <see cref="Model"/> and the paged KV cache it allocated.</summary>
public sealed class ModelRunner : IModelRunner
{
    /// <summary>Token positions per block when nobody says otherwise (vLLM's default too).</summary>
    public const int DefaultBlockSize = 16;

    readonly Model _model;
    readonly PagedKvCache _cache;

    /// <param name="contextLength">Most positions per sequence; 0 = the model's context length.</param>
    public ModelRunner(Model model, KvBudget budget, KvType type = KvType.F32, int blockSize = DefaultBlockSize, int contextLength = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        _model = model;
        int blocks = budget.BlocksFor(model.KvBytesPerToken(type) * blockSize);
        _cache = model.CreatePagedCache(blockSize, blocks, type);
        int modelContext = model.Description.ContextLength > 0 ? model.Description.ContextLength : int.MaxValue;
        ContextLength = contextLength > 0 ? Math.Min(contextLength, modelContext) : modelContext;
        Fingerprint = $"{model.Fingerprint}|{_cache.Layout}";
    }

    public Model Model => _model;
    public PagedKvCache Cache => _cache;
    public int VocabSize => _model.VocabSize;
    public int ContextLength { get; }
    public int BlockSize => _cache.BlockSize;
    public int Blocks => _cache.Blocks;
    public string Fingerprint { get; }
    public long BytesPerBlock => _cache.BytesPerBlock;

    public void Forward(ForwardBatch batch, Span<float> logits) => _model.Forward(batch, _cache, logits);
    public void CopyBlock(int source, int destination) => _cache.CopyBlock(source, destination);
    public void ExportBlock(int block, Span<byte> destination) => _cache.ExportBlock(block, destination);
    public void ImportBlock(int block, ReadOnlySpan<byte> source) => _cache.ImportBlock(block, source);
}
