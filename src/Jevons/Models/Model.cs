using Jevons.Numerics;

namespace Jevons.Models;

/// <summary>
/// A loaded language model: weights (views over mapped files) and the forward recipe of its
/// architecture. Sequence state (KV cache, position) lives in a <see cref="ModelState"/>.
/// </summary>
public abstract class Model : IDisposable
{
    public abstract ModelDescription Description { get; }

    public int VocabSize => Description.VocabSize;

    /// <summary>A fresh sequence with room for <paramref name="maxTokens"/> tokens of KV cache.</summary>
    public abstract ModelState CreateState(int maxTokens);

    /// <summary>
    /// Evaluates <paramref name="tokens"/> at positions state.Length, state.Length+1, ... and appends
    /// them to the cache. <paramref name="logits"/> is either [tokens.Length, vocab] (logits for every
    /// position) or [vocab] (only the last position's).
    /// </summary>
    public abstract void Forward(ModelState state, ReadOnlySpan<int> tokens, Span<float> logits);

    /// <summary>
    /// Paged KV storage for many sequences: <paramref name="blocks"/> blocks of <paramref name="blockSize"/>
    /// positions, all layers, allocated once (see <see cref="ForwardBatch"/>).
    /// </summary>
    public virtual PagedKvCache CreatePagedCache(int blockSize, int blocks, KvType type) =>
        throw new NotSupportedException($"{GetType().Name} has no paged KV cache yet");

    /// <summary>
    /// One step over many sequences: every entry's tokens are evaluated at its positions and their K/V
    /// written into <paramref name="cache"/> through its block table; linear layers see all
    /// batch.TotalTokens rows at once. <paramref name="logits"/> is [batch.LogitRows, vocab], rows in entry order.
    /// </summary>
    public virtual void Forward(ForwardBatch batch, PagedKvCache cache, Span<float> logits) =>
        throw new NotSupportedException($"{GetType().Name} has no batched forward yet");

    /// <summary>KV bytes per cached token, all layers, at element type <paramref name="type"/>.</summary>
    public virtual long KvBytesPerToken(KvType type) => Description.KvBytesPerToken / sizeof(float) * type switch { KvType.F32 => 4, _ => 2 };

    /// <summary>
    /// Identifies the weights and the forward recipe (architecture, config, tensor names, types and
    /// shapes): prefix-cache blocks are only reused under the same fingerprint.
    /// </summary>
    public virtual string Fingerprint => $"{Description.Architecture}:{Description.Layers}:{Description.HiddenSize}:{Description.VocabSize}:{Description.TotalParameters}";

    public virtual void Dispose() { }
}

/// <summary>One sequence's KV cache and position.</summary>
public abstract class ModelState
{
    protected ModelState(int capacity) => Capacity = capacity;

    /// <summary>Tokens in the cache.</summary>
    public int Length { get; set; }

    /// <summary>Most tokens the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Forgets everything after the first <paramref name="length"/> tokens (prefix reuse).</summary>
    public void Truncate(int length) => Length = Math.Clamp(length, 0, Length);
}

/// <summary>What `inspect` reports about a model, computed from its config and tensors.</summary>
public sealed class ModelDescription
{
    public required string Architecture { get; init; }
    public string Name { get; init; } = "";
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required int Layers { get; init; }
    public required int HiddenSize { get; init; }
    public required long TotalParameters { get; init; }
    /// <summary>Parameters touched per token (routed top-k + shared experts for MoE).</summary>
    public required long ActiveParameters { get; init; }
    public required IReadOnlyDictionary<DType, long> WeightBytesByType { get; init; }
    /// <summary>KV cache bytes per token, all layers, at the cache's element size.</summary>
    public required long KvBytesPerToken { get; init; }
    /// <summary>What a plain multi-head cache would take for the same model (MLA comparison); 0 if not meaningful.</summary>
    public long EquivalentMhaKvBytesPerToken { get; init; }
    public IReadOnlyList<(string Key, string Value)> Details { get; init; } = [];

    public long WeightBytes => WeightBytesByType.Values.Sum();
}
