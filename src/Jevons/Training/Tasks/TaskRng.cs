namespace Jevons.Training.Tasks;

/// <summary>
/// The task generators' random numbers: SplitMix64, a value type the caller owns and passes by
/// reference, so a seed reproduces a stream exactly and nothing is shared between callers.
/// </summary>
public struct TaskRng
{
    ulong _state;

    public TaskRng(ulong seed) => _state = seed;

    /// <summary>A generator for one of several independent streams of the same seed.</summary>
    public static TaskRng ForStream(ulong seed, ulong stream) => new(Mix(seed ^ Mix(stream + 0x632BE59BD9B4E019UL)));

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        return Mix(z);
    }

    /// <summary>Uniform in [0, maxExclusive) (rejection sampling: no modulo bias).</summary>
    public int Next(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive));
        ulong n = (ulong)maxExclusive, limit = ulong.MaxValue - ulong.MaxValue % n;
        ulong x;
        do x = NextUInt64(); while (x >= limit);
        return (int)(x % n);
    }

    /// <summary>Uniform in [min, maxInclusive].</summary>
    public int Next(int min, int maxInclusive) => min + Next(maxInclusive - min + 1);

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
