using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Benchmarks;

/// <summary>y = W·x for one token at real layer shapes (decode is memory-bound: bytes of W per call).</summary>
[MemoryDiagnoser]
public unsafe class MatVecBenchmarks
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

    Linear _w = null!;
    byte* _data;
    float* _scales;
    float[] _x = [], _y = [];
    WorkerPool _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        var dims = Shape.Split('x');
        int outF = int.Parse(dims[0]), inF = int.Parse(dims[1]);
        long rowBytes = Type.ByteCount(inF);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * outF), 64);
        var rng = new Random(1);
        var row = new float[inF];
        for (int r = 0; r < outF; r++)
        {
            for (int i = 0; i < inF; i++) row[i] = WeightScale * (float)(rng.NextDouble() * 2 - 1);
            Quantization.QuantizeRow(Type, row, new Span<byte>(_data + r * rowBytes, (int)rowBytes));
        }
        int sr = (outF + 127) / 128, sc = (inF + 127) / 128;
        _scales = (float*)NativeMemory.AlignedAlloc((nuint)(sr * sc * 4), 64);
        for (int i = 0; i < sr * sc; i++) _scales[i] = 1f;
        bool fp8 = Type == DType.F8_E4M3;
        _w = new Linear("bench", Type, outF, inF, _data, "bench", fp8 ? _scales : null, fp8 ? 128 : 0, fp8 ? 128 : 0);
        _x = new float[inF];
        for (int i = 0; i < inF; i++) _x[i] = (float)(rng.NextDouble() * 2 - 1);
        _y = new float[outF];
        _pool = new WorkerPool(Threads);
    }

    [Benchmark]
    public void MatVec() => MatMul.MatVec(_w, _x, _y, _pool, Mode);

    /// <summary>For the quick timer: one Gemm over n tokens with this benchmark's weights.</summary>
    public void GemmOnce(float[] x, float[] y, int n) => MatMul.Gemm(_w, x, y, n, _pool, Mode);

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        NativeMemory.AlignedFree(_data);
        NativeMemory.AlignedFree(_scales);
    }
}

/// <summary>Prefill: Y[n, out] = X[n, in]·Wᵀ, each weight row decoded once for all n tokens.</summary>
[MemoryDiagnoser]
public unsafe class GemmBenchmarks
{
    [Params(DType.F32, DType.BF16, DType.Q8_0, DType.Q4_K)]
    public DType Type;

    [Params(64)]
    public int Tokens;

    Linear _w = null!;
    byte* _data;
    float[] _x = [], _y = [];
    WorkerPool _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        const int outF = 2048, inF = 2048;
        long rowBytes = Type.ByteCount(inF);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * outF), 64);
        var rng = new Random(2);
        var row = new float[inF];
        for (int r = 0; r < outF; r++)
        {
            for (int i = 0; i < inF; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
            Quantization.QuantizeRow(Type, row, new Span<byte>(_data + r * rowBytes, (int)rowBytes));
        }
        _w = new Linear("bench", Type, outF, inF, _data, "bench");
        _x = new float[Tokens * inF];
        for (int i = 0; i < _x.Length; i++) _x[i] = (float)(rng.NextDouble() * 2 - 1);
        _y = new float[Tokens * outF];
        _pool = new WorkerPool(Environment.ProcessorCount);
    }

    [Benchmark]
    public void Gemm() => MatMul.Gemm(_w, _x, _y, Tokens, _pool);

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        NativeMemory.AlignedFree(_data);
    }
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
