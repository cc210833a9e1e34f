namespace Jevons.Inference;

/// <summary>Where a sequence is in its life.</summary>
public enum SequenceStatus
{
    /// <summary>In the waiting queue (new, or preempted: its KV is recomputed when it is admitted again).</summary>
    Waiting,
    /// <summary>A fork (n &gt; 1) waiting for its parent's prompt prefill; it then shares the parent's blocks.</summary>
    AwaitingParent,
    /// <summary>Holds blocks and gets tokens scheduled every step.</summary>
    Running,
    Finished,
}

/// <summary>What one sequence generates and when it stops (token level; stop strings are the engine's).</summary>
public sealed record SequenceOptions
{
    public int MaxTokens { get; init; } = 256;
    public SamplerOptions Sampling { get; init; } = SamplerOptions.Greedy;
    /// <summary>Ids that end generation (emitted, like EOS).</summary>
    public IReadOnlyList<int> StopIds { get; init; } = [];
    /// <summary>End-of-sequence ids of the tokenizer; ignored when <see cref="IgnoreEos"/>.</summary>
    public IReadOnlyList<int> EosIds { get; init; } = [];
    public bool IgnoreEos { get; init; }
    /// <summary>Alternatives reported per token; -1 = no logprobs at all, 0 = only the chosen token's.</summary>
    public int TopLogprobs { get; init; } = -1;
    /// <summary>The request's logits processor and this sequence's choice index for it.</summary>
    public LogitsProcessor? Logits { get; init; }
    public int Choice { get; init; }
}

/// <summary>
/// One stream of tokens: prompt, generated ids, its own sampler (and so its own RNG: the same seed
/// gives the same tokens alone or in a batch), the KV blocks it holds and how far they are computed.
/// Plain data: the <see cref="Scheduler"/> and <see cref="BlockPool"/> change it.
/// </summary>
public sealed class Sequence
{
    int[] _tokens;
    int _length;
    int[] _blocks = new int[4];

    public Sequence(long id, ReadOnlySpan<int> prompt, SequenceOptions options)
    {
        Id = id;
        Options = options;
        Sampler = new Sampler(options.Sampling);
        PromptLength = prompt.Length;
        _tokens = new int[Math.Max(prompt.Length + Math.Min(options.MaxTokens, 4096), 1)];
        prompt.CopyTo(_tokens);
        _length = prompt.Length;
    }

    public long Id { get; }
    public SequenceOptions Options { get; }
    public Sampler Sampler { get; }
    public SequenceStatus Status { get; internal set; }
    public FinishReason FinishReason { get; internal set; }
    /// <summary>Admission order; preemption picks the latest.</summary>
    public long Arrival { get; internal set; }

    public int PromptLength { get; }
    /// <summary>Prompt and generated tokens.</summary>
    public int Length => _length;
    public int GeneratedCount => _length - PromptLength;
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, _length);
    public ReadOnlySpan<int> Prompt => _tokens.AsSpan(0, PromptLength);
    public ReadOnlySpan<int> Generated => _tokens.AsSpan(PromptLength, GeneratedCount);
    internal ReadOnlyMemory<int> TokenMemory(int start, int count) => _tokens.AsMemory(start, count);

    /// <summary>Tokens whose K/V is in this sequence's blocks (positions 0 .. Computed − 1).</summary>
    public int Computed { get; internal set; }
    /// <summary>Prompt tokens the prefix cache supplied at first admission (usage.cached_tokens).</summary>
    public int CachedPromptTokens { get; internal set; }
    /// <summary>Times this sequence was preempted (its blocks freed, its KV recomputed later).</summary>
    public int Preemptions { get; internal set; }

    /// <summary>Block ids holding positions 0 .. BlockCount × BlockSize − 1, in order.</summary>
    public ReadOnlySpan<int> BlockTable => _blocks.AsSpan(0, BlockCount);
    internal ReadOnlyMemory<int> BlockTableMemory => _blocks.AsMemory(0, BlockCount);
    public int BlockCount { get; private set; }
    /// <summary>Leading blocks registered in the prefix cache's hash chain; <see cref="LastHash"/> is the last one's.</summary>
    internal int HashedBlocks { get; set; }
    internal UInt128 LastHash { get; set; }

    /// <summary>Forks (n &gt; 1) that start from this sequence's prompt once it is prefilled.</summary>
    internal List<Sequence>? Forks { get; set; }
    internal bool CancelRequested { get; set; }

    Queue<int>? _forced;

    /// <summary>Ids to append next instead of sampling (the engine's token hook).</summary>
    internal void Force(IReadOnlyList<int> ids)
    {
        _forced ??= new Queue<int>();
        foreach (var id in ids) _forced.Enqueue(id);
    }

    internal bool TryTakeForced(out int id)
    {
        id = 0;
        return _forced is { Count: > 0 } && _forced.TryDequeue(out id);
    }

    internal void Append(int token)
    {
        if (_length == _tokens.Length) Array.Resize(ref _tokens, _tokens.Length * 2);
        _tokens[_length++] = token;
    }

    internal void AddBlock(int block)
    {
        if (BlockCount == _blocks.Length) Array.Resize(ref _blocks, _blocks.Length * 2);
        _blocks[BlockCount++] = block;
    }

    internal void SetBlock(int index, int block) => _blocks[index] = block;

    /// <summary>Sizes the block table once for the most blocks this sequence can hold (no growth while decoding).</summary>
    internal void ReserveBlockTable(int blocks)
    {
        if (_blocks.Length < blocks) Array.Resize(ref _blocks, blocks);
    }

    internal void ClearBlocks()
    {
        BlockCount = 0;
        HashedBlocks = 0;
        LastHash = default;
        Computed = 0;
    }

    public override string ToString() => $"seq {Id} ({Status}, {Length} tokens, {Computed} computed, {BlockCount} blocks)";
}
