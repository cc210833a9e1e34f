using System.Diagnostics;

namespace Jevons.Models;

/// <summary>The phases of a decoder pass that <see cref="StepProfile"/> times.</summary>
public enum StepPhase
{
    /// <summary>Embedding rows and rotary angles.</summary>
    Embed,
    /// <summary>RMSNorms before the blocks and the residual adds.</summary>
    NormsAndResiduals,
    /// <summary>Attention input projections (MLA: q or q_a + kv_a, q_b; GQA: q, k, v).</summary>
    AttentionProjections,
    /// <summary>Each row's K/V or latent and rope key written to the cache (norm, rope, round trip).</summary>
    CacheWrite,
    /// <summary>Attention over the cached positions, per (sequence, head).</summary>
    Attention,
    /// <summary>The attention output projection.</summary>
    AttentionOutput,
    /// <summary>MoE router logits and top-k.</summary>
    Router,
    /// <summary>MoE gate and up projections (shared and routed experts), with the quantisation and packing before them.</summary>
    ExpertsGateUp,
    /// <summary>SwiGLU, then the down projections of the shared and routed experts.</summary>
    ExpertsDown,
    /// <summary>Routed expert outputs weighted into the rows.</summary>
    ExpertsCombine,
    /// <summary>Dense SwiGLU feed-forward layers.</summary>
    DenseFeedForward,
    /// <summary>Final norm and LM head.</summary>
    Head,
}

/// <summary>
/// Where a decoder pass's wall time goes, phase by phase (the bench's <c>quick-profile</c>): the decoder and the
/// blocks mark the end of each phase and the time since the previous mark is added to it. Off (null) by default.
/// </summary>
public sealed class StepProfile
{
    readonly long[] _ticks = new long[Enum.GetValues<StepPhase>().Length];
    long _last;

    /// <summary>Passes timed since the last <see cref="Reset"/>.</summary>
    public int Passes { get; private set; }

    internal void Begin()
    {
        Passes++;
        _last = Stopwatch.GetTimestamp();
    }

    internal void Mark(StepPhase phase)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)phase] += now - _last;
        _last = now;
    }

    /// <summary>Milliseconds spent in <paramref name="phase"/> over the timed passes.</summary>
    public double Milliseconds(StepPhase phase) => _ticks[(int)phase] * 1000.0 / Stopwatch.Frequency;

    public void Reset()
    {
        Array.Clear(_ticks);
        Passes = 0;
    }
}
