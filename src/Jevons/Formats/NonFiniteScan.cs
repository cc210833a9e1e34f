using Jevons.Numerics;

namespace Jevons.Formats;

/// <summary>NaN and ±∞ counts of one tensor's values.</summary>
public readonly record struct NonFiniteCount(long NaN, long Infinity)
{
    public bool Any => NaN + Infinity > 0;
}

/// <summary>
/// Scans a tensor for non-finite values by decoding it with <see cref="Quantization.Dequantize"/>
/// in block-aligned chunks: memory stays bounded (one chunk of floats) whatever the tensor's size.
/// Integer and bool tensors cannot hold non-finite values and are skipped.
/// </summary>
public static class NonFiniteScan
{
    /// <summary>Values decoded per step: a multiple of every block size (32, 256).</summary>
    public const int ChunkElements = 1 << 16;

    public static unsafe NonFiniteCount Count(TensorView t, float[]? buffer = null)
    {
        if (t.Type is DType.I8 or DType.I16 or DType.I32 or DType.I64 or DType.U8 or DType.Bool) return default;
        buffer ??= new float[ChunkElements];
        long total = t.ElementCount;
        int blockSize = t.Type.BlockSize();
        long nan = 0, inf = 0;
        for (long start = 0; start < total; start += ChunkElements)
        {
            int count = (int)Math.Min(ChunkElements, total - start);
            if (count % blockSize != 0) count -= count % blockSize; // a partial trailing block cannot be decoded
            if (count == 0) break;
            long byteStart = start / blockSize * t.Type.BlockBytes();
            var bytes = new ReadOnlySpan<byte>(t.Data + byteStart, (int)t.Type.ByteCount(count));
            var values = buffer.AsSpan(0, count);
            Quantization.Dequantize(t.Type, bytes, values);
            foreach (var v in values)
            {
                if (float.IsNaN(v)) nan++;
                else if (float.IsInfinity(v)) inf++;
            }
        }
        return new NonFiniteCount(nan, inf);
    }
}
