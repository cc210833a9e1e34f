using Jevons.Numerics.Simd;
namespace Jevons.Numerics.Kernels;

/// <summary>
/// Element-wise and row operations of the transformer: norms, activations, softmax, RoPE. Each has a
/// scalar twin (…Scalar) that the vector paths are tested against; the overloads without a
/// <see cref="KernelPath"/> use <see cref="KernelDispatch.Default"/>.
/// </summary>
public static unsafe class Ops
{
    // ---- RMSNorm ----

    /// <summary>y = x / sqrt(mean(x²) + eps) · w. x and y may alias.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y) =>
        RmsNorm(x, w, eps, y, KernelDispatch.Default);

    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y, KernelPath path)
    {
        int n = x.Length;
        if (w.Length < n || y.Length < n) throw new ArgumentException($"RmsNorm: x {n}, w {w.Length}, y {y.Length}");
        if (n == 0) return;
        fixed (float* px = x, pw = w, py = y)
        {
            float ss = SumSquares(px, n, path);
            float scale = (float)(1.0 / Math.Sqrt(ss / (double)n + eps));
            ScaleMul(px, scale, pw, py, n, path);
        }
    }

    internal static void RmsNormScalar(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y)
    {
        double ss = 0;
        for (int i = 0; i < x.Length; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / Math.Sqrt(ss / x.Length + eps));
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * scale * w[i];
    }

    static float SumSquares(float* x, int n, KernelPath path) => path switch
    {
        KernelPath.V512 => SumSquares<Vec512>(x, n),
        KernelPath.V256 => SumSquares<Vec256>(x, n),
        KernelPath.V128 => SumSquares<Vec128>(x, n),
        _ => FloatDot.DotScalar<F32Elements>((byte*)x, x, n),
    };

    static float SumSquares<V>(float* x, int n) where V : struct, IVec<V> => FloatDot.Dot<V, F32Elements>((byte*)x, x, n);

    static void ScaleMul(float* x, float scale, float* w, float* y, int n, KernelPath path)
    {
        switch (path)
        {
            case KernelPath.V512: ScaleMul<Vec512>(x, scale, w, y, n); break;
            case KernelPath.V256: ScaleMul<Vec256>(x, scale, w, y, n); break;
            case KernelPath.V128: ScaleMul<Vec128>(x, scale, w, y, n); break;
            default: for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i]; break;
        }
    }

    static void ScaleMul<V>(float* x, float scale, float* w, float* y, int n) where V : struct, IVec<V>
    {
        int i = 0;
        var s = V.Splat(scale);
        for (; i <= n - V.Count; i += V.Count) V.Store(V.Mul(V.Mul(V.Load(x + i), s), V.Load(w + i)), y + i);
        for (; i < n; i++) y[i] = x[i] * scale * w[i];
    }

    // ---- Softmax ----

    /// <summary>In-place softmax.</summary>
    public static void Softmax(Span<float> x) => Softmax(x, KernelDispatch.Default);

    public static void Softmax(Span<float> x, KernelPath path)
    {
        int n = x.Length;
        if (n == 0) return;
        fixed (float* p = x)
        {
            switch (path)
            {
                case KernelPath.V512: Softmax<Vec512>(p, n); break;
                case KernelPath.V256: Softmax<Vec256>(p, n); break;
                case KernelPath.V128: Softmax<Vec128>(p, n); break;
                default: SoftmaxScalar(x); break;
            }
        }
    }

    internal static void SoftmaxScalar(Span<float> x)
    {
        if (x.Length == 0) return;
        float max = float.NegativeInfinity;
        foreach (var v in x) max = MathF.Max(max, v);
        float sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = 1 / sum;
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    static void Softmax<V>(float* x, int n) where V : struct, IVec<V>
    {
        int c = V.Count, i = 0;
        float max = float.NegativeInfinity;
        if (n >= c)
        {
            var m = V.Load(x);
            for (i = c; i <= n - c; i += c) m = V.Max(m, V.Load(x + i));
            max = V.MaxAcross(m);
        }
        for (; i < n; i++) max = MathF.Max(max, x[i]);
        var vmax = V.Splat(max);
        var acc = V.Zero;
        for (i = 0; i <= n - c; i += c)
        {
            var e = V.Exp(V.Sub(V.Load(x + i), vmax));
            V.Store(e, x + i);
            acc = V.Add(acc, e);
        }
        float sum = V.Sum(acc);
        for (; i < n; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = 1 / sum;
        var vinv = V.Splat(inv);
        for (i = 0; i <= n - c; i += c) V.Store(V.Mul(V.Load(x + i), vinv), x + i);
        for (; i < n; i++) x[i] *= inv;
    }

    // ---- SiLU / SwiGLU ----

    public static float Silu(float v) => v / (1 + MathF.Exp(-v));

    /// <summary>In-place x[i] = silu(x[i]).</summary>
    public static void Silu(Span<float> x) => Silu(x, KernelDispatch.Default);

    public static void Silu(Span<float> x, KernelPath path)
    {
        fixed (float* p = x)
            SwiGlu(p, null, x.Length, path);
    }

    /// <summary>gate[i] = silu(gate[i]) · up[i].</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up) => SwiGlu(gate, up, KernelDispatch.Default);

    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up, KernelPath path)
    {
        if (up.Length < gate.Length) throw new ArgumentException($"SwiGlu: gate {gate.Length}, up {up.Length}");
        fixed (float* g = gate, u = up)
            SwiGlu(g, u, gate.Length, path);
    }

    internal static void SwiGluScalar(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++) gate[i] = Silu(gate[i]) * up[i];
    }

    static void SwiGlu(float* g, float* u, int n, KernelPath path)
    {
        switch (path)
        {
            case KernelPath.V512: SwiGlu<Vec512>(g, u, n); break;
            case KernelPath.V256: SwiGlu<Vec256>(g, u, n); break;
            case KernelPath.V128: SwiGlu<Vec128>(g, u, n); break;
            default:
                for (int i = 0; i < n; i++) g[i] = u == null ? Silu(g[i]) : Silu(g[i]) * u[i];
                break;
        }
    }

    static void SwiGlu<V>(float* g, float* u, int n) where V : struct, IVec<V>
    {
        int i = 0;
        var one = V.Splat(1f);
        var zero = V.Zero;
        for (; i <= n - V.Count; i += V.Count)
        {
            var x = V.Load(g + i);
            var s = V.Div(x, V.Add(one, V.Exp(V.Sub(zero, x))));
            V.Store(u == null ? s : V.Mul(s, V.Load(u + i)), g + i);
        }
        for (; i < n; i++) g[i] = u == null ? Silu(g[i]) : Silu(g[i]) * u[i];
    }

    // ---- RoPE ----

    /// <summary>
    /// Rotates one head vector x[rotDims] in place at position pos. Interleaved pairs (x[2i], x[2i+1])
    /// or NeoX halves (x[i], x[i + d/2]), angle pos·invFreq[i], cos/sin multiplied by mscale.
    /// </summary>
    public static void Rope(Span<float> x, int pos, ReadOnlySpan<float> invFreq, bool neox, float mscale = 1f)
    {
        int half = invFreq.Length;
        if (x.Length < 2 * half) throw new ArgumentException($"Rope: x has {x.Length}, need {2 * half}");
        Span<float> cs = half <= 512 ? stackalloc float[2 * half] : new float[2 * half];
        RopeAngles(pos, invFreq, mscale, cs[..half], cs[half..]);
        RopeRotate(x, cs[..half], cs[half..], neox, KernelDispatch.Default);
    }

    /// <summary>cos/sin of pos·invFreq[i] (computed in double), times mscale.</summary>
    public static void RopeAngles(int pos, ReadOnlySpan<float> invFreq, float mscale, Span<float> cos, Span<float> sin)
    {
        for (int i = 0; i < invFreq.Length; i++)
        {
            double angle = pos * (double)invFreq[i];
            cos[i] = (float)Math.Cos(angle) * mscale;
            sin[i] = (float)Math.Sin(angle) * mscale;
        }
    }

    /// <summary>Rotates x by precomputed cos/sin (length d/2 each): interleaved or NeoX pairs.</summary>
    public static void RopeRotate(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool neox, KernelPath path)
    {
        int half = cos.Length;
        if (sin.Length < half || x.Length < 2 * half) throw new ArgumentException($"RopeRotate: x {x.Length}, cos {cos.Length}, sin {sin.Length}");
        if (!neox || path == KernelPath.Scalar)
        {
            RopeRotateScalar(x, cos, sin, neox);
            return;
        }
        fixed (float* px = x, pc = cos, ps = sin)
        {
            switch (path)
            {
                case KernelPath.V512: RopeNeox<Vec512>(px, pc, ps, half); break;
                case KernelPath.V256: RopeNeox<Vec256>(px, pc, ps, half); break;
                default: RopeNeox<Vec128>(px, pc, ps, half); break;
            }
        }
    }

    internal static void RopeRotateScalar(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool neox)
    {
        int half = cos.Length;
        for (int i = 0; i < half; i++)
        {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * cos[i] - x1 * sin[i];
            x[b] = x0 * sin[i] + x1 * cos[i];
        }
    }

    static void RopeNeox<V>(float* x, float* cos, float* sin, int half) where V : struct, IVec<V>
    {
        int i = 0;
        float* y = x + half;
        for (; i <= half - V.Count; i += V.Count)
        {
            V x0 = V.Load(x + i), x1 = V.Load(y + i), c = V.Load(cos + i), s = V.Load(sin + i);
            V.Store(V.Sub(V.Mul(x0, c), V.Mul(x1, s)), x + i);
            V.Store(V.Add(V.Mul(x0, s), V.Mul(x1, c)), y + i);
        }
        for (; i < half; i++)
        {
            float x0 = x[i], x1 = y[i];
            x[i] = x0 * cos[i] - x1 * sin[i];
            y[i] = x0 * sin[i] + x1 * cos[i];
        }
    }

    // ---- Dot / Axpy ----

    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => Dot(a, b, KernelDispatch.Default);

    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b, KernelPath path)
    {
        if (b.Length < a.Length) throw new ArgumentException($"Dot: a {a.Length}, b {b.Length}");
        fixed (float* pa = a, pb = b)
            return FloatDot.Dot<F32Elements>((byte*)pa, pb, a.Length, path);
    }

    /// <summary>y += a·x.</summary>
    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y) => Axpy(a, x, y, KernelDispatch.Default);

    public static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y, KernelPath path)
    {
        int n = y.Length;
        if (x.Length < n) throw new ArgumentException($"Axpy: x {x.Length}, y {n}");
        fixed (float* px = x, py = y)
        {
            switch (path)
            {
                case KernelPath.V512: Axpy<Vec512>(a, px, py, n); break;
                case KernelPath.V256: Axpy<Vec256>(a, px, py, n); break;
                case KernelPath.V128: Axpy<Vec128>(a, px, py, n); break;
                default: for (int i = 0; i < n; i++) py[i] += a * px[i]; break;
            }
        }
    }

    static void Axpy<V>(float a, float* x, float* y, int n) where V : struct, IVec<V>
    {
        int i = 0;
        var va = V.Splat(a);
        for (; i <= n - V.Count; i += V.Count) V.Store(V.Add(V.Load(y + i), V.Mul(va, V.Load(x + i))), y + i);
        for (; i < n; i++) y[i] += a * x[i];
    }
}
