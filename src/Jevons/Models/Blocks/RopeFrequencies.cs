using Jevons.Numerics.Kernels;

namespace Jevons.Models.Blocks;

/// <summary>How the rotary frequencies are stretched for long contexts (YaRN lives in Yarn.cs).</summary>
public enum RopeScalingKind
{
    None,
    /// <summary>Positions divided by <see cref="RopeScaling.Factor"/> (HF "linear", GGUF rope.scaling.type = linear).</summary>
    Linear,
    /// <summary>Llama-3.1 frequency-dependent scaling (HF rope_type "llama3"; GGUF stores the result as rope_freqs.weight).</summary>
    Llama3,
}

/// <summary>Rope scaling settings as config.json / GGUF metadata give them.</summary>
public sealed record RopeScaling(
    RopeScalingKind Kind,
    double Factor = 1,
    double LowFreqFactor = 1,
    double HighFreqFactor = 4,
    int OriginalContext = 0)
{
    public static readonly RopeScaling None = new(RopeScalingKind.None);

    public override string ToString() => Kind switch
    {
        RopeScalingKind.None => "none",
        RopeScalingKind.Linear => $"linear (factor {Factor})",
        _ => $"llama3 (factor {Factor}, low {LowFreqFactor}, high {HighFreqFactor}, original context {OriginalContext})",
    };
}

/// <summary>
/// The one RoPE of every architecture (GQA's q/k, MLA's q_pe/k_pe): frequencies from the config
/// (<see cref="Create"/>) or from YaRN (<see cref="FromInverseFrequencies"/>), cos/sin per position computed
/// once per row for all layers and heads, and the rotation. The rotary inverse frequencies of one model: invFreq[i] = base^(-2i/d) / factor[i] (· 1/linear factor),
/// and the rotation itself in both pair layouts: NORM (adjacent pairs x[2i], x[2i+1], GGUF llama with its
/// permuted q/k) and NeoX (halves x[i], x[i + d/2], qwen2 and every HF checkpoint).
/// </summary>
public sealed class RopeFrequencies
{
    readonly double[] invFreq;

    RopeFrequencies(double[] invFreq, bool neox)
    {
        this.invFreq = invFreq;
        Neox = neox;
    }

    /// <summary>Rotated dimensions per head (2 × pairs).</summary>
    public int Dims => invFreq.Length * 2;

    /// <summary>Rotated pairs per head: the length of the cos/sin rows.</summary>
    public int Pairs => invFreq.Length;

    /// <summary>True for rotate-half (NeoX) pairing, false for adjacent pairs.</summary>
    public bool Neox { get; }

    public double InverseFrequency(int pair) => invFreq[pair];

    /// <summary>
    /// Frequencies for <paramref name="dims"/> rotated dimensions at base <paramref name="theta"/>.
    /// <paramref name="factors"/> (GGUF rope_freqs.weight, length dims/2) divide the frequencies, as llama.cpp does.
    /// </summary>
    public static RopeFrequencies Create(int dims, double theta, RopeScaling scaling, ReadOnlySpan<float> factors, bool neox)
    {
        if (dims <= 0 || dims % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(dims), dims, "rotary dimensions must be a positive even number");
        int half = dims / 2;
        if (!factors.IsEmpty && factors.Length != half)
            throw new ArgumentException($"{factors.Length} rope factors for {half} rotary pairs", nameof(factors));
        var inv = new double[half];
        for (int i = 0; i < half; i++)
        {
            double f = Math.Pow(theta, -2.0 * i / dims);
            if (!factors.IsEmpty) f /= factors[i];
            inv[i] = scaling.Kind switch
            {
                RopeScalingKind.Linear => f / scaling.Factor,
                RopeScalingKind.Llama3 => Llama3(f, scaling),
                _ => f,
            };
        }
        return new RopeFrequencies(inv, neox);
    }

    /// <summary>
    /// Frequencies computed elsewhere (MLA's YaRN-blended float32 frequencies, <see cref="Yarn.InverseFrequencies"/>):
    /// angles are then pos · (double)invFreq[i], as the reference computes them.
    /// </summary>
    public static RopeFrequencies FromInverseFrequencies(ReadOnlySpan<float> inverseFrequencies, bool neox)
    {
        if (inverseFrequencies.IsEmpty) throw new ArgumentException("no rotary frequencies", nameof(inverseFrequencies));
        var inv = new double[inverseFrequencies.Length];
        for (int i = 0; i < inv.Length; i++) inv[i] = inverseFrequencies[i];
        return new RopeFrequencies(inv, neox);
    }

    /// <summary>transformers' _compute_llama3_parameters for one frequency.</summary>
    static double Llama3(double f, RopeScaling s)
    {
        double lowWavelen = s.OriginalContext / s.LowFreqFactor;
        double highWavelen = s.OriginalContext / s.HighFreqFactor;
        double wavelen = 2 * Math.PI / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / s.Factor;
        double smooth = (s.OriginalContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return (1 - smooth) * f / s.Factor + smooth * f;
    }

    /// <summary>cos/sin [Pairs] of position <paramref name="pos"/>: computed once per token, shared by every head and layer.</summary>
    public void Angles(int pos, Span<float> cos, Span<float> sin)
    {
        for (int i = 0; i < invFreq.Length; i++)
        {
            double a = pos * invFreq[i];
            cos[i] = (float)Math.Cos(a);
            sin[i] = (float)Math.Sin(a);
        }
    }

    /// <summary>Rotates one head vector x[2·cos.Length] in place (the scalar rotation of <see cref="Ops.RopeRotate"/>).</summary>
    public static void Rotate(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool neox) =>
        Ops.RopeRotateScalar(x, cos, sin, neox);
}
