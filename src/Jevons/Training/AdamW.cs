using System.Numerics;
using System.Runtime.InteropServices;
using Jevons.Numerics.Kernels;
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
    readonly WorkerPool? _pool;
    /// <summary>The parameters cut into blocks of at most <see cref="BlockSize"/> values: the unit of work and of the norm's partial sums.</summary>
    readonly (int Param, int Start, int Length)[] _blocks;
    readonly double[] _partial;

    /// <summary>Values per block (measured: large enough that a pool round trip is noise, small enough to balance two cores).</summary>
    const int BlockSize = 1 << 16;

    /// <param name="pool">Threads for the update, the clip and the norm (null: the caller's thread); the bits do not depend on it.</param>
    public AdamW(IEnumerable<Tensor> parameters, float weightDecay, float beta1 = 0.9f, float beta2 = 0.95f, float epsilon = 1e-8f,
        WorkerPool? pool = null)
    {
        _params = parameters.ToArray();
        _decay = _params.Select(TinyDeepSeek.Decays).ToArray();
        M = _params.Select(p => new float[p.Length]).ToArray();
        V = _params.Select(p => new float[p.Length]).ToArray();
        WeightDecay = weightDecay;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        _pool = pool;
        var blocks = new List<(int, int, int)>();
        for (int k = 0; k < _params.Length; k++)
            for (int i = 0; i < _params[k].Length; i += BlockSize) blocks.Add((k, i, Math.Min(BlockSize, _params[k].Length - i)));
        _blocks = blocks.ToArray();
        _partial = new double[_blocks.Length];
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

    /// <summary>body(block) for every block, spread over the pool.</summary>
    void ForBlocks(Action<int> body)
    {
        if (_pool is null || _pool.Threads == 1) for (int b = 0; b < _blocks.Length; b++) body(b);
        else _pool.For(_blocks.Length, (b0, b1) => { for (int b = b0; b < b1; b++) body(b); });
    }

    Span<float> Gradient(int block)
    {
        var (k, start, length) = _blocks[block];
        return _params[k].Grad.AsSpan(start, length);
    }

    /// <summary>√Σ g² over every parameter, in double: per block in order, then the blocks in order (a fixed partition).</summary>
    public double GradientNorm()
    {
        ForBlocks(b =>
        {
            double s = 0;
            foreach (var g in Gradient(b)) s += (double)g * g;
            _partial[b] = s;
        });
        double total = 0;
        foreach (var s in _partial) total += s;
        return Math.Sqrt(total);
    }

    /// <summary>Scales all gradients so their global norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public double ClipGradients(double maxNorm)
    {
        double norm = GradientNorm();
        if (maxNorm > 0 && norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            ForBlocks(b => System.Numerics.Tensors.TensorPrimitives.Multiply(Gradient(b), scale, Gradient(b)));
        }
        return norm;
    }

    public void Update(float learningRate)
    {
        Step++;
        float c1 = 1f / (1f - MathF.Pow(Beta1, Step)), c2 = 1f / (1f - MathF.Pow(Beta2, Step));
        ForBlocks(b =>
        {
            var (k, start, length) = _blocks[b];
            var w = _params[k].Data.AsSpan(start, length);
            var g = _params[k].Grad.AsSpan(start, length);
            var m = M[k].AsSpan(start, length);
            var v = V[k].AsSpan(start, length);
            Update(w, g, m, v, learningRate, _decay[k] ? learningRate * WeightDecay : 0f, c1, c2);
        });
    }

    /// <summary>
    /// One block's update, in vectors and then scalars with the same operations in the same order (no fused
    /// multiply-adds), so every element gets the same bits on any vector width.
    /// </summary>
    void Update(Span<float> w, Span<float> g, Span<float> m, Span<float> v, float lr, float decay, float c1, float c2)
    {
        float b1 = Beta1, b2 = Beta2, eps = Epsilon, a1 = 1 - Beta1, a2 = 1 - Beta2;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vw = MemoryMarshal.Cast<float, Vector<float>>(w);
            var vg = MemoryMarshal.Cast<float, Vector<float>>(g);
            var vm = MemoryMarshal.Cast<float, Vector<float>>(m);
            var vv = MemoryMarshal.Cast<float, Vector<float>>(v);
            for (int j = 0; j < vw.Length; j++)
            {
                var gj = vg[j];
                var mj = b1 * vm[j] + a1 * gj;
                var vj = b2 * vv[j] + a2 * gj * gj;
                vm[j] = mj;
                vv[j] = vj;
                vw[j] -= lr * (mj * c1 / (Vector.SquareRoot(vj * c2) + new Vector<float>(eps))) + decay * vw[j];
            }
            i = vw.Length * Vector<float>.Count;
        }
        for (; i < w.Length; i++)
        {
            m[i] = b1 * m[i] + a1 * g[i];
            v[i] = b2 * v[i] + a2 * g[i] * g[i];
            w[i] -= lr * (m[i] * c1 / (MathF.Sqrt(v[i] * c2) + eps)) + decay * w[i];
        }
    }

    public void ZeroGradients() => ForBlocks(b => Gradient(b).Clear());
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
