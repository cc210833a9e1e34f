namespace Jevons.Models.Synthesis;

/// <summary>What a synthesized tensor holds: decides how its values are drawn and which storage type it gets.</summary>
public enum SynthKind
{
    /// <summary>The token embedding: N(0, 1). Takes the requested type; BF16 in the HF FP8 layout.</summary>
    Embedding,
    /// <summary>A projection W[out, in]: N(0, 1/in). Takes the requested type; F8_E4M3 + weight_scale_inv in the HF FP8 layout.</summary>
    Matrix,
    /// <summary>The output projection (lm_head): N(0, 4/in), so logits spread over a few units. Never FP8 (DeepSeek-V3 keeps it BF16).</summary>
    Output,
    /// <summary>A MoE router (ffn_gate_inp / mlp.gate): drawn like <see cref="Output"/>; F32 in GGUF as llama-quantize leaves it, never FP8.</summary>
    Router,
    /// <summary>An RMSNorm weight: 1 + N(0, 0.1²). F32 in GGUF.</summary>
    Norm,
    /// <summary>A projection bias: N(0, 0.2²). F32 in GGUF.</summary>
    Bias,
    /// <summary>The router's e_score_correction_bias (exp_probs_b): N(0, 0.1²), F32 in every layout (as DeepSeek-V3 stores it).</summary>
    RouterBias,
    /// <summary>Computed values the plan gives (llama3 rope_freqs factors). F32; not counted as parameters.</summary>
    Fixed,
}

/// <summary>
/// One tensor of a synthesized model file; <see cref="Shape"/> is outermost first ([out, in], GGUF writes it reversed).
/// Values are keyed by <see cref="Keys"/>: one key, or one per expert for a GGUF stacked tensor [experts, out, in] whose
/// flattened row r is row r % out of expert r / out. Keys are the HF names where a tensor exists in both layouts, so
/// the GGUF and the Hugging Face file of one seed hold the same model.
/// </summary>
public sealed record SynthTensor(string Name, long[] Shape, SynthKind Kind, string[] Keys, float[]? Values = null)
{
    public long Columns => Shape[^1];
    public long Rows => Shape.Length == 1 ? 1 : ElementCount / Columns;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Builds the two tensor lists of a plan (GGUF names, experts stacked; HF names, one tensor per expert) from one
/// description per weight, so an architecture states each tensor once.
/// </summary>
public sealed class SynthTensorList
{
    public List<SynthTensor> Gguf { get; } = [];
    public List<SynthTensor> Hf { get; } = [];

    /// <summary>A tensor in both layouts (<paramref name="hf"/> null: GGUF only, e.g. rope_freqs).</summary>
    public void Add(string gguf, string? hf, long[] shape, SynthKind kind, float[]? values = null)
    {
        string key = hf ?? gguf;
        Gguf.Add(new(gguf, shape, kind, [key], values));
        if (hf is not null) Hf.Add(new(hf, shape, kind, [key], values));
    }

    /// <summary>Routed experts: one stacked GGUF tensor [experts, ..shape], one HF tensor per expert named by <paramref name="hfOf"/>.</summary>
    public void AddExperts(string gguf, Func<int, string> hfOf, int experts, long[] shape, SynthKind kind)
    {
        var keys = new string[experts];
        for (int e = 0; e < experts; e++)
        {
            keys[e] = hfOf(e);
            Hf.Add(new(keys[e], shape, kind, [keys[e]]));
        }
        Gguf.Add(new(gguf, [experts, .. shape], kind, keys));
    }
}
