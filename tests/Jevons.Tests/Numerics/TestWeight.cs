using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Jevons.Numerics;

namespace Jevons.Tests.Numerics;

/// <summary>
/// A seeded random weight [out, in] quantised to <paramref name="type"/> in pinned memory the Linear views. The Linear
/// holds only a pointer: keep this object alive while it is used.
/// </summary>
internal sealed unsafe class TestWeight
{
    readonly byte[] _bytes;

    public TestWeight(string name, DType type, int outF, int inF, int seed, float scale = 0.5f, float[]? bias = null)
    {
        var w = TestData.Normal(outF * inF, seed, scale);
        long rowBytes = type.ByteCount(inF);
        _bytes = GC.AllocateArray<byte>(checked((int)(rowBytes * outF)), pinned: true);
        for (int r = 0; r < outF; r++)
            Quantization.QuantizeRow(type, w.AsSpan(r * inF, inF), _bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
        Linear = new Linear(name, type, outF, inF, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_bytes)), "test", bias: bias);
    }

    public Linear Linear { get; }
}
