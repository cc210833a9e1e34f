using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>The attention head's inner loops (scores, weighted sum of values) against their scalar twins, on every path and cache type.</summary>
public unsafe class HeadAttentionTests
{
    public static IEnumerable<object[]> Paths() => TestData.VectorPathData();

    static readonly int[] Lengths = [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 127, 128, 129, 257];

    [Theory]
    [MemberData(nameof(Paths))]
    public void ScoresAndValuesMatchTheScalarTwinsForEveryLengthAndType(KernelPath path)
    {
        foreach (int hd in Lengths)
            foreach (int n in new[] { 0, 1, 3, 4, 5, 8, 9, 13, 16, 17 })
            {
                int stride = hd + 3; // rows of a block at a stride wider than the head (other heads between them)
                var q = TestData.Normal(hd, hd * 31 + n);
                var k = TestData.Normal(n * stride + 1, hd * 7 + n);
                var v = TestData.Normal(n * stride + 1, hd * 5 + n);
                var p = TestData.Uniform(n + 1, n + 11, 0f, 1f);
                var o0 = TestData.Normal(hd + 1, hd + 3);
                foreach (var type in new[] { "f32", "f16", "bf16" })
                {
                    string what = $"{path} {type} hd={hd} n={n}";
                    var (kb, vb) = (Encode(k, type), Encode(v, type));
                    var want = new float[n + 1];
                    var got = new float[n + 1];
                    var accWant = (float[])o0.Clone();
                    var accGot = (float[])o0.Clone();
                    fixed (float* pq = q, pw = want, pg = got, pp = p, aw = accWant, ag = accGot)
                    fixed (byte* pk = kb, pv = vb)
                    {
                        Run(type, path, pq, pk, pv, stride, n, hd, pw, pp, aw, scalar: true);
                        Run(type, path, pq, pk, pv, stride, n, hd, pg, pp, ag, scalar: false);
                    }
                    for (int j = 0; j < n; j++) TestData.Close(want[j], got[j], 1e-5 * (hd + 1), what + $" score {j}");
                    Assert.Equal(0f, got[n]); // nothing written past n
                    for (int d = 0; d < hd; d++) TestData.Close(accWant[d], accGot[d], 1e-5 * (n + 1), what + $" o[{d}]");
                    Assert.Equal(o0[hd], accGot[hd]); // nothing written past hd
                }
            }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void NonFiniteValuesPropagate(KernelPath path)
    {
        const int hd = 40, n = 9;
        var q = TestData.Normal(hd, 1);
        var k = TestData.Normal(n * hd, 2);
        var v = TestData.Normal(n * hd, 3);
        k[5 * hd + 33] = float.NaN;           // key 5 → score NaN
        k[2 * hd + 1] = float.PositiveInfinity; // key 2 → ±∞
        v[7 * hd + 39] = float.NegativeInfinity;
        var s = new float[n];
        var p = Enumerable.Repeat(0.5f, n).ToArray();
        var o = new float[hd];
        fixed (float* pq = q, pk = k, pv = v, ps = s, pp = p, po = o)
        {
            HeadAttention.Scores<F32Elements>(pq, (byte*)pk, hd, n, hd, 0.125f, ps, path);
            HeadAttention.Accumulate<F32Elements>(pp, (byte*)pv, hd, n, hd, po, path);
        }
        Assert.True(float.IsNaN(s[5]), $"{path}: NaN key gives a NaN score");
        Assert.True(float.IsInfinity(s[2]) || float.IsNaN(s[2]), $"{path}: infinite key gives a non-finite score");
        Assert.True(float.IsFinite(s[0]) && float.IsFinite(s[8]), $"{path}: finite keys stay finite");
        Assert.Equal(float.NegativeInfinity, o[39]);
        Assert.True(float.IsFinite(o[0]), $"{path}: other columns stay finite");
    }

    static byte[] Encode(float[] x, string type) => type switch
    {
        "f32" => x.SelectMany(BitConverter.GetBytes).ToArray(),
        "f16" => x.SelectMany(f => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)f))).ToArray(),
        _ => x.SelectMany(f => BitConverter.GetBytes(Quantization.FloatToBf16(f))).ToArray(),
    };

    static void Run(string type, KernelPath path, float* q, byte* k, byte* v, int stride, int n, int hd, float* s, float* p, float* o, bool scalar)
    {
        switch (type)
        {
            case "f32": Both<F32Elements>(); break;
            case "f16": Both<F16Elements>(); break;
            default: Both<Bf16Elements>(); break;
        }
        void Both<T>() where T : IElementLoader
        {
            if (scalar)
            {
                HeadAttention.ScoresScalar<T>(q, k, stride, n, hd, 0.3f, s);
                HeadAttention.AccumulateScalar<T>(p, v, stride, n, hd, o);
            }
            else
            {
                HeadAttention.Scores<T>(q, k, stride, n, hd, 0.3f, s, path);
                HeadAttention.Accumulate<T>(p, v, stride, n, hd, o, path);
            }
        }
    }
}
