namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// SwiGLU: y = silu(g) ⊙ u with silu(g) = g·σ(g). Backward: du += dy ⊙ silu(g);
    /// dg += dy ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))).
    /// </summary>
    public Tensor SwiGlu(Tensor gate, Tensor up)
    {
        SameLength(gate, up, "SwiGlu");
        var y = Result(gate.Shape, gate, up);
        int n = gate.Length;
        var g = gate.Data;
        for (int i = 0; i < n; i++) y.Data[i] = g[i] / (1 + MathF.Exp(-g[i])) * up.Data[i];
        Record(y, () =>
        {
            for (int i = 0; i < n; i++)
            {
                float s = 1 / (1 + MathF.Exp(-g[i])), dy = y.Grad![i];
                if (up.Grad is not null) up.Grad[i] += dy * g[i] * s;
                if (gate.Grad is not null) gate.Grad[i] += dy * up.Data[i] * s * (1 + g[i] * (1 - s));
            }
        });
        return y;
    }
}
