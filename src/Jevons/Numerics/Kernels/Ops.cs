namespace Jevons.Numerics.Kernels;

/// <summary>Element-wise and row operations of the transformer: norms, activations, softmax, RoPE.</summary>
public static class Ops
{
    /// <summary>y = x / sqrt(mean(x²) + eps) · w. x and y may alias.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y)
    {
        double ss = 0;
        for (int i = 0; i < x.Length; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / Math.Sqrt(ss / x.Length + eps));
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * scale * w[i];
    }

    /// <summary>In-place softmax.</summary>
    public static void Softmax(Span<float> x)
    {
        if (x.Length == 0) return;
        float max = float.NegativeInfinity;
        foreach (var v in x) max = MathF.Max(max, v);
        float sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = 1 / sum;
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    public static float Silu(float v) => v / (1 + MathF.Exp(-v));

    /// <summary>gate[i] = silu(gate[i]) · up[i].</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++) gate[i] = Silu(gate[i]) * up[i];
    }

    /// <summary>
    /// Rotates one head vector x[rotDims] in place at position pos. Interleaved pairs (x[2i], x[2i+1])
    /// or NeoX halves (x[i], x[i + d/2]), angle pos·invFreq[i], cos/sin multiplied by mscale.
    /// </summary>
    public static void Rope(Span<float> x, int pos, ReadOnlySpan<float> invFreq, bool neox, float mscale = 1f)
    {
        int half = invFreq.Length;
        for (int i = 0; i < half; i++)
        {
            double angle = pos * (double)invFreq[i];
            float c = (float)Math.Cos(angle) * mscale, s = (float)Math.Sin(angle) * mscale;
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }

    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        System.Numerics.Tensors.TensorPrimitives.Dot(a, b);

    /// <summary>y += a·x.</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] += a * x[i];
    }
}
