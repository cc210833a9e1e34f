namespace Jevons.Training.Autograd;

public sealed partial class Tape
{
    /// <summary>
    /// Rotary embedding with interleaved pairs (x[2i], x[2i+1]) — DeepSeek MLA's form (the engine's
    /// Ops.Rope with neox: false) — on the rope part of every head: x [rows, heads·stride], row r at position
    /// r mod <paramref name="sequence"/>, columns [h·stride + offset, + 2·invFreq.Length) rotated by
    /// pos·invFreq[i]. MLA uses it twice: on q_pe (per head) and on the shared k_pe (heads = 1).
    /// Backward rotates the gradient by −angle.
    /// </summary>
    public Tensor Rope(Tensor x, int sequence, int heads, int stride, int offset, float[] invFreq) =>
        Rope(x, sequence, heads, stride, offset, invFreq, neox: false);

    /// <summary>
    /// Rotary embedding with interleaved pairs, or with <paramref name="neox"/> the split-half pairs (x[i], x[i + half])
    /// of Llama / Qwen2 (HF rotate_half; the engine's Ops.Rope with neox: true).
    /// </summary>
    public Tensor Rope(Tensor x, int sequence, int heads, int stride, int offset, float[] invFreq, bool neox)
    {
        int rows = x.Rows, cols = x.Cols, half = invFreq.Length;
        if (heads * stride != cols || offset + 2 * half > stride)
            throw new ArgumentException($"Rope: {heads} heads of {stride} with rope at {offset}..{offset + 2 * half} do not fit {x}");
        var (cos, sin) = RopeTable(sequence, invFreq);
        var y = Result(x.Shape, zeroed: false, x);
        Spread(rows, (long)rows * cols * 2, (r0, r1) =>
        {
            x.Data.AsSpan(r0 * cols, (r1 - r0) * cols).CopyTo(y.Data.AsSpan(r0 * cols));
            Rotate(y.Data, r0, r1, sequence, heads, stride, offset, half, cos, sin, sign: 1, neox);
        });
        Record(y, () =>
        {
            var g = System.Buffers.ArrayPool<float>.Shared.Rent(x.Length);
            Spread(rows, (long)rows * cols * 3, (r0, r1) =>
            {
                y.Grad.AsSpan(r0 * cols, (r1 - r0) * cols).CopyTo(g.AsSpan(r0 * cols));
                Rotate(g, r0, r1, sequence, heads, stride, offset, half, cos, sin, sign: -1, neox);
                var dx = x.Grad.AsSpan(r0 * cols, (r1 - r0) * cols);
                System.Numerics.Tensors.TensorPrimitives.Add(dx, g.AsSpan(r0 * cols, (r1 - r0) * cols), dx);
            });
            System.Buffers.ArrayPool<float>.Shared.Return(g);
        });
        return y;
    }

    /// <summary>cos/sin [position, pair] computed as the engine does (angle in double, then float).</summary>
    static (float[] Cos, float[] Sin) RopeTable(int sequence, float[] invFreq)
    {
        int half = invFreq.Length;
        var cos = new float[sequence * half];
        var sin = new float[sequence * half];
        for (int p = 0; p < sequence; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = p * (double)invFreq[i];
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        return (cos, sin);
    }

    /// <summary>Rotates rows r0..r1 of data in place.</summary>
    static void Rotate(float[] data, int r0, int r1, int sequence, int heads, int stride, int offset, int half, float[] cos, float[] sin, int sign, bool neox)
    {
        // Pair i is (b + 2i, b + 2i + 1) interleaved, (b + i, b + half + i) split-half.
        int step = neox ? 1 : 2, partner = neox ? half : 1;
        int cols = heads * stride;
        for (int r = r0; r < r1; r++)
        {
            int p = r % sequence;
            for (int h = 0; h < heads; h++)
            {
                int b = r * cols + h * stride + offset;
                for (int i = 0; i < half; i++)
                {
                    float c = cos[p * half + i], s = sign * sin[p * half + i];
                    int i0 = b + step * i, i1 = i0 + partner;
                    float x0 = data[i0], x1 = data[i1];
                    data[i0] = x0 * c - x1 * s;
                    data[i1] = x0 * s + x1 * c;
                }
            }
        }
    }
}
