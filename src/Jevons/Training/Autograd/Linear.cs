namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// y[n, out] = x[n, in] · W[out, in]ᵀ, the engine's weight layout (as x · Wᵀ with Wᵀ [in, out]).
    /// Backward: dx += dy · W and dW += dyᵀ · x, the transposes done by the product's packing.
    /// </summary>
    public Tensor MatMul(Tensor x, Tensor w)
    {
        int n = x.Rows, inF = x.Cols, outF = w.Shape[0];
        if (w.Shape.Length != 2 || w.Shape[1] != inF)
            throw new ArgumentException($"MatMul: x {x} · W {w}ᵀ: inner sizes differ");
        var y = Result([.. x.Shape[..^1], outF], zeroed: false, x, w);
        Product(x.Data, inF, false, w.Data, inF, true, y.Data, outF, n, outF, inF, accumulate: false);
        Record(y, () =>
        {
            if (x.Grad is not null) Product(y.Grad!, outF, false, w.Data, inF, false, x.Grad, inF, n, inF, outF, accumulate: true);
            if (w.Grad is not null) Product(y.Grad!, outF, true, x.Data, inF, false, w.Grad, inF, outF, inF, n, accumulate: true);
        });
        return y;
    }

    /// <summary>MatrixProduct.Multiply over whole arrays: C[m, n] (+)= op(A)·op(B) on the tape's pool.</summary>
    unsafe void Product(float[] a, int lda, bool transA, float[] b, int ldb, bool transB, float[] c, int ldc, int m, int n, int k, bool accumulate)
    {
        fixed (float* pa = a, pb = b, pc = c)
            MatrixProduct.Multiply(pa, lda, transA, pb, ldb, transB, pc, ldc, m, n, k, accumulate, Pool);
    }

    /// <summary>y[n, d] = table[ids[n]]. Backward scatters dy rows back into the table's rows, in token order.</summary>
    public Tensor Embedding(Tensor table, ReadOnlySpan<int> ids)
    {
        int d = table.Cols, vocab = table.Shape[0];
        var idCopy = ids.ToArray();
        var y = Result([idCopy.Length, d], zeroed: false, table);
        foreach (int id in idCopy)
            if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside the vocabulary of {vocab}");
        Spread(idCopy.Length, (long)idCopy.Length * d * 2, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++) table.Data.AsSpan(idCopy[t] * d, d).CopyTo(y.Data.AsSpan(t * d, d));
        });
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
