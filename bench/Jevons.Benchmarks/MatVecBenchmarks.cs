using BenchmarkDotNet.Attributes;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Benchmarks;

/// <summary>y = W·x for one token at real layer shapes (decode is memory-bound: bytes of W per call).</summary>
[MemoryDiagnoser]
public class MatVecBenchmarks
{
    /// <summary>Every weight type, or the comma-separated list in JEVONS_BENCH_TYPES (e.g. F8_E4M3,Q4_K).</summary>
    public static IEnumerable<DType> Types() =>
        Environment.GetEnvironmentVariable("JEVONS_BENCH_TYPES") is { Length: > 0 } v
            ? v.Split(',').Select(Enum.Parse<DType>)
            : [DType.F32, DType.F16, DType.BF16, DType.F8_E4M3, DType.Q8_0, DType.Q4_K, DType.Q6_K, DType.Q5_0, DType.Q4_0, DType.Q2_K, DType.Q3_K, DType.Q5_K];

    /// <summary>out x in: DeepSeek-V2-Lite attention (2048²), V3 hidden→expert (7168→2048 as [2048, 7168]),
    /// R1-Distill-Qwen-1.5B FFN down (8960→1536); or the list in JEVONS_BENCH_SHAPES.</summary>
    public static IEnumerable<string> Shapes() =>
        Environment.GetEnvironmentVariable("JEVONS_BENCH_SHAPES") is { Length: > 0 } v ? v.Split(',') : ["2048x2048", "2048x7168", "1536x8960"];

    [ParamsSource(nameof(Types))]
    public DType Type;

    [ParamsSource(nameof(Shapes))]
    public string Shape = "2048x2048";

    [Params(ActivationMode.LlamaCpp)]
    public ActivationMode Mode;

    /// <summary>Worker threads (not a BenchmarkDotNet parameter; the quick timer sets it).</summary>
    public int Threads = Environment.ProcessorCount;

    /// <summary>Weights are uniform in ±WeightScale (not a BenchmarkDotNet parameter).</summary>
    public float WeightScale = float.TryParse(Environment.GetEnvironmentVariable("JEVONS_BENCH_WSCALE"), out var ws) ? ws : 1f;

    BenchWeights _w = null!;
    float[] _x = [], _y = [];
    WorkerPool _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        _w = new BenchWeights(Type, Shape, seed: 1, WeightScale);
        _x = _w.Activations(_w.Linear.InFeatures);
        _y = new float[_w.Linear.OutFeatures];
        _pool = new WorkerPool(Threads);
    }

    [Benchmark]
    public void MatVec() => MatMul.MatVec(_w.Linear, _x, _y, _pool, Mode);

    /// <summary>For the quick timer: one Gemm over n tokens with this benchmark's weights.</summary>
    public void GemmOnce(float[] x, float[] y, int n) => MatMul.Gemm(_w.Linear, x, y, n, _pool, Mode);

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _w.Dispose();
    }
}

/// <summary>Prefill: Y[n, out] = X[n, in]·Wᵀ, each weight row decoded once for all n tokens.</summary>
[MemoryDiagnoser]
public class GemmBenchmarks : GemmBenchmarkBase
{
    [Params(DType.F32, DType.BF16, DType.Q8_0, DType.Q4_K)]
    public DType Type;

    [Params(64)]
    public int Tokens;

    [GlobalSetup]
    public void Setup() => Setup(Type, (2048, 2048), Tokens, seed: 2);
}

/// <summary>Row kernels at a DeepSeek-V3 hidden size.</summary>
[MemoryDiagnoser]
public class OpsBenchmarks
{
    readonly float[] _x = new float[7168], _w = new float[7168], _y = new float[7168];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        for (int i = 0; i < _x.Length; i++) { _x[i] = (float)rng.NextDouble(); _w[i] = (float)rng.NextDouble(); }
    }

    [Benchmark] public void RmsNorm() => Ops.RmsNorm(_x, _w, 1e-6f, _y);
    [Benchmark] public void Softmax() { _x.CopyTo(_y, 0); Ops.Softmax(_y); }
    [Benchmark] public void SwiGlu() { _x.CopyTo(_y, 0); Ops.SwiGlu(_y, _w); }
}
