namespace Jevons.Numerics.Kernels;

/// <summary>
/// Runs a loop body over [0, count) on a fixed set of persistent threads (the caller is one of them).
/// One per model; its thread count and kernel path come from the options, never from a global.
/// A job is split into a few chunks per thread that threads take in turn, so a busy core does not hold
/// the others up. Not re-entrant: a call made while a job runs (nested, or from another thread) runs
/// inline on its caller.
/// </summary>
public sealed unsafe class WorkerPool : IDisposable
{
    readonly Thread[] _threads;
    readonly SemaphoreSlim _start = new(0);
    readonly ManualResetEventSlim _done = new(false);
    int _busy;
    bool _disposed;

    // the current job
    delegate*<void*, int, int, void> _fn;
    void* _ctx;
    Action<int, int>? _action;
    int _count, _chunks, _nextChunk, _pending;
    Exception? _error;

    public WorkerPool(int threads) : this(threads, KernelDispatch.Default) { }

    public WorkerPool(int threads, KernelPath path)
    {
        Threads = Math.Max(1, threads);
        Path = path;
        _threads = new Thread[Threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(WorkerLoop, 1 << 20) { IsBackground = true, Name = $"jevons-worker-{i + 1}" };
            _threads[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>The kernel path the matrix kernels run with on this pool.</summary>
    public KernelPath Path { get; }

    /// <summary>Calls body(start, end) on disjoint chunks covering [0, count).</summary>
    public void For(int count, Action<int, int> body)
    {
        if (count <= 0) return;
        Execute(count, null, null, body, Threads * 4);
    }

    /// <summary>Allocation-free form: fn(ctx, start, end) on disjoint chunks covering [0, count).
    /// ctx must stay valid until the call returns (a caller's stack struct is fine).</summary>
    internal void Run(int count, delegate*<void*, int, int, void> fn, void* ctx)
    {
        if (count <= 0) return;
        Execute(count, fn, ctx, null, Threads * 4);
    }

    /// <summary><see cref="Run(int, delegate*{void*, int, int, void}, void*)"/> cut into <paramref name="chunks"/> chunks (finer: better balance, more hand-offs).</summary>
    internal void Run(int count, delegate*<void*, int, int, void> fn, void* ctx, int chunks)
    {
        if (count <= 0) return;
        Execute(count, fn, ctx, null, Math.Max(1, chunks));
    }

    void Execute(int count, delegate*<void*, int, int, void> fn, void* ctx, Action<int, int>? action, int chunks)
    {
        if (Threads == 1 || count == 1 || _disposed || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            if (action is not null) action(0, count);
            else fn(ctx, 0, count);
            return;
        }
        try
        {
            _fn = fn;
            _ctx = ctx;
            _action = action;
            _count = count;
            _chunks = Math.Min(count, chunks);
            _nextChunk = 0;
            _error = null;
            _pending = _threads.Length;
            _done.Reset();
            _start.Release(_threads.Length);
            TakeChunks();
            _done.Wait();
            _action = null;
            if (_error is { } e) throw new AggregateException("a worker failed", e);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    void TakeChunks()
    {
        try
        {
            while (true)
            {
                int c = Interlocked.Increment(ref _nextChunk) - 1;
                if (c >= _chunks) return;
                int start = (int)((long)_count * c / _chunks), end = (int)((long)_count * (c + 1) / _chunks);
                if (_action is not null) _action(start, end);
                else _fn(_ctx, start, end);
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
            Volatile.Write(ref _nextChunk, int.MaxValue / 2);
        }
    }

    void WorkerLoop()
    {
        while (true)
        {
            _start.Wait();
            if (Volatile.Read(ref _disposed)) return;
            TakeChunks();
            if (Interlocked.Decrement(ref _pending) == 0) _done.Set();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        Volatile.Write(ref _disposed, true);
        if (_threads.Length > 0) _start.Release(_threads.Length);
        foreach (var t in _threads) t.Join();
        _start.Dispose();
        _done.Dispose();
    }
}
