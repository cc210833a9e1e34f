using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Jevons.Tokenization;

namespace Jevons.Inference;

/// <summary>One generation request: a prompt and <see cref="N"/> choices sampled from it (OpenAI <c>n</c>).</summary>
public sealed record GenerationRequest
{
    public required IReadOnlyList<int> Prompt { get; init; }
    /// <summary>Choices; they share the prompt's KV blocks and choice i samples with seed Sampling.Seed + i.</summary>
    public int N { get; init; } = 1;
    public int MaxTokens { get; init; } = 256;
    public SamplerOptions Sampling { get; init; } = new();
    /// <summary>Text that ends a choice (not emitted).</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];
    /// <summary>Token ids that end a choice (not emitted as text).</summary>
    public IReadOnlyList<int> StopIds { get; init; } = [];
    public bool IgnoreEos { get; init; }
    public bool SkipSpecialTokens { get; init; } = true;
    /// <summary>-1 = no logprobs; k ≥ 0 = the chosen token's logprob and the k most likely alternatives.</summary>
    public int TopLogprobs { get; init; } = -1;
    /// <summary>
    /// Called on the engine thread after every token of a choice, with (choice, the text it completed).
    /// Ids it returns are appended to that choice next, in order, instead of sampled ones (a thinking
    /// budget forcing "&lt;/think&gt;\n"); they count as completion tokens. Keep it quick: the loop waits.
    /// </summary>
    public Func<int, string, IReadOnlyList<int>?>? TokenHook { get; init; }
    /// <summary>
    /// Called on the engine thread before each sampling of a choice with (choice, its generated ids
    /// so far, the row of logits), which it may change (constrained decoding masks tokens with -∞).
    /// </summary>
    public LogitsProcessor? Logits { get; init; }
}

/// <summary>Changes one choice's logits before sampling; see <see cref="GenerationRequest.Logits"/>.</summary>
public delegate void LogitsProcessor(int choice, ReadOnlySpan<int> generated, Span<float> logits);

/// <summary>Token counts of a request so far (OpenAI usage; cached = prompt tokens the prefix cache supplied).</summary>
public readonly record struct Usage(int PromptTokens, int CachedPromptTokens, int CompletionTokens);

/// <summary>
/// One generated token of one choice. <see cref="Text"/> is the text it completed (empty while a
/// UTF-8 sequence or a possible stop string is pending); the last event of a choice has a
/// <see cref="Finish"/> reason. <see cref="Usage"/> covers the whole request up to this event.
/// </summary>
public sealed record TokenEvent(int Choice, int Id, string Text, float? Logprob, TokenLogprob[]? TopLogprobs, FinishReason Finish, Usage Usage);

/// <summary>A snapshot of the engine's gauges and counters, for /metrics.</summary>
public sealed record EngineMetrics
{
    public int Running { get; init; }
    public int Waiting { get; init; }
    public int KvBlocksUsed { get; init; }
    public int KvBlocksTotal { get; init; }
    public int KvBlocksCached { get; init; }
    public int BlockSize { get; init; }
    public long PrefixQueryTokens { get; init; }
    public long PrefixHitTokens { get; init; }
    public long Preemptions { get; init; }
    public long PromptTokens { get; init; }
    public long GenerationTokens { get; init; }
    public long ComputedTokens { get; init; }
    public long Steps { get; init; }
    public long DiskHits { get; init; }
}

/// <summary>Engine settings: scheduling limits and the optional disk tier of the prefix cache.</summary>
public sealed record EngineOptions
{
    public SchedulerOptions Scheduler { get; init; } = new();
    /// <summary>--cache-dir: where full prefix blocks are kept across restarts; null = memory only.</summary>
    public string? CacheDirectory { get; init; }
    public long CacheDirectoryMaxBytes { get; init; } = 4L << 30;
    /// <summary>Where warnings go (a corrupt cache file); null = nowhere.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>A submitted request: its events as they come, and a way to stop it.</summary>
public sealed class EngineRequest
{
    readonly InferenceEngine _engine;
    internal readonly Channel<TokenEvent> Channel = System.Threading.Channels.Channel.CreateUnbounded<TokenEvent>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    internal Sequence[] Sequences = [];
    internal StreamingDetokenizer?[] Detokenizers = [];
    internal StopSequences[] Stops = [];
    internal int Open;
    internal int Completion;
    internal volatile bool Done;

    internal EngineRequest(InferenceEngine engine, GenerationRequest request)
    {
        _engine = engine;
        Request = request;
    }

    public GenerationRequest Request { get; }
    public ChannelReader<TokenEvent> Events => Channel.Reader;
    /// <summary>True once every choice finished (or the request failed or was cancelled).</summary>
    public bool Completed => Done;
    /// <summary>Stops every choice; the engine frees their blocks at its next step.</summary>
    public void Cancel() => _engine.Cancel(this);
}

/// <summary>
/// The engine loop: owns a runner, its <see cref="BlockPool"/> and <see cref="Scheduler"/>, and a
/// dedicated thread that steps while there is work and sleeps otherwise. Requests come in through
/// <see cref="Submit"/> / <see cref="GenerateAsync"/> from any thread; only the loop thread touches
/// the scheduler. The CLI, the HTTP server and IChatClient are faces of this one loop.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    readonly IModelRunner _runner;
    readonly Tokenizer? _tokenizer;
    readonly Scheduler _scheduler;
    readonly BlockPool _pool;
    readonly Thread _thread;
    readonly object _gate = new();
    readonly Queue<(EngineRequest Request, bool Cancel)> _commands = new();
    readonly Dictionary<Sequence, (EngineRequest Request, int Choice)> _owners = new();
    bool _stopping;
    long _nextId;
    EngineMetrics _metrics;

    public InferenceEngine(IModelRunner runner, Tokenizer? tokenizer, EngineOptions? options = null)
    {
        options ??= new EngineOptions();
        _runner = runner;
        _tokenizer = tokenizer;
        var disk = options.CacheDirectory is { } dir ? new PrefixDiskCache(dir, options.CacheDirectoryMaxBytes, runner, options.Log) : null;
        _pool = new BlockPool(runner, disk);
        _scheduler = new Scheduler(runner, _pool, options.Scheduler);
        _metrics = Snapshot();
        _thread = new Thread(Loop) { IsBackground = true, Name = "jevons-engine" };
        _thread.Start();
    }

    public IModelRunner Runner => _runner;
    public Tokenizer? Tokenizer => _tokenizer;
    /// <summary>The latest snapshot (updated after every step); safe from any thread.</summary>
    public EngineMetrics Metrics => Volatile.Read(ref _metrics);

    /// <summary>The most prompt + max tokens one request may have for the KV pool (<see cref="Scheduler.PoolRequestTokens"/>).</summary>
    public long PoolRequestTokens => _scheduler.PoolRequestTokens;

    /// <summary>Throws the one-line error a request that can never run gets (see <see cref="Scheduler.Validate"/>).</summary>
    public void Validate(GenerationRequest request)
    {
        if (request.N < 1) JevonsException.Throw($"n is {request.N}; it must be >= 1");
        if (request.TopLogprobs > 20) JevonsException.Throw($"top_logprobs is {request.TopLogprobs}; it must be <= 20");
        request.Sampling.Validate();
        _scheduler.Validate(request.Prompt.ToArray(), request.MaxTokens);
    }

    /// <summary>Queues a request; its events arrive on <see cref="EngineRequest.Events"/>.</summary>
    public EngineRequest Submit(GenerationRequest request)
    {
        Validate(request);
        var handle = new EngineRequest(this, request);
        Post(handle, cancel: false);
        return handle;
    }

    /// <summary>
    /// Generates for <paramref name="request"/>, streaming one event per token and choice.
    /// Cancelling <paramref name="cancel"/> or abandoning the enumeration cancels the request; its
    /// blocks are freed at the engine's next step.
    /// </summary>
    public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var handle = Submit(request);
        try
        {
            await foreach (var e in handle.Events.ReadAllAsync(cancel).ConfigureAwait(false))
                yield return e;
        }
        finally
        {
            if (!handle.Completed) handle.Cancel();
        }
    }

    internal void Cancel(EngineRequest request) => Post(request, cancel: true);

    void Post(EngineRequest request, bool cancel)
    {
        lock (_gate)
        {
            if (_stopping)
            {
                // A cancellation after Dispose has nothing left to cancel; a new request is an error.
                if (cancel) return;
                throw new ObjectDisposedException(nameof(InferenceEngine));
            }
            _commands.Enqueue((request, cancel));
            Monitor.Pulse(_gate);
        }
    }

    void Loop()
    {
        var commands = new List<(EngineRequest Request, bool Cancel)>();
        while (true)
        {
            lock (_gate)
            {
                while (_commands.Count == 0 && !_scheduler.HasWork && !_stopping) Monitor.Wait(_gate);
                if (_stopping) break;
                commands.AddRange(_commands);
                _commands.Clear();
            }
            foreach (var (request, cancel) in commands)
            {
                if (cancel) CancelAll(request);
                else Start(request);
            }
            commands.Clear();
            if (!_scheduler.HasWork) { Publish(); continue; }
            try
            {
                foreach (var output in _scheduler.Step()) Deliver(output);
            }
            catch (Exception e)
            {
                FailAll(e);
            }
            Publish();
        }
        FailAll(new OperationCanceledException("the inference engine was stopped"));
    }

    void Start(EngineRequest handle)
    {
        if (handle.Done) return;
        var r = handle.Request;
        var prompt = r.Prompt.ToArray();
        var eos = _tokenizer?.EosIds ?? [];
        var sequences = new Sequence[r.N];
        for (int i = 0; i < r.N; i++)
        {
            var options = new SequenceOptions
            {
                MaxTokens = r.MaxTokens,
                Sampling = r.Sampling with { Seed = r.Sampling.Seed + (ulong)i },
                StopIds = r.StopIds,
                EosIds = eos,
                IgnoreEos = r.IgnoreEos,
                TopLogprobs = r.TopLogprobs,
                Choice = i,
                Logits = r.Logits,
            };
            sequences[i] = new Sequence(_nextId++, prompt, options);
        }
        handle.Sequences = sequences;
        handle.Detokenizers = sequences.Select(_ => _tokenizer?.CreateDetokenizer(r.SkipSpecialTokens)).ToArray();
        handle.Stops = sequences.Select(_ => new StopSequences(r.StopSequences)).ToArray();
        handle.Open = r.N;
        try
        {
            _scheduler.Add(sequences[0], sequences[1..]);
        }
        catch (Exception e)
        {
            Complete(handle, e);
            return;
        }
        for (int i = 0; i < sequences.Length; i++) _owners[sequences[i]] = (handle, i);
    }

    void CancelAll(EngineRequest handle)
    {
        if (handle.Done) return;
        foreach (var s in handle.Sequences) _scheduler.Cancel(s);
        foreach (var s in handle.Sequences) _owners.Remove(s);
        Complete(handle, null);
    }

    void Deliver(SequenceOutput output)
    {
        var seq = output.Sequence;
        if (!_owners.TryGetValue(seq, out var owner)) return;
        var (handle, choice) = owner;
        var detok = handle.Detokenizers[choice];
        var stops = handle.Stops[choice];
        var finish = output.Finish;
        string text;
        if (finish is FinishReason.EndOfSequence || (finish is FinishReason.Stop && seq.Options.StopIds.Contains(output.Token)))
            text = stops.Push(detok?.Flush() ?? "") + stops.Flush();
        else
        {
            text = stops.Push(detok?.Push(output.Token) ?? "");
            if (stops.Stopped)
            {
                finish = FinishReason.Stop;
                _scheduler.Finish(seq, FinishReason.Stop);
            }
            else if (finish != FinishReason.None)
                text += stops.Push(detok?.Flush() ?? "") + stops.Flush();
        }
        handle.Completion++;
        var usage = new Usage(seq.PromptLength, handle.Sequences[0].CachedPromptTokens, handle.Completion);
        handle.Channel.Writer.TryWrite(new TokenEvent(choice, output.Token, text,
            output.TopLogprobs is null ? null : output.Logprob, output.TopLogprobs, finish, usage));
        if (finish == FinishReason.None && handle.Request.TokenHook is { } hook && hook(choice, text) is { Count: > 0 } forced)
            seq.Force(forced);
        if (finish != FinishReason.None)
        {
            _owners.Remove(seq);
            if (--handle.Open == 0) Complete(handle, null);
        }
    }

    static void Complete(EngineRequest handle, Exception? error)
    {
        handle.Done = true;
        handle.Channel.Writer.TryComplete(error);
    }

    void FailAll(Exception error)
    {
        foreach (var handle in _owners.Values.Select(o => o.Request).Distinct().ToList())
        {
            foreach (var s in handle.Sequences) _scheduler.Finish(s, FinishReason.Cancelled);
            Complete(handle, error);
        }
        _owners.Clear();
        lock (_gate)
        {
            foreach (var (handle, _) in _commands) Complete(handle, error);
            _commands.Clear();
        }
    }

    void Publish() => Volatile.Write(ref _metrics, Snapshot());

    EngineMetrics Snapshot()
    {
        var c = _scheduler.Counters;
        return new EngineMetrics
        {
            Running = _scheduler.Running,
            Waiting = _scheduler.Waiting,
            KvBlocksUsed = _pool.Used,
            KvBlocksTotal = _pool.Blocks,
            KvBlocksCached = _pool.CachedBlocks,
            BlockSize = _pool.BlockSize,
            PrefixQueryTokens = c.PrefixQueryTokens,
            PrefixHitTokens = c.PrefixHitTokens,
            Preemptions = c.Preemptions,
            PromptTokens = c.PromptTokens,
            GenerationTokens = c.GenerationTokens,
            ComputedTokens = c.ComputedTokens,
            Steps = c.Steps,
            DiskHits = _pool.DiskHits,
        };
    }

    /// <summary>Stops the loop thread; requests still in flight end with an OperationCanceledException.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _thread.Join();
    }
}
