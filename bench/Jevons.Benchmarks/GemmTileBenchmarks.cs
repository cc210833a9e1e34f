using BenchmarkDotNet.Attributes;
using Jevons.Numerics;

namespace Jevons.Benchmarks;

/// <summary>
/// Prefill Gemm at a DeepSeek-V3 expert shape (7168→2048 as [2048, 7168]) and the Qwen-1.5B FFN down
/// shape, 64 tokens. Set JEVONS_GEMM_TILES=0 to time the untiled (one dot per row and token) driver.
/// </summary>
[MemoryDiagnoser, MinColumn, MedianColumn]
public class GemmTileBenchmarks : GemmBenchmarkBase
{
    [Params(DType.Q8_0, DType.Q4_K, DType.Q6_K, DType.BF16, DType.F8_E4M3, DType.F32)]
    public DType Type;

    [Params("2048x7168")]
    public string Shape = "2048x7168";

    [Params(64)]
    public int Tokens;

    [GlobalSetup]
    public void Setup() => Setup(Type, BenchWeights.ParseShape(Shape), Tokens, seed: 2);
}
