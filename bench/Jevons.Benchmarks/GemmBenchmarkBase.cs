using BenchmarkDotNet.Attributes;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Benchmarks;

/// <summary>
/// One prefill Gemm, Y[n, out] = X[n, in]·Wᵀ, over <see cref="BenchWeights"/>: the benchmark and
/// cleanup shared by <see cref="GemmBenchmarks"/> and <see cref="GemmTileBenchmarks"/>, whose
/// [GlobalSetup] calls <see cref="Setup(DType, ValueTuple{int, int}, int, int)"/> with their parameters.
/// </summary>
public abstract class GemmBenchmarkBase
{
    BenchWeights _w = null!;
    float[] _x = [], _y = [];
    int _tokens;
    WorkerPool _pool = null!;

    /// <summary>Weights of <paramref name="type"/> and <paramref name="shape"/> from <paramref name="seed"/>, then X for <paramref name="tokens"/> tokens.</summary>
    protected void Setup(DType type, (int Out, int In) shape, int tokens, int seed)
    {
        _w = new BenchWeights(type, shape, seed);
        _tokens = tokens;
        _x = _w.Activations(tokens * shape.In);
        _y = new float[tokens * shape.Out];
        _pool = new WorkerPool(Environment.ProcessorCount);
    }

    [Benchmark]
    public void Gemm() => MatMul.Gemm(_w.Linear, _x, _y, _tokens, _pool);

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _w.Dispose();
    }
}
