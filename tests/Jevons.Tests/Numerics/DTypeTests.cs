using Jevons.Numerics;
using Xunit;

namespace Jevons.Tests.Numerics;

public class DTypeTests
{
    [Theory]
    [InlineData(DType.Q8_0, 32, 34)]
    [InlineData(DType.Q4_K, 256, 144)]
    [InlineData(DType.Q6_K, 256, 210)]
    [InlineData(DType.Q5_0, 32, 22)]
    [InlineData(DType.F8_E4M3, 1, 1)]
    [InlineData(DType.BF16, 1, 2)]
    public void BlockLayoutsMatchGgml(DType t, int blockSize, int blockBytes)
    {
        Assert.Equal(blockSize, t.BlockSize());
        Assert.Equal(blockBytes, t.BlockBytes());
    }

    [Theory]
    [InlineData(0x7E, 448f)]
    [InlineData(0xFE, -448f)]
    [InlineData(0x01, 0.001953125f)]
    [InlineData(0x38, 1f)]
    [InlineData(0x80, -0f)]
    public void Fp8DecodesE4M3fn(int b, float expected)
    {
        Assert.Equal(expected, Quantization.F8E4M3Table[b]);
    }

    [Fact]
    public void Fp8NanBytes()
    {
        Assert.True(float.IsNaN(Quantization.F8E4M3Table[0x7F]));
        Assert.True(float.IsNaN(Quantization.F8E4M3Table[0xFF]));
    }
}
