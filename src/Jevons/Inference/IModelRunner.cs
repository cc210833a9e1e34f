using Jevons.Models;

namespace Jevons.Inference;

/// <summary>
/// What the scheduler needs of a model: one forward step over a <see cref="ForwardBatch"/> and the
/// block-level operations on its KV storage. <see cref="ModelRunner"/> is the real one (a
/// <see cref="Model"/> and its <see cref="PagedKvCache"/>); tests use a fake.
/// </summary>
public interface IModelRunner
{
    int VocabSize { get; }
    /// <summary>Most positions one sequence may hold (the model's context length).</summary>
    int ContextLength { get; }
    /// <summary>Token positions per KV block.</summary>
    int BlockSize { get; }
    /// <summary>KV blocks the storage holds (ids 0 .. Blocks − 1).</summary>
    int Blocks { get; }
    /// <summary>Model fingerprint plus KV layout: the prefix cache's hash chain and disk header use it.</summary>
    string Fingerprint { get; }
    long BytesPerBlock { get; }

    /// <summary>Runs one step; logits is [batch.LogitRows, VocabSize].</summary>
    void Forward(ForwardBatch batch, Span<float> logits);
    void CopyBlock(int source, int destination);
    void ExportBlock(int block, Span<byte> destination);
    void ImportBlock(int block, ReadOnlySpan<byte> source);
}
