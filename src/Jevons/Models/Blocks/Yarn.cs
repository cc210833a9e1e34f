namespace Jevons.Models.Blocks;

/// <summary>
/// YaRN rope scaling as DeepSeek-V2/V3 configure it (rope_scaling.type == "yarn" in config.json,
/// deepseek2.rope.scaling.* in GGUF).
/// </summary>
/// <param name="Factor">Context extension factor (40 for DeepSeek-V2/V3).</param>
/// <param name="OriginalContext">original_max_position_embeddings: the pre-extension training length L.</param>
/// <param name="BetaFast">Rotations above which a pair keeps its original frequency (32).</param>
/// <param name="BetaSlow">Rotations below which a pair is fully interpolated (1).</param>
/// <param name="AttentionLogMultiplier">
/// 0.1·mscale_all_dim (GGUF: rope.scaling.yarn_log_multiplier): the softmax scale is multiplied by
/// m², m = 1 + AttentionLogMultiplier·ln(Factor).
/// </param>
public sealed record YarnSettings(double Factor, int OriginalContext, double BetaFast, double BetaSlow, double AttentionLogMultiplier)
{
    /// <summary>m = 1 + 0.1·mscale_all_dim·ln(factor) (1 when factor ≤ 1).</summary>
    public double AttentionMScale => Factor <= 1 ? 1.0 : 1.0 + AttentionLogMultiplier * Math.Log(Factor);
}

/// <summary>
/// Frequencies and the softmax scale of MLA's decoupled rope part. Pairs are interleaved
/// (x[2i], x[2i+1]) for both HF DeepSeek checkpoints and llama.cpp's deepseek2 (NORM rope).
/// </summary>
public static class Yarn
{
    /// <summary>
    /// inv_freq[i] = θ^(-2i/d) for i &lt; d/2, blended with inv_freq/factor by YaRN's linear ramp between the
    /// correction dims: low = floor(d·ln(L/(β_fast·2π)) / (2 ln θ)), high = ceil(d·ln(L/(β_slow·2π)) / (2 ln θ)),
    /// clamped to [0, d-1]; ramp = clamp((i-low)/(high-low), 0, 1); inv = inv/factor·ramp + inv·(1-ramp).
    /// </summary>
    public static float[] InverseFrequencies(int rotaryDims, double theta, YarnSettings? yarn)
    {
        if (rotaryDims <= 0 || rotaryDims % 2 != 0)
            throw new ArgumentException($"rotary dims must be even and positive, got {rotaryDims}", nameof(rotaryDims));
        int half = rotaryDims / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            // As the reference does it: float32 arange / dim, then base ** that, then 1 / that.
            float exponent = (float)(2 * i) / rotaryDims;
            inv[i] = 1f / (float)Math.Pow(theta, exponent);
        }
        if (yarn is null) return inv;

        double low = Math.Floor(CorrectionDim(yarn.BetaFast, rotaryDims, theta, yarn.OriginalContext));
        double high = Math.Ceiling(CorrectionDim(yarn.BetaSlow, rotaryDims, theta, yarn.OriginalContext));
        low = Math.Max(low, 0);
        high = Math.Min(high, rotaryDims - 1);
        if (low == high) high += 0.001; // HF's guard against a zero-width ramp
        for (int i = 0; i < half; i++)
        {
            float ramp = (float)Math.Clamp((i - low) / (high - low), 0.0, 1.0);
            inv[i] = inv[i] / (float)yarn.Factor * ramp + inv[i] * (1 - ramp);
        }
        return inv;
    }

    /// <summary>The pair index whose wavelength makes <paramref name="rotations"/> turns over L positions.</summary>
    static double CorrectionDim(double rotations, int dims, double theta, int originalContext) =>
        dims * Math.Log(originalContext / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));

    /// <summary>(qk_nope + qk_rope)^-0.5, times m² under YaRN.</summary>
    public static float SoftmaxScale(int qkHeadDim, YarnSettings? yarn)
    {
        double scale = 1.0 / Math.Sqrt(qkHeadDim);
        if (yarn is not null)
        {
            double m = yarn.AttentionMScale;
            scale *= m * m;
        }
        return (float)scale;
    }
}
