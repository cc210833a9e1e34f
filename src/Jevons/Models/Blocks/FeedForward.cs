using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Models.Blocks;

/// <summary>The SwiGLU MLP: down(silu(gate·x) ⊙ up·x). Dense FFNs, routed and shared experts.</summary>
public sealed class FeedForward : IFeedForwardBlock
{
    public FeedForward(Linear gate, Linear up, Linear down)
    {
        if (gate.OutFeatures != up.OutFeatures || down.InFeatures != gate.OutFeatures || gate.InFeatures != up.InFeatures)
            JevonsException.Throw($"gate {gate.OutFeatures}x{gate.InFeatures}, up {up.OutFeatures}x{up.InFeatures} and down {down.OutFeatures}x{down.InFeatures} do not fit together", down.File, down.Name);
        Gate = gate;
        Up = up;
        Down = down;
    }

    public Linear Gate { get; }
    public Linear Up { get; }
    public Linear Down { get; }
    public int Hidden => Gate.OutFeatures;
    public long Parameters => (long)Gate.OutFeatures * Gate.InFeatures * 3;

    /// <summary>y[rows, hidden] = FFN(x[rows, hidden]): gate, up and down each one Gemm over all rows of the step.</summary>
    public void Forward(StepWorkspace step, ReadOnlySpan<float> x, Span<float> y, int layer, WorkerPool pool)
    {
        Moe.Dense(this, x, y, step.Rows, step.Moe, pool);
        step.Profile?.Mark(StepPhase.DenseFeedForward);
    }

    /// <summary>y[dim] = FFN(x[dim]); scratch holds at least 2·Hidden floats.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> scratch, WorkerPool pool)
    {
        var g = scratch[..Hidden];
        var u = scratch.Slice(Hidden, Hidden);
        MatMul.MatVec(Gate, x, g, pool);
        MatMul.MatVec(Up, x, u, pool);
        Ops.SwiGlu(g, u, pool.Path);
        MatMul.MatVec(Down, g, y, pool);
    }
}
