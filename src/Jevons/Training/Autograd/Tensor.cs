namespace Jevons.Training.Autograd;

/// <summary>
/// A float32 tensor of the trainer: row-major data, outermost dimension first, and (when it takes part in
/// backward) a gradient of the same size. Most ops see it as a matrix [Rows, Cols] with Cols the last dimension.
/// The values are the first <see cref="Length"/> elements of <see cref="Data"/>: a tape that reuses memory
/// (<see cref="Tape.ReuseMemory"/>) hands its results arrays that may be longer.
/// </summary>
public sealed class Tensor
{
    public Tensor(int[] shape, bool requiresGrad = false, string name = "")
    {
        Shape = shape;
        Length = Count(shape);
        Data = new float[Length];
        if (requiresGrad) Grad = new float[Length];
        Name = name;
    }

    public Tensor(int[] shape, float[] data, bool requiresGrad = false, string name = "")
    {
        Shape = shape;
        Data = data;
        Length = data.Length;
        if (requiresGrad) Grad = new float[Data.Length];
        Name = name;
    }

    /// <summary>Over arrays of at least the shape's size (a reusing tape's results).</summary>
    internal Tensor(int[] shape, float[] data, float[]? grad)
    {
        Shape = shape;
        Length = Count(shape);
        Data = data;
        Grad = grad;
        Name = "";
    }

    static int Count(int[] shape)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        return checked((int)count);
    }

    public string Name { get; }
    public int[] Shape { get; }
    public float[] Data { get; }
    /// <summary>dLoss/dData; null for constants.</summary>
    public float[]? Grad { get; }
    public int Length { get; }
    /// <summary>The values: Data[..Length].</summary>
    public Span<float> Values => Data.AsSpan(0, Length);
    /// <summary>The gradient: Grad[..Length] (empty for a constant).</summary>
    public Span<float> Gradient => Grad.AsSpan(0, Grad is null ? 0 : Length);
    public int Cols => Shape[^1];
    public int Rows => Shape.Length == 0 ? 1 : Shape[^1] > 0 ? Length / Shape[^1] : Count(Shape[..^1]);
    public bool RequiresGrad => Grad is not null;

    public void ZeroGrad() => Gradient.Clear();

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}
