namespace Jevons.Models;

// The seam between the scheduler (Inference/) and the model (Models/): one step of many sequences.
// The scheduler owns block bookkeeping (which block ids a sequence holds, ref counts, the prefix
// cache); the model owns the KV storage those ids index (PagedKvCache) and the forward pass.

/// <summary>Element type of the paged KV cache. F32 keeps the goldens exact; F16/BF16 halve the memory.</summary>
public enum KvType { F32, F16, BF16 }

/// <summary>Which logit rows a batch entry wants.</summary>
public enum LogitsWanted
{
    /// <summary>None (a prefill chunk that is not the prompt's last).</summary>
    None,
    /// <summary>One row, for the entry's last token (decode, or the last prefill chunk).</summary>
    Last,
    /// <summary>One row per token of the entry (eval-logits, trainer comparison).</summary>
    All,
}

/// <summary>
/// One sequence's part of a step: <see cref="Tokens"/> go to positions StartPosition ..
/// StartPosition + Tokens.Length − 1. <see cref="BlockTable"/> lists the KV block ids holding
/// positions 0 .. StartPosition + Tokens.Length − 1 (position p lives in block BlockTable[p / BlockSize]
/// at slot p % BlockSize); the blocks for the new tokens must already be in the table and writable
/// (not shared: the scheduler copies a shared partial block first).
/// </summary>
public readonly record struct BatchEntry(ReadOnlyMemory<int> Tokens, int StartPosition, ReadOnlyMemory<int> BlockTable, LogitsWanted Logits)
{
    /// <summary>Logit rows this entry produces.</summary>
    public int LogitRows => Logits switch { LogitsWanted.Last => 1, LogitsWanted.All => Tokens.Length, _ => 0 };
}

/// <summary>
/// The sequences of one step, prefill chunks and decode tokens mixed (vLLM V1's unified batch).
/// Logits come back in entry order: Last gives one row, All gives Tokens.Length rows, None nothing.
/// Reused from step to step (Clear, then Add) so steady-state decode allocates nothing.
/// </summary>
public sealed class ForwardBatch
{
    readonly List<BatchEntry> _entries = [];

    public IReadOnlyList<BatchEntry> Entries => _entries;
    public int Count => _entries.Count;
    /// <summary>Tokens of all entries together (the rows every linear layer sees).</summary>
    public int TotalTokens { get; private set; }
    /// <summary>Rows of [rows, vocab] logits the forward pass writes.</summary>
    public int LogitRows { get; private set; }

    public void Clear()
    {
        _entries.Clear();
        TotalTokens = 0;
        LogitRows = 0;
    }

    public void Add(BatchEntry entry)
    {
        if (entry.Tokens.Length == 0) throw new ArgumentException("a batch entry needs at least one token", nameof(entry));
        if (entry.StartPosition < 0) throw new ArgumentOutOfRangeException(nameof(entry), entry.StartPosition, "start position is negative");
        _entries.Add(entry);
        TotalTokens += entry.Tokens.Length;
        LogitRows += entry.LogitRows;
    }
}

/// <summary>
/// KV storage for many sequences, allocated once: <see cref="Blocks"/> blocks of
/// <see cref="BlockSize"/> token positions each, every layer's K/V (GQA) or latent c_kv + k_pe (MLA)
/// for those positions. Block ids are 0 .. Blocks − 1; which sequence owns which block is the
/// scheduler's business (Inference/BlockPool).
/// </summary>
public abstract class PagedKvCache
{
    protected PagedKvCache(int blockSize, int blocks, KvType type)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocks);
        BlockSize = blockSize;
        Blocks = blocks;
        Type = type;
    }

    public int BlockSize { get; }
    public int Blocks { get; }
    public KvType Type { get; }

    /// <summary>Bytes one block holds, all layers (what <see cref="ExportBlock"/> writes).</summary>
    public abstract long BytesPerBlock { get; }

    /// <summary>Bytes held, all blocks.</summary>
    public long Bytes => BytesPerBlock * Blocks;

    /// <summary>
    /// A short text naming the storage layout (kind, layers, values per position, element type, block
    /// size), e.g. for the prefix cache's disk header: blocks are only reused under the same layout.
    /// </summary>
    public abstract string Layout { get; }

    /// <summary>Copies every layer's content of block <paramref name="source"/> into <paramref name="destination"/> (copy-on-write).</summary>
    public abstract void CopyBlock(int source, int destination);

    /// <summary>Writes block <paramref name="block"/>'s bytes (all layers) into <paramref name="destination"/> of BytesPerBlock bytes.</summary>
    public abstract void ExportBlock(int block, Span<byte> destination);

    /// <summary>Fills block <paramref name="block"/> from bytes that <see cref="ExportBlock"/> wrote under the same layout.</summary>
    public abstract void ImportBlock(int block, ReadOnlySpan<byte> source);
}
