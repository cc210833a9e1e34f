using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Jevons.Formats;

namespace Jevons.Numerics;

/// <summary>
/// A weight matrix W [out, in] (y = W·x) in its stored format, as a view over the mapped file.
/// Rows are contiguous: row r starts at <see cref="Data"/> + r·<see cref="RowBytes"/>.
/// FP8 weights carry their block scales (<see cref="ScaleInv"/> [ceil(out/B), ceil(in/B)], F32,
/// which multiply the decoded values).
/// </summary>
public sealed unsafe class Linear
{
    public Linear(string name, DType type, int outFeatures, int inFeatures, byte* data, string file,
        float* scaleInv = null, int scaleBlockRows = 0, int scaleBlockCols = 0, float[]? bias = null)
    {
        if (inFeatures % type.BlockSize() != 0)
            JevonsException.Throw($"{inFeatures} input features is not a multiple of the {type.Name()} block size {type.BlockSize()}", file, name);
        Name = name;
        Type = type;
        OutFeatures = outFeatures;
        InFeatures = inFeatures;
        Data = data;
        File = file;
        RowBytes = type.ByteCount(inFeatures);
        ScaleInv = scaleInv;
        ScaleBlockRows = scaleBlockRows;
        ScaleBlockCols = scaleBlockCols;
        ScaleColumns = scaleBlockCols == 0 ? 0 : (inFeatures + scaleBlockCols - 1) / scaleBlockCols;
        if (bias is not null)
        {
            if (bias.Length != outFeatures) JevonsException.Throw($"bias has {bias.Length} values for {outFeatures} output features", file, name);
            // on the pinned heap, so that kernels that keep a pointer across a parallel loop (GroupedGemm) can hold it
            Bias = GC.AllocateUninitializedArray<float>(bias.Length, pinned: true);
            bias.CopyTo(Bias, 0);
        }
    }

    public string Name { get; }
    public DType Type { get; }
    public int OutFeatures { get; }
    public int InFeatures { get; }
    public byte* Data { get; }
    public long RowBytes { get; }
    public string File { get; }
    /// <summary>FP8 only: F32 block scales, row-major [ceil(out/ScaleBlockRows), ScaleColumns]; null otherwise.</summary>
    public float* ScaleInv { get; }
    public int ScaleBlockRows { get; }
    public int ScaleBlockCols { get; }
    public int ScaleColumns { get; }
    /// <summary>Optional bias [out], added by the matrix kernels (a pinned copy of the constructor's array).</summary>
    public float[]? Bias { get; }

    /// <summary>The bias's first element (pinned), or null without a bias.</summary>
    public float* BiasPointer => Bias is null ? null : (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Bias));

    public long ByteLength => RowBytes * OutFeatures;

    public byte* Row(int r) => Data + r * RowBytes;

    /// <summary>Builds a Linear over a 2-D tensor [out, in] (with FP8 scales / bias when given).</summary>
    public static Linear FromTensor(TensorView w, TensorView? scaleInv = null, TensorView? bias = null, int scaleBlock = 128)
    {
        if (w.Rank != 2)
            JevonsException.Throw($"expected a 2-D weight, found shape {w.ShapeText}", w.File, w.Name);
        int outF = checked((int)w.Shape[0]), inF = checked((int)w.Shape[1]);
        float* scale = null;
        int sb = 0;
        if (w.Type == DType.F8_E4M3)
        {
            if (scaleInv is null)
                JevonsException.Throw("FP8 weight has no weight_scale_inv companion", w.File, w.Name);
            long want0 = (outF + scaleBlock - 1) / scaleBlock, want1 = (inF + scaleBlock - 1) / scaleBlock;
            if (scaleInv.Rank != 2 || scaleInv.Shape[0] != want0 || scaleInv.Shape[1] != want1 || scaleInv.Type != DType.F32)
                JevonsException.Throw($"scale shape {scaleInv.ShapeText} {scaleInv.Type.Name()} does not match weight {w.ShapeText} with {scaleBlock}x{scaleBlock} blocks (want [{want0}, {want1}] F32)", scaleInv.File, scaleInv.Name);
            scale = (float*)scaleInv.Data;
            sb = scaleBlock;
        }
        float[]? b = null;
        if (bias is not null)
        {
            if (bias.ElementCount != outF)
                JevonsException.Throw($"bias has {bias.ElementCount} values, the weight has {outF} rows", bias.File, bias.Name);
            b = bias.ToFloatArray();
        }
        return new Linear(w.Name, w.Type, outF, inF, w.Data, w.File, scale, sb, sb, b);
    }

    /// <summary>Expert <paramref name="e"/> of a stacked 3-D tensor [experts, out, in] (GGUF *_exps).</summary>
    public static Linear FromStacked(TensorView w, int e)
    {
        if (w.Rank != 3)
            JevonsException.Throw($"expected a 3-D expert tensor, found shape {w.ShapeText}", w.File, w.Name);
        int outF = checked((int)w.Shape[1]), inF = checked((int)w.Shape[2]);
        long bytes = w.Type.ByteCount((long)outF * inF);
        return new Linear($"{w.Name}[{e}]", w.Type, outF, inF, w.Data + e * bytes, w.File);
    }
}
