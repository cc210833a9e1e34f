using Jevons.Training.Autograd;

namespace Jevons.Training;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter): m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², θ −= lr·(m̂/(√v̂ + ε) + λ·θ)
/// with the decay λ·θ decoupled from the gradient and applied only to matrices (no decay on norms).
/// </summary>
public sealed class AdamW
{
    readonly Tensor[] _params;
    readonly bool[] _decay;

    public AdamW(IEnumerable<Tensor> parameters, float weightDecay, float beta1 = 0.9f, float beta2 = 0.95f, float epsilon = 1e-8f)
    {
        _params = parameters.ToArray();
        _decay = _params.Select(TinyDeepSeek.Decays).ToArray();
        M = _params.Select(p => new float[p.Length]).ToArray();
        V = _params.Select(p => new float[p.Length]).ToArray();
        WeightDecay = weightDecay;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
    }

    public float WeightDecay { get; }
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Epsilon { get; }
    /// <summary>Updates taken (bias corrections use it).</summary>
    public long Step { get; set; }
    /// <summary>First and second moments, one array per parameter in the constructor's order.</summary>
    public float[][] M { get; }
    public float[][] V { get; }
    public IReadOnlyList<Tensor> Parameters => _params;

    /// <summary>√Σ g² over every parameter (in order, in double).</summary>
    public double GradientNorm()
    {
        double s = 0;
        foreach (var p in _params)
            foreach (var g in p.Grad!) s += (double)g * g;
        return Math.Sqrt(s);
    }

    /// <summary>Scales all gradients so their global norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public double ClipGradients(double maxNorm)
    {
        double norm = GradientNorm();
        if (maxNorm > 0 && norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            foreach (var p in _params) System.Numerics.Tensors.TensorPrimitives.Multiply(p.Grad!, scale, p.Grad!);
        }
        return norm;
    }

    public void Update(float learningRate)
    {
        Step++;
        float c1 = 1f / (1f - MathF.Pow(Beta1, Step)), c2 = 1f / (1f - MathF.Pow(Beta2, Step));
        for (int k = 0; k < _params.Length; k++)
        {
            float[] w = _params[k].Data, g = _params[k].Grad!, m = M[k], v = V[k];
            float decay = _decay[k] ? learningRate * WeightDecay : 0f;
            for (int i = 0; i < w.Length; i++)
            {
                m[i] = Beta1 * m[i] + (1 - Beta1) * g[i];
                v[i] = Beta2 * v[i] + (1 - Beta2) * g[i] * g[i];
                w[i] -= learningRate * (m[i] * c1 / (MathF.Sqrt(v[i] * c2) + Epsilon)) + decay * w[i];
            }
        }
    }

    public void ZeroGradients()
    {
        foreach (var p in _params) p.ZeroGrad();
    }
}

/// <summary>Linear warmup to the peak, then a cosine down to the minimum at the last step.</summary>
public static class LearningRateSchedule
{
    public static float At(int step, int totalSteps, int warmupSteps, float peak, float minimum)
    {
        if (step < warmupSteps) return peak * (step + 1) / warmupSteps;
        if (totalSteps <= warmupSteps) return peak;
        double progress = Math.Min(1.0, (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps - 1));
        return (float)(minimum + 0.5 * (peak - minimum) * (1 + Math.Cos(Math.PI * progress)));
    }
}
