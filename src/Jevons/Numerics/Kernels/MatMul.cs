namespace Jevons.Numerics.Kernels;

/// <summary>Matrix-vector and matrix-matrix products with weights in any stored format.</summary>
public static unsafe class MatMul
{
    /// <summary>y[out] = W·x[in] (+ bias).</summary>
    public static void MatVec(Linear w, ReadOnlySpan<float> x, Span<float> y, WorkerPool pool)
    {
        if (x.Length < w.InFeatures || y.Length < w.OutFeatures)
            throw new ArgumentException($"{w.Name}: x has {x.Length} (need {w.InFeatures}), y has {y.Length} (need {w.OutFeatures})");
        fixed (float* px = x, py = y)
        {
            float* xp = px, yp = py;
            pool.For(w.OutFeatures, (start, end) =>
            {
                var row = new float[w.InFeatures];
                for (int r = start; r < end; r++)
                {
                    DecodeRow(w, r, row);
                    float s = 0;
                    for (int i = 0; i < row.Length; i++) s += row[i] * xp[i];
                    yp[r] = s + (w.Bias is null ? 0 : w.Bias[r]);
                }
            });
        }
    }

    /// <summary>Y[n, out] = X[n, in]·Wᵀ (+ bias), row by row.</summary>
    public static void Gemm(Linear w, ReadOnlySpan<float> x, Span<float> y, int n, WorkerPool pool)
    {
        for (int t = 0; t < n; t++)
            MatVec(w, x.Slice(t * w.InFeatures, w.InFeatures), y.Slice(t * w.OutFeatures, w.OutFeatures), pool);
    }

    /// <summary>Decodes row r of W into float32, FP8 block scales applied.</summary>
    public static void DecodeRow(Linear w, int r, Span<float> dst)
    {
        var src = new ReadOnlySpan<byte>(w.Row(r), checked((int)w.RowBytes));
        Quantization.Dequantize(w.Type, src, dst[..w.InFeatures]);
        if (w.ScaleInv != null)
        {
            float* srow = w.ScaleInv + (r / w.ScaleBlockRows) * w.ScaleColumns;
            for (int i = 0; i < w.InFeatures; i++) dst[i] *= srow[i / w.ScaleBlockCols];
        }
    }
}
