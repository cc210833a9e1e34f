using System.Numerics.Tensors;

namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// SwiGLU: y = silu(g) ⊙ u with silu(g) = g·σ(g). Backward: du += dy ⊙ silu(g);
    /// dg += dy ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))). Vectorised in chunks that stay in L1 (σ by TensorPrimitives).
    /// </summary>
    public Tensor SwiGlu(Tensor gate, Tensor up)
    {
        SameLength(gate, up, "SwiGlu");
        var y = Result(gate.Shape, zeroed: false, gate, up);
        int n = gate.Length;
        SpreadChunks(n, 3, (from, to) =>
        {
            for (int i0 = from; i0 < to; i0 += Chunk)
            {
                int len = Math.Min(Chunk, to - i0);
                var g = gate.Data.AsSpan(i0, len);
                var yc = y.Data.AsSpan(i0, len);
                TensorPrimitives.Sigmoid(g, yc);
                TensorPrimitives.Multiply(yc, g, yc);
                TensorPrimitives.Multiply(yc, up.Data.AsSpan(i0, len), yc);
            }
        });
        Record(y, () => SpreadChunks(n, 5, (from, to) =>
        {
            Span<float> sig = stackalloc float[Chunk], t = stackalloc float[Chunk];
            for (int i0 = from; i0 < to; i0 += Chunk)
            {
                int len = Math.Min(Chunk, to - i0);
                var g = gate.Data.AsSpan(i0, len);
                var dy = y.Grad.AsSpan(i0, len);
                var sc = sig[..len];
                var tc = t[..len];
                TensorPrimitives.Sigmoid(g, sc);
                if (up.Grad is not null)
                {
                    TensorPrimitives.Multiply(g, sc, tc);
                    var du = up.Grad.AsSpan(i0, len);
                    TensorPrimitives.MultiplyAdd(dy, tc, du, du);
                }
                if (gate.Grad is not null)
                {
                    TensorPrimitives.Subtract(1f, sc, tc);          // 1 − σ
                    TensorPrimitives.MultiplyAdd(g, tc, 1f, tc);    // 1 + g·(1 − σ)
                    TensorPrimitives.Multiply(tc, sc, tc);
                    TensorPrimitives.Multiply(tc, up.Data.AsSpan(i0, len), tc);
                    var dg = gate.Grad.AsSpan(i0, len);
                    TensorPrimitives.MultiplyAdd(dy, tc, dg, dg);
                }
            }
        }));
        return y;
    }

    /// <summary>Elements per chunk of the vectorised elementwise loops (two chunks fit in L1 beside their inputs).</summary>
    const int Chunk = 1024;
}
