using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Xunit;

namespace Jevons.Tests.Numerics;

/// <summary>Grouped products against one MatVec per (product, row of its set): every format it takes, every path, sets of 1..9 rows, with and without bias.</summary>
public unsafe class GroupedGemmTests
{
    public static IEnumerable<object[]> Types() =>
        new[] { DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1 }.Select(t => new object[] { t });

    [Theory]
    [MemberData(nameof(Types))]
    public void EveryProductHasTheBitsOfMatVecPerRow(DType type)
    {
        const int rowsA = 11, inA = 320, rowsB = 5, inB = 96;
        var xa = TestData.Normal(rowsA * inA, 1, 2f);
        var xb = TestData.Normal(rowsB * inB, 2);
        Array.Clear(xa, 3 * inA, inA);   // a row of zeros: zero activation scales
        xa[6 * inA + 5] = 1000f;          // and one with a single large value
        var rng = new Random(5);
        // products: sets of 1..9 rows of A in random order (repeats allowed), rows 13 (three tiles of 4 and one of 1)
        // or 8; two products read each set (as gate and up do); then two contiguous sets of B
        var products = new List<(TestWeight W, float[] X, int In, int[] Rows)>();
        for (int m = 1; m <= 9; m++)
        {
            var rows = Enumerable.Range(0, m).Select(_ => rng.Next(rowsA)).ToArray();
            // every other gate has a bias (q/k/v projections of Qwen2): added as MatMul adds it
            float[]? bias = m % 2 == 1 ? TestData.Normal(13, 300 + m) : null;
            products.Add((new TestWeight("g", type, 13, inA, 10 * m, bias: bias), xa, inA, rows));
            products.Add((new TestWeight("u", type, 8, inA, 10 * m + 1), xa, inA, rows));
        }
        products.Add((new TestWeight("d1", type, 13, inB, 200), xb, inB, [0]));
        products.Add((new TestWeight("d2", type, 13, inB, 201, bias: TestData.Normal(13, 400)), xb, inB, [1, 2, 3, 4]));

        foreach (var path in new[] { KernelPath.Scalar, KernelPath.V128, KernelPath.V256, KernelPath.V512 })
            foreach (int threads in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(threads, path);
                var grouped = new GroupedGemm();
                var outs = products.Select(p => new float[p.Rows.Length * (p.W.Linear.OutFeatures + 3) + 1]).ToArray();
                foreach (var o in outs) o.AsSpan().Fill(12345f);
                for (int round = 0; round < 2; round++) // the second round reuses the object's scratch
                {
                    fixed (float* pa = xa, pb = xb)
                    {
                        var pins = outs.Select(o => System.Runtime.InteropServices.GCHandle.Alloc(o, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
                        try
                        {
                            grouped.Clear();
                            int a = grouped.AddSource(pa, rowsA, inA), b = grouped.AddSource(pb, rowsB, inB);
                            int set = -1;
                            for (int i = 0; i < products.Count; i++)
                            {
                                var p = products[i];
                                if (p.X == xb) set = grouped.AddSet(b, p.Rows[0], p.Rows.Length);
                                else if (i % 2 == 0) set = grouped.AddSet(a, p.Rows);
                                grouped.AddProduct(p.W.Linear, set, (float*)pins[i].AddrOfPinnedObject(), p.W.Linear.OutFeatures + 3);
                            }
                            grouped.Run(pool);
                        }
                        finally { foreach (var h in pins) h.Free(); }
                    }
                }
                for (int i = 0; i < products.Count; i++)
                {
                    var p = products[i];
                    int outF = p.W.Linear.OutFeatures, stride = outF + 3;
                    var want = new float[outF];
                    for (int t = 0; t < p.Rows.Length; t++)
                    {
                        MatMul.MatVec(p.W.Linear, p.X.AsSpan(p.Rows[t] * p.In, p.In), want, pool);
                        for (int r = 0; r < outF; r++)
                            if (BitConverter.SingleToInt32Bits(want[r]) != BitConverter.SingleToInt32Bits(outs[i][t * stride + r]))
                                Assert.Fail($"{type} {path} t{threads} product {i} ({p.Rows.Length} rows): row {t} out {r}: grouped {outs[i][t * stride + r]:R} != MatVec {want[r]:R}");
                        for (int r = outF; r < stride && t * stride + r < outs[i].Length; r++)
                            Assert.Equal(12345f, outs[i][t * stride + r]); // the gaps of the stride stay untouched
                    }
                }
            }
        GC.KeepAlive(products);
    }

    [Fact]
    public void OnlyIntegerFormatsOf32ElementBlocksAreTaken()
    {
        Assert.True(GroupedGemm.Supports(new TestWeight("w", DType.Q8_0, 4, 64, 1).Linear));
        Assert.False(GroupedGemm.Supports(new TestWeight("w", DType.Q4_K, 4, 256, 1).Linear));
        Assert.False(GroupedGemm.Supports(new TestWeight("w", DType.F16, 4, 64, 1).Linear));
        var grouped = new GroupedGemm();
        int s = grouped.AddSource(null, 2, 64);
        Assert.Throws<ArgumentException>(() => grouped.AddSet(s, 1, 2));
        Assert.Throws<ArgumentException>(() => grouped.AddSet(s, [0, 2]));
        var f16 = new TestWeight("w", DType.F16, 4, 64, 1);
        Assert.Throws<JevonsException>(() => grouped.AddProduct(f16.Linear, grouped.AddSet(s, 0, 2), null, 4));
    }
}
