using System.Buffers.Binary;
using Jevons.Inference;
using Jevons.Models;

namespace Jevons.Tests.Inference;

/// <summary>
/// A deterministic stand-in for a model. Its "KV cache" stores, per block slot, the token and the
/// position written there; the logits for position p are a hash of the tokens read back through the
/// entry's block table for positions 0..p. So a sequence whose table points at another's blocks,
/// at a stale block or at a wrong slot gets different logits (or an exception when a position is
/// missing), and the same history always gives the same logits. Every batch is recorded.
/// </summary>
sealed class FakeRunner : IModelRunner
{
    readonly int[] _tokens;
    readonly int[] _positions;

    public FakeRunner(int blocks, int blockSize = 4, int vocab = 32, int context = 256, string fingerprint = "fake")
    {
        Blocks = blocks;
        BlockSize = blockSize;
        VocabSize = vocab;
        ContextLength = context;
        Fingerprint = $"{fingerprint}|bs{blockSize}";
        _tokens = new int[blocks * blockSize];
        _positions = new int[blocks * blockSize];
        Array.Fill(_positions, -1);
    }

    public int VocabSize { get; }
    public int ContextLength { get; }
    public int BlockSize { get; }
    public int Blocks { get; }
    public string Fingerprint { get; }
    public long BytesPerBlock => BlockSize * 8;

    public sealed record Entry(int[] Tokens, int Start, int[] Table, LogitsWanted Logits);
    public List<Entry[]> Batches { get; } = [];
    public int Copies { get; private set; }
    public int Imports { get; private set; }
    /// <summary>Called with every batch before it runs (tests check writability there).</summary>
    public Action<ForwardBatch>? OnForward { get; set; }
    public bool Record { get; set; } = true;

    /// <summary>The fake model: logits after a history of tokens.</summary>
    public static void Logits(ReadOnlySpan<int> history, Span<float> logits)
    {
        ulong h = 0x9E3779B97F4A7C15;
        for (int q = 0; q < history.Length; q++) h = Mix(h ^ (ulong)(uint)history[q] ^ ((ulong)q << 32));
        for (int v = 0; v < logits.Length; v++) logits[v] = (Mix(h + (ulong)v) >> 40) / (float)(1 << 24) * 8f;
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    public void Forward(ForwardBatch batch, Span<float> logits)
    {
        OnForward?.Invoke(batch);
        if (Record)
            Batches.Add(batch.Entries.Select(e => new Entry(e.Tokens.ToArray(), e.StartPosition, e.BlockTable.ToArray(), e.Logits)).ToArray());
        var written = new HashSet<int>();
        // Writes first (all entries), as a real batched forward does, then reads.
        foreach (var e in batch.Entries)
        {
            var table = e.BlockTable.Span;
            if (table.Length != (e.StartPosition + e.Tokens.Length + BlockSize - 1) / BlockSize)
                throw new InvalidOperationException($"block table of {table.Length} blocks for {e.StartPosition + e.Tokens.Length} positions");
            for (int i = 0; i < e.Tokens.Length; i++)
            {
                int p = e.StartPosition + i;
                int slot = table[p / BlockSize] * BlockSize + p % BlockSize;
                if (!written.Add(slot)) throw new InvalidOperationException($"two entries write slot {slot} in one batch");
                _tokens[slot] = e.Tokens.Span[i];
                _positions[slot] = p;
            }
        }
        int row = 0;
        foreach (var e in batch.Entries)
        {
            if (e.Logits == LogitsWanted.None) continue;
            int first = e.Logits == LogitsWanted.All ? e.StartPosition : e.StartPosition + e.Tokens.Length - 1;
            for (int p = first; p < e.StartPosition + e.Tokens.Length; p++)
                Logits(Read(e.BlockTable.Span, p), logits.Slice(row++ * VocabSize, VocabSize));
        }
    }

    int[] Read(ReadOnlySpan<int> table, int last)
    {
        var history = new int[last + 1];
        for (int q = 0; q <= last; q++)
        {
            int slot = table[q / BlockSize] * BlockSize + q % BlockSize;
            if (_positions[slot] != q) throw new InvalidOperationException($"position {q} is not in block {table[q / BlockSize]} (slot holds {_positions[slot]})");
            history[q] = _tokens[slot];
        }
        return history;
    }

    public void CopyBlock(int source, int destination)
    {
        Copies++;
        Array.Copy(_tokens, source * BlockSize, _tokens, destination * BlockSize, BlockSize);
        Array.Copy(_positions, source * BlockSize, _positions, destination * BlockSize, BlockSize);
    }

    public void ExportBlock(int block, Span<byte> destination)
    {
        for (int i = 0; i < BlockSize; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(destination[(8 * i)..], _tokens[block * BlockSize + i]);
            BinaryPrimitives.WriteInt32LittleEndian(destination[(8 * i + 4)..], _positions[block * BlockSize + i]);
        }
    }

    public void ImportBlock(int block, ReadOnlySpan<byte> source)
    {
        Imports++;
        for (int i = 0; i < BlockSize; i++)
        {
            _tokens[block * BlockSize + i] = BinaryPrimitives.ReadInt32LittleEndian(source[(8 * i)..]);
            _positions[block * BlockSize + i] = BinaryPrimitives.ReadInt32LittleEndian(source[(8 * i + 4)..]);
        }
    }

    /// <summary>What a sequence generates alone, straight from the fake model (no cache, no scheduler).</summary>
    public static int[] Reference(ReadOnlySpan<int> prompt, SequenceOptions options, int vocab, int context = int.MaxValue)
    {
        var sampler = new Sampler(options.Sampling);
        var history = new List<int>(prompt.ToArray());
        var logits = new float[vocab];
        var generated = new List<int>();
        while (true)
        {
            Logits(history.ToArray(), logits);
            int t = sampler.Sample(logits, history.ToArray());
            history.Add(t);
            generated.Add(t);
            if (!options.IgnoreEos && options.EosIds.Contains(t)) break;
            if (options.StopIds.Contains(t) || generated.Count >= options.MaxTokens || history.Count >= context) break;
        }
        return generated.ToArray();
    }
}
