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
    public Tensor Rope(Tensor x, int sequence, int heads, int stride, int offset, float[] invFreq)
    {
        int rows = x.Rows, cols = x.Cols, half = invFreq.Length;
        if (heads * stride != cols || offset + 2 * half > stride)
            throw new ArgumentException($"Rope: {heads} heads of {stride} with rope at {offset}..{offset + 2 * half} do not fit {x}");
        var (cos, sin) = RopeTable(sequence, invFreq);
        var y = Result(x.Shape, zeroed: false, x);
        Array.Copy(x.Data, y.Data, x.Length);
        Rotate(y.Data, rows, sequence, heads, stride, offset, half, cos, sin, sign: 1);
        Record(y, () =>
        {
            var g = System.Buffers.ArrayPool<float>.Shared.Rent(x.Length);
            y.Gradient.CopyTo(g);
            Rotate(g, rows, sequence, heads, stride, offset, half, cos, sin, sign: -1);
            System.Numerics.Tensors.TensorPrimitives.Add(x.Gradient, g.AsSpan(0, x.Length), x.Gradient);
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

    static void Rotate(float[] data, int rows, int sequence, int heads, int stride, int offset, int half, float[] cos, float[] sin, int sign)
    {
        int cols = heads * stride;
        for (int r = 0; r < rows; r++)
        {
            int p = r % sequence;
            for (int h = 0; h < heads; h++)
            {
                int b = r * cols + h * stride + offset;
                for (int i = 0; i < half; i++)
                {
                    float c = cos[p * half + i], s = sign * sin[p * half + i];
                    float x0 = data[b + 2 * i], x1 = data[b + 2 * i + 1];
                    data[b + 2 * i] = x0 * c - x1 * s;
                    data[b + 2 * i + 1] = x0 * s + x1 * c;
                }
            }
        }
    }
}
