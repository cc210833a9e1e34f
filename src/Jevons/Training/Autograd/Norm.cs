using System.Numerics.Tensors;

namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// Per row: y = x · r ⊙ w with r = 1/√(mean(x²) + eps), as the engine's Ops.RmsNorm. Backward, with
    /// x̂ = x·r: dw += Σ_rows dy ⊙ x̂ (rows in order); dx += r·(g − x̂·mean(g ⊙ x̂)) where g = dy ⊙ w.
    /// </summary>
    public Tensor RmsNorm(Tensor x, Tensor w, float eps)
    {
        int rows = x.Rows, d = x.Cols;
        if (w.Length != d) throw new ArgumentException($"RmsNorm: weight {w} for rows of {d}");
        var y = Result(x.Shape, zeroed: false, x, w);
        var inv = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Data.AsSpan(r * d, d);
            float ss = TensorPrimitives.Dot(xr, xr);
            inv[r] = (float)(1.0 / Math.Sqrt(ss / (double)d + eps));
            var yr = y.Data.AsSpan(r * d, d);
            TensorPrimitives.Multiply(xr, inv[r], yr);
            TensorPrimitives.Multiply(yr, w.Values, yr);
        }
        Record(y, () =>
        {
            var xhat = new float[d];
            var g = new float[d];
            for (int r = 0; r < rows; r++)
            {
                var xr = x.Data.AsSpan(r * d, d);
                var dy = y.Grad.AsSpan(r * d, d);
                TensorPrimitives.Multiply(xr, inv[r], xhat);
                if (w.Grad is not null) TensorPrimitives.MultiplyAdd(dy, xhat, w.Gradient, w.Gradient);
                if (x.Grad is null) continue;
                TensorPrimitives.Multiply(dy, w.Values, g);
                float mean = TensorPrimitives.Dot(g, xhat) / d;
                var dx = x.Grad.AsSpan(r * d, d);
                TensorPrimitives.MultiplyAdd(g, inv[r], dx, dx);
                TensorPrimitives.MultiplyAdd(xhat, -inv[r] * mean, dx, dx);
            }
        });
        return y;
    }
}
