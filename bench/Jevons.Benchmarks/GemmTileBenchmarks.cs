using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

namespace Jevons.Benchmarks;

/// <summary>
/// Prefill Gemm at a DeepSeek-V3 expert shape (7168→2048 as [2048, 7168]) and the Qwen-1.5B FFN down
/// shape, 64 tokens. Set JEVONS_GEMM_TILES=0 to time the untiled (one dot per row and token) driver.
/// </summary>
[MemoryDiagnoser, MinColumn, MedianColumn]
public unsafe class GemmTileBenchmarks
{
    [Params(DType.Q8_0, DType.Q4_K, DType.Q6_K, DType.BF16, DType.F8_E4M3, DType.F32)]
    public DType Type;

    [Params("2048x7168")]
    public string Shape = "2048x7168";

    [Params(64)]
    public int Tokens;

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
        var rng = new Random(2);
        var row = new float[inF];
        for (int r = 0; r < outF; r++)
        {
            for (int i = 0; i < inF; i++) row[i] = (float)(rng.NextDouble() * 2 - 1);
            Quantization.QuantizeRow(Type, row, new Span<byte>(_data + r * rowBytes, (int)rowBytes));
        }
        int sr = (outF + 127) / 128, sc = (inF + 127) / 128;
        _scales = (float*)NativeMemory.AlignedAlloc((nuint)(sr * sc * 4), 64);
        for (int i = 0; i < sr * sc; i++) _scales[i] = 1f;
        bool fp8 = Type == DType.F8_E4M3;
        _w = new Linear("bench", Type, outF, inF, _data, "bench", fp8 ? _scales : null, fp8 ? 128 : 0, fp8 ? 128 : 0);
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
        NativeMemory.AlignedFree(_scales);
    }
}
