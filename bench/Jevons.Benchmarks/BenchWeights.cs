using System.Runtime.InteropServices;
using Jevons.Numerics;

namespace Jevons.Benchmarks;

/// <summary>
/// A random weight matrix [out, in] quantised to one type, in aligned native memory, as the MatVec and
/// Gemm benchmarks use it: rows uniform in ±scale drawn from <see cref="Rng"/>, and for F8_E4M3 a
/// 128×128 block-scale grid of ones. <see cref="Activations"/> continues the same random sequence.
/// </summary>
public sealed unsafe class BenchWeights : IDisposable
{
    byte* _data;
    float* _scales;

    /// <param name="shape">"outxin", e.g. "2048x7168".</param>
    public BenchWeights(DType type, string shape, int seed, float scale = 1f)
        : this(type, ParseShape(shape), seed, scale) { }

    public BenchWeights(DType type, (int Out, int In) shape, int seed, float scale = 1f)
    {
        var (outF, inF) = shape;
        Rng = new Random(seed);
        long rowBytes = type.ByteCount(inF);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * outF), 64);
        var row = new float[inF];
        for (int r = 0; r < outF; r++)
        {
            for (int i = 0; i < inF; i++) row[i] = scale * (float)(Rng.NextDouble() * 2 - 1);
            Quantization.QuantizeRow(type, row, new Span<byte>(_data + r * rowBytes, (int)rowBytes));
        }
        bool fp8 = type == DType.F8_E4M3;
        if (fp8)
        {
            int sr = (outF + 127) / 128, sc = (inF + 127) / 128;
            _scales = (float*)NativeMemory.AlignedAlloc((nuint)(sr * sc * 4), 64);
            for (int i = 0; i < sr * sc; i++) _scales[i] = 1f;
        }
        Linear = new Linear("bench", type, outF, inF, _data, "bench", _scales, fp8 ? 128 : 0, fp8 ? 128 : 0);
    }

    /// <summary>The weights; valid until <see cref="Dispose"/>.</summary>
    public Linear Linear { get; }

    /// <summary>The generator the weights were drawn from, for the activations that follow.</summary>
    public Random Rng { get; }

    /// <summary><paramref name="count"/> values uniform in ±1, drawn next from <see cref="Rng"/>.</summary>
    public float[] Activations(int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(Rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>"2048x7168" → (2048, 7168).</summary>
    public static (int Out, int In) ParseShape(string shape)
    {
        var dims = shape.Split('x');
        return (int.Parse(dims[0]), int.Parse(dims[1]));
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_data);
        NativeMemory.AlignedFree(_scales);
        _data = null;
        _scales = null;
    }
}
