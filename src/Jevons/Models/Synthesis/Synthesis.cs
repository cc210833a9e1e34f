using Jevons.Tokenization;

namespace Jevons.Models.Synthesis;

/// <summary>
/// A random-weight model: a <see cref="SynthPlan"/> and a seed. Every row of every tensor is drawn from its own
/// SplitMix64 stream seeded by (seed, key, row), so rows can be generated in any order and in parallel, a writer
/// never holds a whole model, and the GGUF and Hugging Face files of one seed hold the same numbers.
/// The writers are in SynthWriters.cs.
/// </summary>
public sealed partial class Synthesis
{
    SyntheticVocabulary? _vocabulary;

    public Synthesis(SynthPlan plan, ulong seed = 0)
    {
        Plan = plan;
        Seed = seed;
    }

    /// <summary>The model of a named preset (<see cref="SynthPresets"/>), or a one-line error listing the presets.</summary>
    public static Synthesis Create(string preset, ulong seed = 0) => new(SynthPresets.Require(preset).Plan(), seed);

    public SynthPlan Plan { get; }
    public ulong Seed { get; }

    /// <summary>The byte-level BPE vocabulary both layouts carry (built on first use).</summary>
    public SyntheticVocabulary Vocabulary => _vocabulary ??= SyntheticVocabulary.Create(Plan.VocabSize, Plan.PreTokenizer);

    /// <summary>Fills <paramref name="dst"/> (a whole number of rows) with rows firstRow, firstRow+1, ... of <paramref name="tensor"/>.</summary>
    public void FillRows(SynthTensor tensor, long firstRow, Span<float> dst)
    {
        int cols = checked((int)tensor.Columns);
        if (dst.Length % cols != 0)
            throw new ArgumentException($"{dst.Length} values is not a whole number of {cols}-value rows", nameof(dst));
        if (tensor.Values is { } fixedValues)
        {
            for (int r = 0; r < dst.Length / cols; r++)
                fixedValues.AsSpan(checked((int)((firstRow + r) * cols)), cols).CopyTo(dst.Slice(r * cols, cols));
            return;
        }
        (double mean, double std) = tensor.Kind switch
        {
            SynthKind.Embedding => (0.0, 1.0),
            SynthKind.Matrix => (0.0, 1.0 / Math.Sqrt(cols)),
            SynthKind.Output or SynthKind.Router => (0.0, 2.0 / Math.Sqrt(cols)),
            SynthKind.Norm => (1.0, 0.1),
            SynthKind.Bias => (0.0, 0.2),
            SynthKind.RouterBias => (0.0, 0.1),
            _ => throw new InvalidOperationException($"tensor '{tensor.Name}' of kind {tensor.Kind} has no values"),
        };
        long rowsPerKey = tensor.Rows / tensor.Keys.Length;
        for (int r = 0; r < dst.Length / cols; r++)
        {
            long row = firstRow + r;
            ulong key = Fnv1a(tensor.Keys[row / rowsPerKey]);
            var rng = new SplitMix64((Seed * 0xD1B54A32D192ED03UL) ^ key ^ ((ulong)(row % rowsPerKey) * 0x9E3779B97F4A7C15UL));
            var dstRow = dst.Slice(r * cols, cols);
            for (int i = 0; i < cols; i++) dstRow[i] = (float)(mean + std * rng.NextNormal());
        }
    }

    static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return h;
    }

    /// <summary>SplitMix64 with Box-Muller normals: small, fast, and the same on every platform.</summary>
    struct SplitMix64(ulong state)
    {
        ulong _state = state;
        double _spare = double.NaN;

        ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        double NextUniform() => ((Next() >> 11) + 0.5) * (1.0 / (1UL << 53)); // (0, 1)

        public double NextNormal()
        {
            if (!double.IsNaN(_spare)) { var s = _spare; _spare = double.NaN; return s; }
            double r = Math.Sqrt(-2 * Math.Log(NextUniform())), a = 2 * Math.PI * NextUniform();
            _spare = r * Math.Sin(a);
            return r * Math.Cos(a);
        }
    }
}
