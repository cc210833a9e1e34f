using Jevons.Models.Blocks;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;
using Jevons.Tests.Numerics;
using Xunit;

namespace Jevons.Tests.Models;

/// <summary>The grouped MoE step (all experts in two loops) against three Gemms per expert, on a small random layer.</summary>
public class MoeTests
{
    const int Hidden = 128, Width = 96, SharedWidth = 192, Experts = 8, TopK = 3;

    /// <summary>A layer whose weights live as long as <paramref name="keep"/> (the Linears only point at them).</summary>
    static Moe Layer(DType type, bool shared, bool grouped, int seed, List<TestWeight> keep)
    {
        Linear W(string name, DType t, int outF, int inF, int s, float scale = 0.5f)
        {
            var w = new TestWeight(name, t, outF, inF, s, scale);
            keep.Add(w);
            return w.Linear;
        }
        var router = new Router(W("router", DType.F32, Experts, Hidden, seed, 2f), null, TopK, 1, 1, ScoringFunction.Softmax, TopkMethod.Greedy, false, 1f);
        FeedForward Ffn(int width, int s) => new(W("gate", type, width, Hidden, s), W("up", type, width, Hidden, s + 1), W("down", type, Hidden, width, s + 2));
        var experts = Enumerable.Range(0, Experts).Select(e => Ffn(Width, seed + 10 * (e + 1))).ToArray();
        return new Moe(router, experts, shared ? Ffn(SharedWidth, seed + 1000) : null) { GroupExperts = grouped };
    }

    [Theory]
    [InlineData(DType.Q8_0, true)]
    [InlineData(DType.Q8_0, false)]
    [InlineData(DType.Q4_0, true)]
    [InlineData(DType.Q5_1, true)]
    public void GroupedStepHasTheBitsOfThePerExpertPath(DType type, bool shared)
    {
        var keep = new List<TestWeight>();
        var grouped = Layer(type, shared, true, 7, keep);
        var reference = Layer(type, shared, false, 7, keep);
        var x = TestData.Normal(17 * Hidden, 3);
        foreach (var path in new[] { KernelPath.Scalar, KernelPath.V128, KernelPath.V256, KernelPath.V512 })
        {
            using var pool = new WorkerPool(2, path);
            var wsA = new Moe.Workspace();
            var wsB = new Moe.Workspace();
            foreach (int n in new[] { 1, 2, 3, 5, 8, 16, 17 })
            {
                var want = new float[n * Hidden];
                var got = new float[n * Hidden];
                var routes = new HashSet<int>();
                reference.Forward(x.AsSpan(0, n * Hidden), want, n, wsB, pool);
                grouped.Forward(x.AsSpan(0, n * Hidden), got, n, wsA, pool, (_, _, ids, _) => { foreach (int e in ids) routes.Add(e); });
                if (n == 17) Assert.True(routes.Count > TopK, "the tokens should spread over more experts than one token picks");
                for (int i = 0; i < want.Length; i++)
                    if (BitConverter.SingleToInt32Bits(want[i]) != BitConverter.SingleToInt32Bits(got[i]))
                        Assert.Fail($"{type} shared={shared} {path} n={n}: token {i / Hidden} element {i % Hidden}: grouped {got[i]:R} != per expert {want[i]:R}");
            }
        }
        GC.KeepAlive(keep);
    }

    [Fact]
    public void FormatsTheGroupedPathDoesNotTakeFallBackToThePerExpertPath()
    {
        // F16 experts: no integer dot, so the grouped path declines and the per-expert Gemms run
        var keep = new List<TestWeight>();
        var grouped = Layer(DType.F16, true, true, 11, keep);
        var reference = Layer(DType.F16, true, false, 11, keep);
        using var pool = new WorkerPool(2);
        var x = TestData.Normal(5 * Hidden, 4);
        var want = new float[5 * Hidden];
        var got = new float[5 * Hidden];
        reference.Forward(x, want, 5, new Moe.Workspace(), pool);
        grouped.Forward(x, got, 5, new Moe.Workspace(), pool);
        Assert.Equal(want, got);
        Assert.Contains(want, v => v != 0);
        GC.KeepAlive(keep);
    }
}
