using Jevons.Numerics.Kernels;
using Jevons.Training;
using Jevons.Training.Autograd;
using Xunit;

namespace Jevons.Tests.Training;

/// <summary>
/// Central finite differences against the tape: L = Σ r ⊙ f(inputs) for a fixed random r (accumulated in
/// double), dL/dθ_i ≈ (L(θ_i + ε) − L(θ_i − ε)) / 2ε for every element of every input. The error is the
/// norm-wise relative one, ‖analytic − numeric‖ / ‖numeric‖, which float32 noise does not dominate at ε = 1e-2.
/// </summary>
static class GradCheck
{
    public static Tensor Random(TrainRandom rng, int[] shape, float scale = 1f, bool grad = true)
    {
        var t = new Tensor(shape, grad);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(rng.NextGaussian() * scale);
        return t;
    }

    /// <summary>The largest relative error over the inputs (each checked in full).</summary>
    public static double MaxRelativeError(Func<Tape, Tensor> f, Tensor[] inputs, float eps = 1e-2f, int threads = 1)
    {
        using var pool = new WorkerPool(threads);
        var tape = new Tape(pool);
        var y = f(tape);
        var rng = new TrainRandom(99);
        var r = new float[y.Length];
        for (int i = 0; i < r.Length; i++) r[i] = (float)rng.NextGaussian();
        foreach (var x in inputs) x.ZeroGrad();
        tape.Backward(y, r);

        tape.Recording = false;
        double L()
        {
            var o = f(tape);
            double s = 0;
            for (int i = 0; i < o.Length; i++) s += (double)r[i] * o.Data[i];
            return s;
        }
        double worst = 0;
        foreach (var x in inputs)
        {
            double diff = 0, norm = 0;
            for (int i = 0; i < x.Length; i++)
            {
                float keep = x.Data[i];
                x.Data[i] = keep + eps;
                double plus = L();
                x.Data[i] = keep - eps;
                double minus = L();
                x.Data[i] = keep;
                double numeric = (plus - minus) / (2 * eps);
                diff += Math.Pow(numeric - x.Grad![i], 2);
                norm += numeric * numeric;
            }
            Assert.True(norm > 0, $"input {x} has zero numeric gradient: the check would prove nothing");
            worst = Math.Max(worst, Math.Sqrt(diff / norm));
        }
        return worst;
    }
}
