using System.Numerics.Tensors;

namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// Per row: y = x · r ⊙ w with r = 1/√(mean(x²) + eps), as the engine's Ops.RmsNorm. Backward, with
    /// x̂ = x·r: dw += Σ_rows dy ⊙ x̂ (rows in order within blocks of <see cref="NormBlock"/>, then the blocks in order); dx += r·(g − x̂·mean(g ⊙ x̂)) where g = dy ⊙ w.
    /// </summary>
    public Tensor RmsNorm(Tensor x, Tensor w, float eps)
    {
        int rows = x.Rows, d = x.Cols;
        if (w.Length != d) throw new ArgumentException($"RmsNorm: weight {w} for rows of {d}");
        var y = Result(x.Shape, zeroed: false, x, w);
        var inv = new float[rows];
        Spread(rows, (long)rows * d * 2, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var xr = x.Data.AsSpan(r * d, d);
                float ss = TensorPrimitives.Dot(xr, xr);
                inv[r] = (float)(1.0 / Math.Sqrt(ss / (double)d + eps));
                var yr = y.Data.AsSpan(r * d, d);
                TensorPrimitives.Multiply(xr, inv[r], yr);
                TensorPrimitives.Multiply(yr, w.Values, yr);
            }
        });
        Record(y, () =>
        {
            // dw's sum over rows runs per block of NormBlock rows (a fixed partition), the blocks added in order.
            int blocks = (rows + NormBlock - 1) / NormBlock;
            var partial = w.Grad is null ? null : System.Buffers.ArrayPool<float>.Shared.Rent(blocks * d);
            Spread(blocks, (long)rows * d * 4, (b0, b1) =>
            {
                var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(2 * d);
                var xhat = scratch.AsSpan(0, d);
                var g = scratch.AsSpan(d, d);
                for (int blk = b0; blk < b1; blk++)
                {
                    var dw = partial is null ? default : partial.AsSpan(blk * d, d);
                    dw.Clear();
                    for (int r = blk * NormBlock; r < Math.Min(rows, (blk + 1) * NormBlock); r++)
                    {
                        var xr = x.Data.AsSpan(r * d, d);
                        var dy = y.Grad.AsSpan(r * d, d);
                        TensorPrimitives.Multiply(xr, inv[r], xhat);
                        if (partial is not null) TensorPrimitives.MultiplyAdd(dy, xhat, dw, dw);
                        if (x.Grad is null) continue;
                        TensorPrimitives.Multiply(dy, w.Values, g);
                        float mean = TensorPrimitives.Dot(g, xhat) / d;
                        var dx = x.Grad.AsSpan(r * d, d);
                        TensorPrimitives.MultiplyAdd(g, inv[r], dx, dx);
                        TensorPrimitives.MultiplyAdd(xhat, -inv[r] * mean, dx, dx);
                    }
                }
                System.Buffers.ArrayPool<float>.Shared.Return(scratch);
            });
            if (partial is null) return;
            for (int blk = 0; blk < blocks; blk++) TensorPrimitives.Add(w.Gradient, partial.AsSpan(blk * d, d), w.Gradient);
            System.Buffers.ArrayPool<float>.Shared.Return(partial);
        });
        return y;
    }

    /// <summary>Rows per partial sum of RMSNorm's weight gradient (a fixed partition, whatever the thread count).</summary>
    const int NormBlock = 64;
}
