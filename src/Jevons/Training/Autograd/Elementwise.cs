using System.Numerics.Tensors;

namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>a + b (same shapes). Backward: da += dy, db += dy.</summary>
    public Tensor Add(Tensor a, Tensor b)
    {
        SameLength(a, b, "Add");
        var y = Result(a.Shape, zeroed: false, a, b);
        SpreadChunks(a.Length, 3, (i0, i1) => TensorPrimitives.Add(a.Data.AsSpan(i0..i1), b.Data.AsSpan(i0..i1), y.Data.AsSpan(i0..i1)));
        Record(y, () => SpreadChunks(a.Length, 6, (i0, i1) =>
        {
            var dy = y.Grad.AsSpan(i0..i1);
            if (a.Grad is not null) TensorPrimitives.Add(a.Grad.AsSpan(i0..i1), dy, a.Grad.AsSpan(i0..i1));
            if (b.Grad is not null) TensorPrimitives.Add(b.Grad.AsSpan(i0..i1), dy, b.Grad.AsSpan(i0..i1));
        }));
        return y;
    }

    /// <summary>a ⊙ b (same shapes). Backward: da += dy ⊙ b, db += dy ⊙ a.</summary>
    public Tensor Mul(Tensor a, Tensor b)
    {
        SameLength(a, b, "Mul");
        var y = Result(a.Shape, zeroed: false, a, b);
        SpreadChunks(a.Length, 3, (i0, i1) => TensorPrimitives.Multiply(a.Data.AsSpan(i0..i1), b.Data.AsSpan(i0..i1), y.Data.AsSpan(i0..i1)));
        Record(y, () => SpreadChunks(a.Length, 8, (i0, i1) =>
        {
            var dy = y.Grad.AsSpan(i0..i1);
            if (a.Grad is not null) TensorPrimitives.MultiplyAdd(dy, b.Data.AsSpan(i0..i1), a.Grad.AsSpan(i0..i1), a.Grad.AsSpan(i0..i1));
            if (b.Grad is not null) TensorPrimitives.MultiplyAdd(dy, a.Data.AsSpan(i0..i1), b.Grad.AsSpan(i0..i1), b.Grad.AsSpan(i0..i1));
        }));
        return y;
    }

    /// <summary>s·a. Backward: da += s·dy.</summary>
    public Tensor Scale(Tensor a, float s)
    {
        var y = Result(a.Shape, zeroed: false, a);
        SpreadChunks(a.Length, 2, (i0, i1) => TensorPrimitives.Multiply(a.Data.AsSpan(i0..i1), s, y.Data.AsSpan(i0..i1)));
        Record(y, () => SpreadChunks(a.Length, 3, (i0, i1) =>
            TensorPrimitives.MultiplyAdd(y.Grad.AsSpan(i0..i1), s, a.Grad.AsSpan(i0..i1), a.Grad.AsSpan(i0..i1))));
        return y;
    }

    /// <summary>Columns [start, start + width) of x [rows, cols] as a new [rows, width] tensor.</summary>
    public Tensor Columns(Tensor x, int start, int width)
    {
        int rows = x.Rows, cols = x.Cols;
        if (start < 0 || width <= 0 || start + width > cols) throw new ArgumentOutOfRangeException(nameof(start));
        var y = Result([.. x.Shape[..^1], width], zeroed: false, x);
        Spread(rows, (long)rows * width * 2, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) x.Data.AsSpan(r * cols + start, width).CopyTo(y.Data.AsSpan(r * width, width));
        });
        Record(y, () => Spread(rows, (long)rows * width * 3, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var g = x.Grad.AsSpan(r * cols + start, width);
                TensorPrimitives.Add(g, y.Grad.AsSpan(r * width, width), g);
            }
        }));
        return y;
    }

    /// <summary>[a | b] along the last dimension: [rows, ca + cb].</summary>
    public Tensor Concat(Tensor a, Tensor b)
    {
        int rows = a.Rows, ca = a.Cols, cb = b.Cols, c = ca + cb;
        if (b.Rows != rows) throw new ArgumentException($"Concat: {a} and {b} differ in rows");
        var y = Result([.. a.Shape[..^1], c], zeroed: false, a, b);
        Spread(rows, (long)rows * c * 2, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                a.Data.AsSpan(r * ca, ca).CopyTo(y.Data.AsSpan(r * c, ca));
                b.Data.AsSpan(r * cb, cb).CopyTo(y.Data.AsSpan(r * c + ca, cb));
            }
        });
        Record(y, () => Spread(rows, (long)rows * c * 3, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                if (a.Grad is not null) TensorPrimitives.Add(a.Grad.AsSpan(r * ca, ca), y.Grad.AsSpan(r * c, ca), a.Grad.AsSpan(r * ca, ca));
                if (b.Grad is not null) TensorPrimitives.Add(b.Grad.AsSpan(r * cb, cb), y.Grad.AsSpan(r * c + ca, cb), b.Grad.AsSpan(r * cb, cb));
            }
        }));
        return y;
    }

    /// <summary>x [rows, cols] + bias [cols] on every row (Qwen2's q/k/v biases). Backward: dx += dy, dbias += Σ_rows dy (in row order).</summary>
    public Tensor AddBias(Tensor x, Tensor bias)
    {
        int rows = x.Rows, cols = x.Cols;
        if (bias.Length != cols) throw new ArgumentException($"AddBias: bias {bias} does not fit the {cols} columns of {x}");
        var y = Result(x.Shape, zeroed: false, x, bias);
        Spread(rows, (long)rows * cols * 3, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) TensorPrimitives.Add(x.Data.AsSpan(r * cols, cols), bias.Data, y.Data.AsSpan(r * cols, cols));
        });
        Record(y, () =>
        {
            if (x.Grad is not null) SpreadChunks(x.Length, 3, (i0, i1) => TensorPrimitives.Add(x.Grad.AsSpan(i0..i1), y.Grad.AsSpan(i0..i1), x.Grad.AsSpan(i0..i1)));
            if (bias.Grad is not null)
                for (int r = 0; r < rows; r++) TensorPrimitives.Add(bias.Grad, y.Grad.AsSpan(r * cols, cols), bias.Grad);
        });
        return y;
    }

    /// <summary>
    /// y[r, j] = x[r, columns[j]]: any selection, order or repetition of x's columns (GQA's key/value heads
    /// shared by groups of query heads). Backward: dx[r, columns[j]] += dy[r, j].
    /// </summary>
    public Tensor GatherColumns(Tensor x, int[] columns)
    {
        int rows = x.Rows, cols = x.Cols, width = columns.Length;
        if (width == 0 || columns.Any(c => (uint)c >= (uint)cols)) throw new ArgumentOutOfRangeException(nameof(columns), $"GatherColumns: a column outside the {cols} of {x}");
        var y = Result([.. x.Shape[..^1], width], zeroed: false, x);
        Spread(rows, (long)rows * width * 2, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
                for (int j = 0; j < width; j++) y.Data[r * width + j] = x.Data[r * cols + columns[j]];
        });
        Record(y, () => Spread(rows, (long)rows * width * 3, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
                for (int j = 0; j < width; j++) x.Grad[r * cols + columns[j]] += y.Grad[r * width + j];
        }));
        return y;
    }

    static void SameLength(Tensor a, Tensor b, string op)
    {
        if (a.Length != b.Length) throw new ArgumentException($"{op}: {a} and {b} differ in size");
    }
}
