using Jevons.Models;

namespace Jevons.Inference;

/// <summary>Per-step limits of the scheduler.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Most tokens one step evaluates (decode tokens plus prefill chunks): the chunked-prefill budget.</summary>
    public int MaxBatchTokens { get; init; } = 512;
    /// <summary>Most sequences running at once.</summary>
    public int MaxSequences { get; init; } = 64;

    public void Validate()
    {
        if (MaxBatchTokens < 1) JevonsException.Throw($"max-batch-tokens is {MaxBatchTokens}; it must be >= 1");
        if (MaxSequences < 1) JevonsException.Throw($"max-sequences is {MaxSequences}; it must be >= 1");
    }
}

/// <summary>One token a step produced for one sequence. <see cref="Finish"/> is not None on its last token.</summary>
public readonly record struct SequenceOutput(Sequence Sequence, int Token, float Logprob, TokenLogprob[]? TopLogprobs, FinishReason Finish);

/// <summary>Counters since the scheduler was made (Prometheus-style totals).</summary>
public sealed class SchedulerCounters
{
    /// <summary>Prompt tokens of admitted requests (each counted once, forks too).</summary>
    public long PromptTokens { get; internal set; }
    /// <summary>Tokens sampled.</summary>
    public long GenerationTokens { get; internal set; }
    /// <summary>Tokens evaluated by the runner (prefill chunks, recomputation, decode).</summary>
    public long ComputedTokens { get; internal set; }
    /// <summary>Tokens looked up in the prefix cache at admission, and how many were found.</summary>
    public long PrefixQueryTokens { get; internal set; }
    public long PrefixHitTokens { get; internal set; }
    public long Preemptions { get; internal set; }
    public long Steps { get; internal set; }
}

/// <summary>
/// Continuous batching over one runner, vLLM V1 style: every step is one unified batch of decode
/// tokens and prefill chunks under <see cref="SchedulerOptions.MaxBatchTokens"/>. Running decode
/// streams are scheduled first (one token each), then running prefills, then waiting sequences are
/// admitted while blocks and budget last — so a long prompt is cut into chunks and never stalls the
/// decode streams. When a running sequence needs a block and none is free, the latest-arrived running
/// sequence is preempted: its blocks are freed and it is recomputed later (the prefix cache usually
/// gives most of it back). Single-threaded: the engine loop calls <see cref="Step"/>.
/// </summary>
public sealed class Scheduler
{
    readonly IModelRunner _runner;
    readonly BlockPool _pool;
    readonly SchedulerOptions _options;
    readonly LinkedList<Sequence> _waiting = new();
    readonly List<Sequence> _running = [];
    readonly List<(Sequence Sequence, int Tokens)> _scheduled = [];
    readonly List<Sequence> _candidates = [];
    readonly List<SequenceOutput> _outputs = [];
    readonly ForwardBatch _batch = new();
    float[] _logits = [];
    float[] _forkRow = [];
    long _arrivals;

    public Scheduler(IModelRunner runner, BlockPool pool, SchedulerOptions? options = null)
    {
        _options = options ?? new SchedulerOptions();
        _options.Validate();
        _runner = runner;
        _pool = pool;
    }

    public BlockPool Pool => _pool;
    public SchedulerOptions Options => _options;
    public SchedulerCounters Counters { get; } = new();
    public int Running => _running.Count;
    public int Waiting => _waiting.Count;
    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;
    public IReadOnlyList<Sequence> RunningSequences => _running;
    public IEnumerable<Sequence> WaitingSequences => _waiting;
    /// <summary>The batch of the last step (tests look at it).</summary>
    public ForwardBatch LastBatch => _batch;

    /// <summary>
    /// The most prompt + max tokens one request may have for the KV pool (every block of it; the last
    /// sampled token needs no KV, hence the + 1). The context may be the tighter bound.
    /// </summary>
    public long PoolRequestTokens => (long)_pool.Blocks * _pool.BlockSize + 1;

    /// <summary>
    /// Throws a one-line error when a request can never run: no prompt, an id outside the vocabulary,
    /// prompt + max tokens over the context, or more KV blocks than the pool holds. Reads only
    /// constants, so any thread may call it.
    /// </summary>
    public void Validate(ReadOnlySpan<int> prompt, int maxTokens)
    {
        if (prompt.Length == 0) JevonsException.Throw("the prompt holds no tokens");
        if (maxTokens < 1) JevonsException.Throw($"max_tokens is {maxTokens}; it must be >= 1");
        foreach (var id in prompt)
            if ((uint)id >= (uint)_runner.VocabSize)
                JevonsException.Throw($"token id {id} is out of vocabulary (the model has {_runner.VocabSize} tokens)");
        long total = (long)prompt.Length + maxTokens;
        if (total > _runner.ContextLength)
            JevonsException.Throw($"the prompt has {prompt.Length} tokens and max_tokens is {maxTokens}: {total} is over the context length {_runner.ContextLength}");
        // The last sampled token is never evaluated, so total − 1 positions need KV.
        long blocks = (total - 1 + _pool.BlockSize - 1) / _pool.BlockSize;
        if (blocks > _pool.Blocks)
            JevonsException.Throw($"the request needs {blocks} KV blocks of {_pool.BlockSize} tokens ({prompt.Length} prompt + {maxTokens} max_tokens); the pool holds {_pool.Blocks} (raise --kv-budget)");
    }

    /// <summary>
    /// Queues <paramref name="sequence"/>; <paramref name="forks"/> (same prompt, their own options:
    /// OpenAI n &gt; 1) start from its blocks once its prompt is prefilled, each sampling its first
    /// token from the same logits.
    /// </summary>
    public void Add(Sequence sequence, IReadOnlyList<Sequence>? forks = null)
    {
        Validate(sequence.Prompt, sequence.Options.MaxTokens);
        if (sequence.Status != SequenceStatus.Waiting || sequence.Length != sequence.PromptLength)
            throw new ArgumentException("only a new sequence can be added", nameof(sequence));
        sequence.Arrival = _arrivals++;
        sequence.ReserveBlockTable(BlocksFor(sequence));
        Counters.PromptTokens += sequence.PromptLength;
        if (forks is { Count: > 0 })
        {
            sequence.Forks = [];
            foreach (var fork in forks)
            {
                if (!fork.Prompt.SequenceEqual(sequence.Prompt)) throw new ArgumentException("a fork has the parent's prompt", nameof(forks));
                Validate(fork.Prompt, fork.Options.MaxTokens);
                fork.Status = SequenceStatus.AwaitingParent;
                fork.ReserveBlockTable(BlocksFor(fork));
                fork.Arrival = _arrivals++;
                Counters.PromptTokens += fork.PromptLength;
                sequence.Forks.Add(fork);
            }
        }
        _waiting.AddLast(sequence);
    }

    int BlocksFor(Sequence s) => (s.PromptLength + s.Options.MaxTokens + _pool.BlockSize - 1) / _pool.BlockSize;

    /// <summary>Marks a sequence cancelled; the next step finishes it and frees its blocks.</summary>
    public void Cancel(Sequence sequence) => sequence.CancelRequested = true;

    /// <summary>
    /// One step: frees cancelled sequences, schedules decode tokens then prefill chunks under the
    /// token budget (preempting when blocks run out), runs the batch, samples. The outputs are valid
    /// until the next call.
    /// </summary>
    public IReadOnlyList<SequenceOutput> Step()
    {
        _outputs.Clear();
        DropCancelled();
        _scheduled.Clear();
        int budget = _options.MaxBatchTokens;
        int bs = _pool.BlockSize;

        // Running sequences: decode streams first, then unfinished prefills, each in arrival order.
        _candidates.Clear();
        foreach (var s in _running) if (s.Length - s.Computed == 1) _candidates.Add(s);
        foreach (var s in _running) if (s.Length - s.Computed > 1) _candidates.Add(s);
        foreach (var seq in _candidates)
        {
            if (budget == 0) break;
            if (seq.Status != SequenceStatus.Running) continue; // preempted earlier in this step
            int n = Math.Min(seq.Length - seq.Computed, budget);
            while (!Reserve(seq, n))
            {
                var victim = LatestRunning();
                int freed = Preempt(victim);
                if (freed > 0) budget += freed;
                if (victim == seq) break;
            }
            if (seq.Status != SequenceStatus.Running) continue;
            _scheduled.Add((seq, n));
            budget -= n;
        }

        // Admission: waiting sequences (new or preempted) while blocks, budget and seats last. No more
        // sequences run than the budget has tokens, so every decode stream gets its token every step.
        int seats = Math.Min(_options.MaxSequences, _options.MaxBatchTokens);
        while (_waiting.First is { } node && budget > 0 && _running.Count < seats)
        {
            var seq = node.Value;
            int cached = _pool.MatchPrefix(seq, (seq.Length - 1) / bs);
            int n = Math.Min(seq.Length - seq.Computed, budget);
            if (!Reserve(seq, n))
            {
                _pool.ReleaseAll(seq);
                break;
            }
            _waiting.RemoveFirst();
            Counters.PrefixQueryTokens += seq.Length;
            Counters.PrefixHitTokens += cached;
            if (seq.Preemptions == 0) seq.CachedPromptTokens = Math.Min(cached, seq.PromptLength);
            seq.Status = SequenceStatus.Running;
            _running.Add(seq);
            _scheduled.Add((seq, n));
            budget -= n;
        }

        if (_scheduled.Count == 0) return _outputs;
        _batch.Clear();
        foreach (var (seq, n) in _scheduled)
        {
            int end = seq.Computed + n;
            var logits = end == seq.Length ? LogitsWanted.Last : LogitsWanted.None;
            _batch.Add(new BatchEntry(seq.TokenMemory(seq.Computed, n), seq.Computed,
                seq.BlockTableMemory[..((end + bs - 1) / bs)], logits));
        }
        int vocab = _runner.VocabSize;
        if (_logits.Length < _batch.LogitRows * vocab) _logits = new float[_batch.LogitRows * vocab];
        _runner.Forward(_batch, _logits.AsSpan(0, _batch.LogitRows * vocab));
        Counters.Steps++;
        Counters.ComputedTokens += _batch.TotalTokens;

        int row = 0;
        foreach (var (seq, n) in _scheduled)
        {
            seq.Computed += n;
            _pool.RegisterFullBlocks(seq);
            if (seq.Computed != seq.Length) continue;
            var logits = _logits.AsSpan(row++ * vocab, vocab);
            if (seq.Forks is { } forks)
            {
                seq.Forks = null;
                foreach (var fork in forks) StartFork(seq, fork, logits);
            }
            SampleAndAppend(seq, logits);
        }
        return _outputs;
    }

    void StartFork(Sequence parent, Sequence fork, ReadOnlySpan<float> logits)
    {
        foreach (var block in parent.BlockTable)
        {
            _pool.Retain(block);
            fork.AddBlock(block);
        }
        fork.Computed = parent.Computed;
        fork.HashedBlocks = parent.HashedBlocks;
        fork.LastHash = parent.LastHash;
        fork.CachedPromptTokens = parent.CachedPromptTokens;
        fork.Status = SequenceStatus.Running;
        _running.Add(fork);
        if (fork.CancelRequested)
        {
            Finish(fork, FinishReason.Cancelled);
            return;
        }
        if (_forkRow.Length != logits.Length) _forkRow = new float[logits.Length];
        logits.CopyTo(_forkRow);
        SampleAndAppend(fork, _forkRow);
    }

    void SampleAndAppend(Sequence seq, Span<float> logits)
    {
        var o = seq.Options;
        if (!seq.TryTakeForced(out int token))
        {
            o.Logits?.Invoke(o.Choice, seq.Generated, logits);
            token = seq.Sampler.Sample(logits, seq.Tokens, seq.PromptLength);
        }
        float logprob = 0;
        TokenLogprob[]? top = null;
        if (o.TopLogprobs >= 0)
        {
            top = new TokenLogprob[Math.Min(o.TopLogprobs, logits.Length)];
            logprob = Sampler.Logprobs(logits, token, top);
        }
        seq.Append(token);
        Counters.GenerationTokens++;
        var finish = FinishReason.None;
        if (!o.IgnoreEos && o.EosIds.Contains(token)) finish = FinishReason.EndOfSequence;
        else if (o.StopIds.Contains(token)) finish = FinishReason.Stop;
        else if (seq.GeneratedCount >= o.MaxTokens) finish = FinishReason.Length;
        else if (seq.Length >= _runner.ContextLength) finish = FinishReason.ContextFull;
        _outputs.Add(new SequenceOutput(seq, token, logprob, top, finish));
        if (finish != FinishReason.None) Finish(seq, finish);
    }

    /// <summary>Ends a running or waiting sequence now (a stop string the engine saw) and frees its blocks.</summary>
    public void Finish(Sequence seq, FinishReason reason)
    {
        if (seq.Status == SequenceStatus.Finished) return;
        if (seq.Status == SequenceStatus.Running) _running.Remove(seq);
        else if (seq.Status == SequenceStatus.Waiting) _waiting.Remove(seq);
        _pool.ReleaseAll(seq);
        seq.Status = SequenceStatus.Finished;
        seq.FinishReason = reason;
        if (seq.Forks is { } forks)
        {
            // Forks that never started end with their parent's prefill.
            seq.Forks = null;
            foreach (var fork in forks)
            {
                fork.Status = SequenceStatus.Finished;
                fork.FinishReason = FinishReason.Cancelled;
            }
        }
    }

    void DropCancelled()
    {
        for (int i = _running.Count - 1; i >= 0; i--)
            if (_running[i].CancelRequested) Finish(_running[i], FinishReason.Cancelled);
        for (var node = _waiting.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.CancelRequested) Finish(node.Value, FinishReason.Cancelled);
            node = next;
        }
    }

    /// <summary>
    /// Makes positions seq.Computed .. seq.Computed + n − 1 writable: copies a shared partial block,
    /// allocates the blocks still missing. False when blocks ran out (what was taken stays in the table).
    /// </summary>
    bool Reserve(Sequence seq, int n)
    {
        int bs = _pool.BlockSize;
        if (seq.Computed % bs != 0 && !_pool.MakeWritable(seq, seq.Computed / bs)) return false;
        int needed = (seq.Computed + n + bs - 1) / bs;
        while (seq.BlockCount < needed)
        {
            int block = _pool.Allocate();
            if (block < 0) return false;
            seq.AddBlock(block);
        }
        return true;
    }

    Sequence LatestRunning()
    {
        var latest = _running[0];
        foreach (var s in _running) if (s.Arrival > latest.Arrival) latest = s;
        return latest;
    }

    /// <summary>Frees the victim's blocks and puts it at the front of the waiting queue; returns the tokens it had scheduled this step.</summary>
    int Preempt(Sequence victim)
    {
        int unscheduled = 0;
        for (int i = 0; i < _scheduled.Count; i++)
            if (_scheduled[i].Sequence == victim)
            {
                unscheduled = _scheduled[i].Tokens;
                _scheduled.RemoveAt(i);
                break;
            }
        _running.Remove(victim);
        _pool.ReleaseAll(victim);
        victim.Status = SequenceStatus.Waiting;
        victim.Preemptions++;
        Counters.Preemptions++;
        // Ahead of new arrivals, behind older preempted ones (arrival order).
        var at = _waiting.First;
        while (at is not null && at.Value.Preemptions > 0 && at.Value.Arrival < victim.Arrival) at = at.Next;
        if (at is null) _waiting.AddLast(victim);
        else _waiting.AddBefore(at, victim);
        return unscheduled;
    }
}
