namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// y[n, out] = x[n, in] · W[out, in]ᵀ, the engine's weight layout (as x · Wᵀ with Wᵀ [in, out]).
    /// Backward: dx += dy · W and dW += dyᵀ · x (dyᵀ [out, n]).
    /// </summary>
    public Tensor MatMul(Tensor x, Tensor w)
    {
        int n = x.Rows, inF = x.Cols, outF = w.Shape[0];
        if (w.Shape.Length != 2 || w.Shape[1] != inF)
            throw new ArgumentException($"MatMul: x {x} · W {w}ᵀ: inner sizes differ");
        var y = Result([.. x.Shape[..^1], outF], x, w);
        var wt = new float[inF * outF];
        MatrixProduct.Transpose(w.Data, outF, inF, wt);
        MatrixProduct.Nn(x.Data, wt, y.Data, n, outF, inF, accumulate: false, Pool);
        Record(y, () =>
        {
            if (x.Grad is not null) MatrixProduct.Nn(y.Grad!, w.Data, x.Grad, n, inF, outF, accumulate: true, Pool);
            if (w.Grad is not null)
            {
                var dyT = new float[outF * n];
                MatrixProduct.Transpose(y.Grad!, n, outF, dyT);
                MatrixProduct.Nn(dyT, x.Data, w.Grad, outF, inF, n, accumulate: true, Pool);
            }
        });
        return y;
    }

    /// <summary>y[n, d] = table[ids[n]]. Backward scatters dy rows back into the table's rows, in token order.</summary>
    public Tensor Embedding(Tensor table, ReadOnlySpan<int> ids)
    {
        int d = table.Cols, vocab = table.Shape[0];
        var idCopy = ids.ToArray();
        var y = Result([idCopy.Length, d], table);
        for (int t = 0; t < idCopy.Length; t++)
        {
            int id = idCopy[t];
            if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {vocab}");
            table.Data.AsSpan(id * d, d).CopyTo(y.Data.AsSpan(t * d, d));
        }
        Record(y, () =>
        {
            for (int t = 0; t < idCopy.Length; t++)
            {
                var g = table.Grad.AsSpan(idCopy[t] * d, d);
                System.Numerics.Tensors.TensorPrimitives.Add(g, y.Grad.AsSpan(t * d, d), g);
            }
        });
        return y;
    }
}
