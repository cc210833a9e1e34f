using Jevons.Numerics.Kernels;

namespace Jevons.Training.Autograd;

/// <summary>
/// The autograd tape: every op computes its forward at once and, while <see cref="Recording"/>, appends its
/// backward step; <see cref="Backward"/> runs the steps in reverse. Ops live beside their backward in one file
/// per family (Linear, Elementwise, Norm, Rope, Attention, Activation, Moe, Loss). Every reduction runs in a
/// fixed order on one thread per output element, so the same inputs give the same bits on any thread count.
/// </summary>
public sealed partial class Tape
{
    readonly List<Action> _backward = [];

    public Tape(WorkerPool pool) => Pool = pool;

    /// <summary>Threads for the matrix products (and the per-sequence attention loop).</summary>
    public WorkerPool Pool { get; }

    /// <summary>False for evaluation: ops compute values only and record nothing.</summary>
    public bool Recording { get; set; } = true;

    public int Steps => _backward.Count;

    /// <summary>When set, every op's forward and backward time is added to it (bench/quick-train --profile).</summary>
    public TapeProfile? Profile { get; set; }

    long _opStart;

    /// <summary>A result tensor: it gets a gradient when the tape records and any input has one.</summary>
    Tensor Result(int[] shape, params Tensor[] inputs)
    {
        if (Profile is not null) _opStart = Profile.Clock();
        bool grad = false;
        if (Recording)
            foreach (var t in inputs) grad |= t.RequiresGrad;
        return new Tensor(shape, grad);
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
    }

    /// <summary>Backward from any output with a given seed gradient (d(seed·output)/d·): gradient checks use it.</summary>
    public void Backward(Tensor output, ReadOnlySpan<float> seed)
    {
        if (output.Grad is null) throw new ArgumentException("the output does not depend on any parameter", nameof(output));
        if (seed.Length != output.Length) throw new ArgumentException("seed and output differ in size", nameof(seed));
        System.Numerics.Tensors.TensorPrimitives.Add(output.Grad, seed, output.Grad);
        for (int i = _backward.Count - 1; i >= 0; i--) _backward[i]();
        _backward.Clear();
    }

    /// <summary>Drops recorded steps without running them.</summary>
    public void Clear() => _backward.Clear();
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
