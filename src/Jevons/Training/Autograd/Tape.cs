using Jevons.Numerics.Kernels;

namespace Jevons.Training.Autograd;

/// <summary>
/// The autograd tape: every op computes its forward at once and, while <see cref="Recording"/>, appends its
/// backward step; <see cref="Backward"/> runs the steps in reverse. Ops live beside their backward in one file
/// per family (Linear, Elementwise, Norm, Rope, Attention, Activation, Moe, Loss). Every reduction runs in a
/// fixed order on one thread per output element, or over a fixed partition whose partial sums are added in order,
/// so the same inputs give the same bits on any thread count. Ops spread over the pool in natural units (rows,
/// L1-sized chunks), so a split never moves a vector remainder.
/// </summary>
public sealed partial class Tape
{
    readonly List<Action> _backward = [];

    public Tape(WorkerPool pool) => Pool = pool;

    /// <summary>Threads for the matrix products, the per-sequence attention loop and the row-wise ops.</summary>
    public WorkerPool Pool { get; }

    /// <summary>False for evaluation: ops compute values only and record nothing.</summary>
    public bool Recording { get; set; } = true;

    public int Steps => _backward.Count;

    /// <summary>When set, every op's forward and backward time is added to it (bench/quick-train --profile).</summary>
    public TapeProfile? Profile { get; set; }

    long _opStart;

    /// <summary>
    /// body(start, end) on disjoint ranges covering [0, units) on the pool; inline when the op touches fewer than
    /// <see cref="MinSpread"/> floats (a pool round trip costs more than that much work).
    /// </summary>
    void Spread(int units, long floats, Action<int, int> body)
    {
        if (units <= 0) return;
        if (units == 1 || Pool.Threads == 1 || floats < MinSpread) body(0, units);
        else Pool.For(units, body);
    }

    /// <summary>Floats an op must touch before it is spread over the pool (measured: a round trip ≈ 5–20 µs).</summary>
    const long MinSpread = 1 << 15;

    /// <summary>body(start, end) over [0, length) in ranges of whole <see cref="Chunk"/>s, spread over the pool.</summary>
    void SpreadChunks(int length, int passes, Action<int, int> body) =>
        Spread((length + Chunk - 1) / Chunk, (long)length * passes, (c0, c1) => body(c0 * Chunk, Math.Min(length, c1 * Chunk)));

    /// <summary>
    /// When set, the results (and large scratch) of recorded ops take their arrays from the tape's store, and
    /// <see cref="Backward(Tensor)"/> and <see cref="Clear"/> give them back when they return: a result stays valid
    /// until the next recorded op, and its <see cref="Tensor.Data"/> may be longer than <see cref="Tensor.Length"/>.
    /// The trainer sets it: a step's ~540 MB of activations and gradients (tiny-r1, 2,048 positions) otherwise come
    /// from fresh pages every step, and the page faults and zeroing cost ~12% of the step's CPU time.
    /// </summary>
    public bool ReuseMemory { get; set; }

    /// <summary>Arrays shorter than this are not kept (they come cheaply from the GC's young generation).</summary>
    const int MinKept = 16 * 1024;
    /// <summary>A size no round has used for this many releases is dropped (batch shapes drift from step to step).</summary>
    const int KeepRounds = 16;
    readonly Dictionary<int, (Stack<float[]> Arrays, int LastRound)> _free = [];
    readonly List<float[]> _lent = [];
    int _round;

    /// <summary>A result tensor: it gets a gradient when the tape records and any input has one; values zeroed.</summary>
    Tensor Result(int[] shape, params Tensor[] inputs) => Result(shape, zeroed: true, inputs);

    /// <summary>As <see cref="Result(int[], Tensor[])"/>; with <paramref name="zeroed"/> false the op writes every value itself.</summary>
    Tensor Result(int[] shape, bool zeroed, params Tensor[] inputs)
    {
        if (Profile is not null) _opStart = Profile.Clock();
        bool grad = false;
        if (Recording)
            foreach (var t in inputs) grad |= t.RequiresGrad;
        if (!(Recording && ReuseMemory)) return new Tensor(shape, grad);
        long count = 1;
        foreach (var d in shape) count *= d;
        int length = checked((int)count);
        return new Tensor(shape, Take(length, zeroed), grad ? Take(length, zeroed: true) : null);
    }

    /// <summary>A scratch array of at least <paramref name="length"/> that backward may read (from the store when reusing memory).</summary>
    float[] Scratch(int length) => Recording && ReuseMemory ? Take(length, zeroed: false) : new float[length];

    /// <summary>An array of at least <paramref name="length"/> from the store (sizes rounded up to a quarter of their power of two).</summary>
    float[] Take(int length, bool zeroed)
    {
        if (length < MinKept) return new float[length];
        int step = 1 << (29 - System.Numerics.BitOperations.LeadingZeroCount((uint)length));
        int size = (length + step - 1) / step * step;
        float[] a;
        if (_free.TryGetValue(size, out var kept) && kept.Arrays.Count > 0)
        {
            a = kept.Arrays.Pop();
            if (zeroed) a.AsSpan(0, length).Clear();
        }
        else a = new float[size];
        _lent.Add(a);
        return a;
    }

    /// <summary>Everything lent since the last release goes back to the store; sizes unused for <see cref="KeepRounds"/> releases are dropped.</summary>
    void ReleaseLent()
    {
        if (_lent.Count == 0) return;
        _round++;
        foreach (var a in _lent)
        {
            var arrays = _free.TryGetValue(a.Length, out var kept) ? kept.Arrays : new Stack<float[]>();
            arrays.Push(a);
            _free[a.Length] = (arrays, _round);
        }
        _lent.Clear();
        foreach (var (size, kept) in _free)
            if (_round - kept.LastRound > KeepRounds) _free.Remove(size);
    }

    void Record(Tensor result, Action backward, [System.Runtime.CompilerServices.CallerMemberName] string op = "")
    {
        if (Profile is { } profile)
        {
            profile.Add(op, forward: true, profile.Clock() - _opStart);
            var inner = backward;
            backward = () =>
            {
                long t0 = profile.Clock();
                inner();
                profile.Add(op, forward: false, profile.Clock() - t0);
            };
        }
        if (Recording && result.RequiresGrad) _backward.Add(backward);
    }

    /// <summary>Seeds d<paramref name="loss"/> = 1 and runs every recorded backward step, newest first; then forgets them.</summary>
    public void Backward(Tensor loss)
    {
        if (loss.Length != 1) throw new ArgumentException("backward starts from a scalar loss", nameof(loss));
        if (loss.Grad is null) throw new ArgumentException("the loss does not depend on any parameter", nameof(loss));
        loss.Grad[0] += 1f;
        for (int i = _backward.Count - 1; i >= 0; i--) _backward[i]();
        _backward.Clear();
        ReleaseLent();
    }

    /// <summary>Backward from any output with a given seed gradient (d(seed·output)/d·): gradient checks use it.</summary>
    public void Backward(Tensor output, ReadOnlySpan<float> seed)
    {
        if (output.Grad is null) throw new ArgumentException("the output does not depend on any parameter", nameof(output));
        if (seed.Length != output.Length) throw new ArgumentException("seed and output differ in size", nameof(seed));
        System.Numerics.Tensors.TensorPrimitives.Add(output.Gradient, seed, output.Gradient);
        for (int i = _backward.Count - 1; i >= 0; i--) _backward[i]();
        _backward.Clear();
        ReleaseLent();
    }

    /// <summary>Drops recorded steps without running them.</summary>
    public void Clear()
    {
        _backward.Clear();
        ReleaseLent();
    }
}

/// <summary>
/// Time per tape op, forward and backward, in the units of <see cref="Clock"/> (default: Stopwatch ticks; a
/// harness on a shared machine passes a thread-CPU-time clock and runs one thread).
/// </summary>
public sealed class TapeProfile(Func<long>? clock = null)
{
    readonly Dictionary<(string Op, bool Forward), (long Time, long Calls)> _times = [];

    public Func<long> Clock { get; } = clock ?? System.Diagnostics.Stopwatch.GetTimestamp;

    public void Add(string op, bool forward, long time)
    {
        var key = (op, forward);
        _times.TryGetValue(key, out var t);
        _times[key] = (t.Time + time, t.Calls + 1);
    }

    /// <summary>(op, forward?, total time, calls), largest first.</summary>
    public IEnumerable<(string Op, bool Forward, long Time, long Calls)> Entries =>
        _times.OrderByDescending(kv => kv.Value.Time).Select(kv => (kv.Key.Op, kv.Key.Forward, kv.Value.Time, kv.Value.Calls));

    public void Reset() => _times.Clear();
}
