using Jevons.Numerics.Simd;
namespace Jevons.Numerics.Kernels;

/// <summary>
/// Runs a loop body over [0, count) on a fixed set of persistent threads (the caller is one of them).
/// One per model; its thread count and kernel path come from the options, never from a global.
/// A job is split into a few chunks per thread that threads claim in turn, so a busy core does not hold
/// the others up, and the caller returns once every chunk is done — it never waits for a worker that has not
/// woken yet (a late worker finds the job's chunks all claimed and goes back to sleep). Waits spin for up to
/// <see cref="SpinMicroseconds"/>, then block (SemaphoreSlim, ManualResetEventSlim): a decode step is hundreds of
/// jobs a few microseconds apart, and a worker woken from a blocked wait arrives tens of microseconds late (so the
/// caller did the job alone), while a bounded spin costs an idle or shared machine at most that long per job.
/// Not re-entrant: a call made while a job runs (nested, or from another thread) runs inline on its caller.
/// </summary>
public sealed unsafe class WorkerPool : IDisposable
{
    readonly Thread[] _threads;
    readonly SemaphoreSlim _wake = new(0);
    readonly ManualResetEventSlim _finished = new(false);
    int _busy, _sleepers;
    bool _disposed;

    // The current job. _claim packs generation << 32 | chunks << 16 | next chunk, so one read says whether a chunk
    // is left; the fields below are written before a generation is published and are not touched again until all
    // its chunks are done, so a claim (a CAS on the word read before the fields) that succeeds saw this job's fields.
    long _claim;
    delegate*<void*, int, int, void> _fn;
    void* _ctx;
    Action<int, int>? _action;
    int _count, _done;
    Exception? _error;

    /// <summary>How long a thread out of work polls for the next job (a worker) or for the last chunk (the caller) before it blocks.</summary>
    public const int SpinMicroseconds = 200;

    static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency * SpinMicroseconds / 1_000_000;

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

    void Execute(int count, delegate*<void*, int, int, void> fn, void* ctx, Action<int, int>? action, int chunkCount)
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
            int chunks = Math.Min(count, Math.Min(chunkCount, ushort.MaxValue));
            _done = 0;
            _error = null;
            _finished.Reset();
            long generation = (Volatile.Read(ref _claim) >> 32) + 1;
            Volatile.Write(ref _claim, generation << 32 | (long)chunks << 16);
            int sleepers = Interlocked.Exchange(ref _sleepers, 0);
            if (sleepers > 0) _wake.Release(sleepers);
            TakeChunks();
            // Only chunks another thread has claimed can still be running: wait for those, never for a wake-up. The
            // thread that finishes the last chunk sets the event (maybe this one), always before the next Reset: so
            // the caller polls the event itself (not the chunk count) before it blocks on it.
            if (!_finished.IsSet) SpinUntil(static pool => pool._finished.IsSet, this);
            _finished.Wait();
            _action = null;
            if (_error is { } e) throw new AggregateException("a worker failed", e);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Claims and runs chunks of the current job until none is left.</summary>
    void TakeChunks()
    {
        while (true)
        {
            long claim = Volatile.Read(ref _claim);
            int c = (int)(claim & 0xFFFF), chunks = (int)((claim >> 16) & 0xFFFF);
            // c ≥ chunks: everything is claimed, and the fields may already belong to the next job.
            if (c >= chunks) return;
            var fn = _fn;
            void* ctx = _ctx;
            var action = _action;
            int count = _count;
            if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) != claim) continue;
            int start = (int)((long)count * c / chunks), end = (int)((long)count * (c + 1) / chunks);
            try
            {
                if (action is not null) action(start, end);
                else fn(ctx, start, end);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            finally
            {
                if (Interlocked.Increment(ref _done) == chunks) _finished.Set();
            }
        }
    }

    bool HasWork()
    {
        long claim = Volatile.Read(ref _claim);
        return (claim & 0xFFFF) < ((claim >> 16) & 0xFFFF);
    }

    /// <summary>Polls <paramref name="done"/> for up to <see cref="SpinTicks"/>; whether it came true.</summary>
    static bool SpinUntil(Func<WorkerPool, bool> done, WorkerPool pool)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
        while (true)
        {
            for (int i = 0; i < 32; i++)
            {
                if (done(pool)) return true;
                Thread.SpinWait(1);
            }
            if (System.Diagnostics.Stopwatch.GetTimestamp() > until) return done(pool);
        }
    }

    void WorkerLoop()
    {
        while (!Volatile.Read(ref _disposed))
        {
            TakeChunks();
            if (SpinUntil(static pool => pool.HasWork() || Volatile.Read(ref pool._disposed), this)) continue;
            // Announce the sleep, then look once more: a job published in between either sees the announcement
            // (and releases the semaphore) or is seen here.
            Interlocked.Increment(ref _sleepers);
            if (HasWork() || Volatile.Read(ref _disposed))
            {
                if (Interlocked.Decrement(ref _sleepers) >= 0) continue;
                // The caller took our announcement and released the semaphore for us: consume it.
                Interlocked.Increment(ref _sleepers);
            }
            _wake.Wait();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        Volatile.Write(ref _disposed, true);
        if (_threads.Length > 0) _wake.Release(_threads.Length);
        foreach (var t in _threads) t.Join();
        _wake.Dispose();
        _finished.Dispose();
    }
}
