namespace Jevons.Inference;

/// <summary>Sampling settings, as llama.cpp and the OpenAI API name them.</summary>
public sealed record SamplerOptions
{
    /// <summary>0 (or below) means greedy: the highest logit, lowest id on ties.</summary>
    public float Temperature { get; init; } = 0.8f;
    /// <summary>Keep the K most likely tokens; 0 = off.</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Keep the smallest set whose probability reaches P; 1 = off.</summary>
    public float TopP { get; init; } = 0.95f;
    /// <summary>Drop tokens whose probability is below MinP × the top probability; 0 = off.</summary>
    public float MinP { get; init; } = 0.05f;
    /// <summary>Divides positive / multiplies negative logits of tokens seen in the window; 1 = off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>Subtracted once from the logit of every token seen in the window (OpenAI presence_penalty).</summary>
    public float PresencePenalty { get; init; }
    /// <summary>Subtracted per occurrence in the window (OpenAI frequency_penalty).</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>How many recent tokens the penalties look at; -1 = the whole sequence.</summary>
    public int PenaltyLastN { get; init; } = 64;
    /// <summary>
    /// Presence and frequency penalties count generated tokens only, as OpenAI defines them ("how often
    /// the token was sampled so far") and vLLM does; the repetition penalty still counts the prompt.
    /// False (the CLI, llama.cpp): all three count the window of prompt and output.
    /// </summary>
    public bool PenalizeOutputOnly { get; init; }
    /// <summary>Seed of this sampler's own generator: same seed, same output.</summary>
    public ulong Seed { get; init; } = 0x5EED;
    /// <summary>Added to the logit of each listed id before anything else (OpenAI logit_bias; -100 bans, +100 forces).</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    public static SamplerOptions Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Throws a one-line error naming the parameter when a value is out of range.</summary>
    public void Validate()
    {
        if (float.IsNaN(Temperature) || Temperature < 0) Bad("temperature", Temperature, ">= 0");
        if (TopK < 0) Bad("top-k", TopK, ">= 0");
        if (!(TopP > 0 && TopP <= 1)) Bad("top-p", TopP, "in (0, 1]");
        if (!(MinP >= 0 && MinP <= 1)) Bad("min-p", MinP, "in [0, 1]");
        if (!(RepetitionPenalty > 0)) Bad("repeat-penalty", RepetitionPenalty, "> 0");
        if (float.IsNaN(PresencePenalty) || PresencePenalty < -2 || PresencePenalty > 2) Bad("presence-penalty", PresencePenalty, "in [-2, 2]");
        if (float.IsNaN(FrequencyPenalty) || FrequencyPenalty < -2 || FrequencyPenalty > 2) Bad("frequency-penalty", FrequencyPenalty, "in [-2, 2]");
        if (LogitBias is not null)
            foreach (var (id, bias) in LogitBias)
            {
                if (id < 0) Bad("logit-bias", id, "a token id >= 0");
                if (float.IsNaN(bias) || bias < -100 || bias > 100) Bad($"logit-bias[{id}]", bias, "in [-100, 100]");
            }
        static void Bad(string name, object value, string range) =>
            JevonsException.Throw($"parameter '{name}' is {value}; it must be {range}");
    }
}

/// <summary>The log-probability of one token (OpenAI's logprobs entries).</summary>
public readonly record struct TokenLogprob(int Id, float Logprob);

/// <summary>
/// Picks the next token from a row of logits: logit bias, penalties, temperature, top-k, top-p,
/// min-p, then a draw from this sampler's own seeded generator. Buffers are allocated once per
/// vocabulary size.
/// </summary>
public sealed class Sampler
{
    readonly SamplerOptions _options;
    readonly Random _random;
    int[] _ids = [];
    float[] _probs = [];
    float[] _keys = [];
    readonly Dictionary<int, int> _counts = new();

    public Sampler(SamplerOptions options)
    {
        options.Validate();
        _options = options;
        _random = new Random(unchecked((int)(options.Seed ^ (options.Seed >> 32))));
    }

    public SamplerOptions Options => _options;

    /// <summary>The index of the largest value; the lowest index wins a tie. NaN never wins.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        float bestValue = float.NegativeInfinity;
        bool found = false;
        for (int i = 0; i < logits.Length; i++)
        {
            if (logits[i] > bestValue || (!found && !float.IsNaN(logits[i])))
            {
                best = i;
                bestValue = logits[i];
                found = true;
            }
        }
        return best;
    }

    /// <summary>
    /// Samples a token. <paramref name="logits"/> is modified: logit bias and penalties are applied in
    /// place (what <see cref="Logprobs"/> reads afterwards); temperature and truncation are not.
    /// </summary>
    /// <param name="history">The tokens so far (prompt and generated), for the penalties.</param>
    /// <param name="promptLength">How many of them are the prompt (for <see cref="SamplerOptions.PenalizeOutputOnly"/>).</param>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history, int promptLength = 0)
    {
        if (_options.LogitBias is { } bias)
            foreach (var (id, b) in bias)
                if ((uint)id < (uint)logits.Length) logits[id] += b;
        ApplyPenalties(logits, history, promptLength);
        var o = _options;
        if (o.Temperature <= 0) return ArgMax(logits);

        int n = logits.Length;
        if (_ids.Length != n)
        {
            _ids = new int[n];
            _probs = new float[n];
        }
        var ids = _ids.AsSpan();
        var probs = _probs.AsSpan();
        for (int i = 0; i < n; i++)
        {
            ids[i] = i;
            if (float.IsNaN(logits[i])) logits[i] = float.NegativeInfinity; // a NaN logit (a NaN weight) never wins
        }

        // Candidates sorted by logit, descending (ties: lower id first); top-k cuts the list.
        int count = n;
        if (o.TopK > 0 && o.TopK < n)
        {
            PartialSortDescending(logits, ids, o.TopK);
            count = o.TopK;
        }
        else
        {
            SortDescending(logits, ids[..count]);
        }

        float max = logits[ids[0]];
        if (!float.IsFinite(max)) return ids[0]; // all -inf, or some +inf: the best by the sort (lowest id on ties)
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            float p = MathF.Exp((logits[ids[i]] - max) / o.Temperature);
            probs[i] = p;
            sum += p;
        }
        for (int i = 0; i < count; i++) probs[i] = (float)(probs[i] / sum);

        if (o.MinP > 0)
        {
            float floor = probs[0] * o.MinP;
            int keep = 1;
            while (keep < count && probs[keep] >= floor) keep++;
            count = keep;
        }
        if (o.TopP < 1)
        {
            double cumulative = 0;
            int keep = 0;
            while (keep < count)
            {
                cumulative += probs[keep++];
                if (cumulative >= o.TopP) break;
            }
            count = Math.Max(1, keep);
        }

        double total = 0;
        for (int i = 0; i < count; i++) total += probs[i];
        double r = _random.NextDouble() * total;
        for (int i = 0; i < count; i++)
        {
            r -= probs[i];
            if (r < 0) return ids[i];
        }
        return ids[count - 1];
    }

    /// <summary>
    /// Log-probabilities as OpenAI reports them: log-softmax of <paramref name="logits"/> (the row after
    /// <see cref="Sample"/> applied bias and penalties; temperature and truncation do not enter), the
    /// chosen token's value and the <paramref name="top"/> most likely alternatives, best first
    /// (ties: lower id first).
    /// </summary>
    public static float Logprobs(ReadOnlySpan<float> logits, int chosen, Span<TokenLogprob> top)
    {
        float max = float.NegativeInfinity;
        foreach (var l in logits) if (l > max) max = l;
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        float logZ = max + (float)Math.Log(sum);
        int filled = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float l = logits[i];
            if (float.IsNaN(l)) continue;
            // Insertion into the small best-first list: a strictly greater logit moves ahead.
            int at = filled;
            while (at > 0 && l > logits[top[at - 1].Id]) at--;
            if (at >= top.Length) continue;
            int end = Math.Min(filled, top.Length - 1);
            for (int j = end; j > at; j--) top[j] = top[j - 1];
            top[at] = new TokenLogprob(i, l - logZ);
            if (filled < top.Length) filled++;
        }
        return logits[chosen] - logZ;
    }

    void ApplyPenalties(Span<float> logits, ReadOnlySpan<int> history, int promptLength)
    {
        var o = _options;
        if (o.RepetitionPenalty == 1 && o.PresencePenalty == 0 && o.FrequencyPenalty == 0) return;
        var window = o.PenaltyLastN < 0 || o.PenaltyLastN >= history.Length ? history : history[^o.PenaltyLastN..];
        if (window.IsEmpty) return;
        // Counts in the window; with PenalizeOutputOnly, negative counts mark prompt-only tokens:
        // they get the repetition penalty but no presence / frequency one.
        int outputFrom = o.PenalizeOutputOnly ? Math.Clamp(promptLength - (history.Length - window.Length), 0, window.Length) : 0;
        _counts.Clear();
        for (int i = 0; i < window.Length; i++)
        {
            int id = window[i];
            if ((uint)id >= (uint)logits.Length) continue;
            int c = _counts.GetValueOrDefault(id);
            if (i >= outputFrom) _counts[id] = Math.Max(c, 0) + 1;
            else if (c == 0) _counts[id] = -1;
        }
        foreach (var (id, c) in _counts)
        {
            ref float l = ref logits[id];
            if (o.RepetitionPenalty != 1) l = l > 0 ? l / o.RepetitionPenalty : l * o.RepetitionPenalty;
            if (c > 0) l -= o.PresencePenalty + o.FrequencyPenalty * c;
        }
    }

    static int Compare(ReadOnlySpan<float> logits, int a, int b)
    {
        int c = logits[b].CompareTo(logits[a]);
        return c != 0 ? c : a.CompareTo(b);
    }

    /// <summary>Sorts ids by logit, descending; ties keep the lower id first (deterministic).</summary>
    void SortDescending(ReadOnlySpan<float> logits, Span<int> ids)
    {
        if (_keys.Length < ids.Length) _keys = new float[logits.Length];
        var keys = _keys.AsSpan(0, ids.Length);
        for (int i = 0; i < ids.Length; i++) keys[i] = -logits[ids[i]];
        keys.Sort(ids);
        // Array.Sort is not stable: restore id order inside runs of equal logits.
        for (int i = 0; i < ids.Length;)
        {
            int j = i + 1;
            while (j < ids.Length && keys[j] == keys[i]) j++;
            if (j - i > 1) ids[i..j].Sort();
            i = j;
        }
    }

    /// <summary>Moves the k best ids to the front, sorted. O(n log k) with a bounded min-heap.</summary>
    void PartialSortDescending(ReadOnlySpan<float> logits, Span<int> ids, int k)
    {
        // Min-heap of the k best seen so far at ids[0..k).
        for (int i = 0; i < k; i++) SiftUp(logits, ids, i);
        for (int i = k; i < ids.Length; i++)
        {
            if (Compare(logits, ids[i], ids[0]) < 0)
            {
                ids[0] = ids[i];
                SiftDown(logits, ids, 0, k);
            }
        }
        SortDescending(logits, ids[..k]);
    }

    // Heap order: the "worst" candidate (greatest by Compare) at the root.
    static void SiftUp(ReadOnlySpan<float> logits, Span<int> h, int i)
    {
        while (i > 0)
        {
            int p = (i - 1) / 2;
            if (Compare(logits, h[i], h[p]) <= 0) break;
            (h[i], h[p]) = (h[p], h[i]);
            i = p;
        }
    }

    static void SiftDown(ReadOnlySpan<float> logits, Span<int> h, int i, int n)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, w = i;
            if (l < n && Compare(logits, h[l], h[w]) > 0) w = l;
            if (r < n && Compare(logits, h[r], h[w]) > 0) w = r;
            if (w == i) return;
            (h[i], h[w]) = (h[w], h[i]);
            i = w;
        }
    }
}
