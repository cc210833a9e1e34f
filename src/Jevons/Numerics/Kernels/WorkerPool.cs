namespace Jevons.Numerics.Kernels;

/// <summary>
/// Runs a loop body over [0, count) on a fixed number of threads. One per model; its thread count
/// comes from the options, never from a global.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    public WorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
    }

    public int Threads { get; }

    /// <summary>Calls body(start, end) on disjoint chunks covering [0, count).</summary>
    public void For(int count, Action<int, int> body)
    {
        if (count <= 0) return;
        int chunks = Math.Min(Threads, count);
        if (chunks == 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, c =>
        {
            int start = (int)((long)count * c / chunks), end = (int)((long)count * (c + 1) / chunks);
            body(start, end);
        });
    }

    public void Dispose() { }
}
