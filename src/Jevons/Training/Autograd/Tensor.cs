namespace Jevons.Training.Autograd;

/// <summary>
/// A float32 tensor of the trainer: row-major data, outermost dimension first, and (when it takes part in
/// backward) a gradient of the same size. Most ops see it as a matrix [Rows, Cols] with Cols the last dimension.
/// </summary>
public sealed class Tensor
{
    public Tensor(int[] shape, bool requiresGrad = false, string name = "")
    {
        Shape = shape;
        long count = 1;
        foreach (var d in shape) count *= d;
        Data = new float[checked((int)count)];
        if (requiresGrad) Grad = new float[Data.Length];
        Name = name;
    }

    public Tensor(int[] shape, float[] data, bool requiresGrad = false, string name = "")
    {
        Shape = shape;
        Data = data;
        if (requiresGrad) Grad = new float[Data.Length];
        Name = name;
    }

    public string Name { get; }
    public int[] Shape { get; }
    public float[] Data { get; }
    /// <summary>dLoss/dData; null for constants.</summary>
    public float[]? Grad { get; }
    public int Length => Data.Length;
    public int Cols => Shape[^1];
    public int Rows => Shape.Length == 0 ? 1 : Data.Length / Math.Max(1, Shape[^1]);
    public bool RequiresGrad => Grad is not null;

    public void ZeroGrad() => Grad?.AsSpan().Clear();

    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]";
}
