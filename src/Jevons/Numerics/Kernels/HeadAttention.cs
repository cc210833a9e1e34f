using System.Runtime.Intrinsics;
using Jevons.Numerics.Simd;

namespace Jevons.Numerics.Kernels;

/// <summary>
/// The two inner loops of one attention head over a run of cached positions whose rows lie at a fixed stride
/// (one block of a paged cache): scores s[j] = scale · q·k[j], and o += Σ p[j] · v[j]. Keys and values are read in
/// their stored type (F32, F16, BF16) straight from the cache, without a float copy. Scores take four keys per pass
/// (four accumulators over the head dimension); the weighted sum keeps up to four vectors of o in registers across
/// all positions. A row's result depends only on its own inputs and the path, never on how many rows share a call,
/// so prefill, decode and batched steps give the same bits for the same row.
/// </summary>
internal static unsafe class HeadAttention
{
    /// <summary>s[j] = scale · Σ_d q[d] · k[j·stride + d] for j in [0, n), k in <typeparamref name="TLoad"/>'s type.</summary>
    public static void Scores<TLoad>(float* q, byte* k, int strideElements, int n, int hd, float scale, float* s, KernelPath path)
        where TLoad : IElementLoader
    {
        switch (path)
        {
            case KernelPath.V512: Scores<Vec512, TLoad>(q, k, strideElements, n, hd, scale, s); break;
            case KernelPath.V256: Scores<Vec256, TLoad>(q, k, strideElements, n, hd, scale, s); break;
            case KernelPath.V128: Scores<Vec128, TLoad>(q, k, strideElements, n, hd, scale, s); break;
            default: ScoresScalar<TLoad>(q, k, strideElements, n, hd, scale, s); break;
        }
    }

    /// <summary>o[d] += Σ_j p[j] · v[j·stride + d] for j in [0, n).</summary>
    public static void Accumulate<TLoad>(float* p, byte* v, int strideElements, int n, int hd, float* o, KernelPath path)
        where TLoad : IElementLoader
    {
        switch (path)
        {
            case KernelPath.V512: Accumulate<Vec512, TLoad>(p, v, strideElements, n, hd, o); break;
            case KernelPath.V256: Accumulate<Vec256, TLoad>(p, v, strideElements, n, hd, o); break;
            case KernelPath.V128: Accumulate<Vec128, TLoad>(p, v, strideElements, n, hd, o); break;
            default: AccumulateScalar<TLoad>(p, v, strideElements, n, hd, o); break;
        }
    }

    internal static void ScoresScalar<TLoad>(float* q, byte* k, int stride, int n, int hd, float scale, float* s) where TLoad : IElementLoader
    {
        for (int j = 0; j < n; j++)
        {
            int row = j * stride;
            float dot = 0;
            for (int d = 0; d < hd; d++) dot += q[d] * TLoad.LoadScalar(k, row + d);
            s[j] = dot * scale;
        }
    }

    internal static void AccumulateScalar<TLoad>(float* p, byte* v, int stride, int n, int hd, float* o) where TLoad : IElementLoader
    {
        for (int j = 0; j < n; j++)
        {
            int row = j * stride;
            float w = p[j];
            for (int d = 0; d < hd; d++) o[d] += w * TLoad.LoadScalar(v, row + d);
        }
    }

    static void Scores<V, TLoad>(float* q, byte* k, int stride, int n, int hd, float scale, float* s)
        where V : struct, IVec<V> where TLoad : IElementLoader
    {
        int c = V.Count, full = hd - hd % c, j = 0;
        for (; j <= n - 8; j += 8) // eight keys: eight independent FMA chains hide the FMA latency
        {
            int r0 = j * stride;
            V a0 = V.Zero, a1 = V.Zero, a2 = V.Zero, a3 = V.Zero, a4 = V.Zero, a5 = V.Zero, a6 = V.Zero, a7 = V.Zero;
            for (int d = 0; d < full; d += c)
            {
                var qv = V.Load(q + d);
                int r = r0 + d;
                a0 = V.Fma(TLoad.Load<V>(k, r), qv, a0);
                a1 = V.Fma(TLoad.Load<V>(k, r + stride), qv, a1);
                a2 = V.Fma(TLoad.Load<V>(k, r + 2 * stride), qv, a2);
                a3 = V.Fma(TLoad.Load<V>(k, r + 3 * stride), qv, a3);
                a4 = V.Fma(TLoad.Load<V>(k, r + 4 * stride), qv, a4);
                a5 = V.Fma(TLoad.Load<V>(k, r + 5 * stride), qv, a5);
                a6 = V.Fma(TLoad.Load<V>(k, r + 6 * stride), qv, a6);
                a7 = V.Fma(TLoad.Load<V>(k, r + 7 * stride), qv, a7);
            }
            var lo = V.Sum4(a0, a1, a2, a3);
            var hi = V.Sum4(a4, a5, a6, a7);
            if (full < hd)
            {
                lo += TailDots<TLoad>(q, k, r0, stride, full, hd);
                hi += TailDots<TLoad>(q, k, r0 + 4 * stride, stride, full, hd);
            }
            (lo * scale).Store(s + j);
            (hi * scale).Store(s + j + 4);
        }
        for (; j <= n - 4; j += 4)
        {
            int r0 = j * stride;
            V a0 = V.Zero, a1 = V.Zero, a2 = V.Zero, a3 = V.Zero;
            for (int d = 0; d < full; d += c)
            {
                var qv = V.Load(q + d);
                int r = r0 + d;
                a0 = V.Fma(TLoad.Load<V>(k, r), qv, a0);
                a1 = V.Fma(TLoad.Load<V>(k, r + stride), qv, a1);
                a2 = V.Fma(TLoad.Load<V>(k, r + 2 * stride), qv, a2);
                a3 = V.Fma(TLoad.Load<V>(k, r + 3 * stride), qv, a3);
            }
            var sums = V.Sum4(a0, a1, a2, a3);
            if (full < hd) sums += TailDots<TLoad>(q, k, r0, stride, full, hd);
            (sums * scale).Store(s + j);
        }
        for (; j < n; j++)
        {
            int r = j * stride;
            V a = V.Zero;
            for (int d = 0; d < full; d += c) a = V.Fma(TLoad.Load<V>(k, r + d), V.Load(q + d), a);
            float sum = V.Sum(a);
            for (int d = full; d < hd; d++) sum += q[d] * TLoad.LoadScalar(k, r + d);
            s[j] = sum * scale;
        }
    }

    /// <summary>The dots of q[from..hd) with four rows' [from..hd) (the part past the last whole vector).</summary>
    static Vector128<float> TailDots<TLoad>(float* q, byte* k, int r0, int stride, int from, int hd) where TLoad : IElementLoader
    {
        float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        for (int d = from; d < hd; d++)
        {
            t0 += q[d] * TLoad.LoadScalar(k, r0 + d);
            t1 += q[d] * TLoad.LoadScalar(k, r0 + stride + d);
            t2 += q[d] * TLoad.LoadScalar(k, r0 + 2 * stride + d);
            t3 += q[d] * TLoad.LoadScalar(k, r0 + 3 * stride + d);
        }
        return Vector128.Create(t0, t1, t2, t3);
    }

    static void Accumulate<V, TLoad>(float* p, byte* v, int stride, int n, int hd, float* o)
        where V : struct, IVec<V> where TLoad : IElementLoader
    {
        int c = V.Count, d = 0;
        for (; d <= hd - 4 * c; d += 4 * c) // four vectors of o, two positions per pass into two sets (eight FMA chains)
        {
            V o0 = V.Load(o + d), o1 = V.Load(o + d + c), o2 = V.Load(o + d + 2 * c), o3 = V.Load(o + d + 3 * c);
            V e0 = V.Zero, e1 = V.Zero, e2 = V.Zero, e3 = V.Zero;
            int j = 0;
            for (; j <= n - 2; j += 2)
            {
                var w = V.Splat(p[j]);
                var x = V.Splat(p[j + 1]);
                int r = j * stride + d, rx = r + stride;
                o0 = V.Fma(TLoad.Load<V>(v, r), w, o0);
                o1 = V.Fma(TLoad.Load<V>(v, r + c), w, o1);
                o2 = V.Fma(TLoad.Load<V>(v, r + 2 * c), w, o2);
                o3 = V.Fma(TLoad.Load<V>(v, r + 3 * c), w, o3);
                e0 = V.Fma(TLoad.Load<V>(v, rx), x, e0);
                e1 = V.Fma(TLoad.Load<V>(v, rx + c), x, e1);
                e2 = V.Fma(TLoad.Load<V>(v, rx + 2 * c), x, e2);
                e3 = V.Fma(TLoad.Load<V>(v, rx + 3 * c), x, e3);
            }
            if (j < n)
            {
                var w = V.Splat(p[j]);
                int r = j * stride + d;
                o0 = V.Fma(TLoad.Load<V>(v, r), w, o0);
                o1 = V.Fma(TLoad.Load<V>(v, r + c), w, o1);
                o2 = V.Fma(TLoad.Load<V>(v, r + 2 * c), w, o2);
                o3 = V.Fma(TLoad.Load<V>(v, r + 3 * c), w, o3);
            }
            V.Store(V.Add(o0, e0), o + d);
            V.Store(V.Add(o1, e1), o + d + c);
            V.Store(V.Add(o2, e2), o + d + 2 * c);
            V.Store(V.Add(o3, e3), o + d + 3 * c);
        }
        for (; d <= hd - c; d += c)
        {
            V o0 = V.Load(o + d);
            for (int j = 0; j < n; j++) o0 = V.Fma(TLoad.Load<V>(v, j * stride + d), V.Splat(p[j]), o0);
            V.Store(o0, o + d);
        }
        for (; d < hd; d++)
        {
            float acc = o[d];
            for (int j = 0; j < n; j++) acc += p[j] * TLoad.LoadScalar(v, j * stride + d);
            o[d] = acc;
        }
    }
}
