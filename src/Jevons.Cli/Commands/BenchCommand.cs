using System.Diagnostics;
using System.Text.Json;
using Jevons.Inference;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons bench`: llama-bench style prompt-processing (pp) and text-generation (tg) throughput,
/// median and spread over repeats, with peak memory.
/// </summary>
sealed class BenchCommand : ICommand
{
    public CommandSpec Spec { get; } = new("bench", "measure prompt processing and generation tokens/s (llama-bench style)",
    [
        Common.Model,
        new("--n-prompt", "prompt tokens for the pp test, 0 = skip (default 512)", "N", "-p"),
        new("--n-gen", "generated tokens for the tg test, 0 = skip (default 128)", "N", "-n"),
        new("--repetitions", "repeats of each test (default 5)", "N", "-r"),
        Common.Threads,
        new("--json", "print the results as JSON"),
        new("--no-roofline", "skip the memory-bandwidth measurement"),
        new("--concurrency", "also run N streams at once through the engine, for each N of a list: 1,2,4,8,16 (each: an --n-prompt prompt, --n-gen tokens)", "LIST"),
        new("--identical-streams", "with --concurrency: every stream gets the same prompt (so, greedy, the same tokens), the workload llama-batched-bench runs (it feeds token 0 to all its sequences); on a MoE model the streams then route to the same experts"),
        new("--shared-prefix", "also time a prompt sharing N tokens with the one before it: cold vs prefix-cached time to first token (prompts of --n-prompt tokens when that is more than N, else N + 16)", "N"),
        new("--profile", "after the timed repetitions, run each test once more with the decoder timing its phases (embedding, norms, projections, cache writes, attention, experts, head) and print where the time goes"),
        .. Common.Engine,
    ]);

    public sealed record ConcurrencyResult(int Sequences, double AggregateTokensPerSecond, double DecodeTokensPerSecond, double PerStreamTokensPerSecond, double TimeToFirstTokenMs, int DistinctCompletions);
    public sealed record SharedPrefixResult(int Tokens, int PromptTokens, double ColdTimeToFirstTokenMs, double CachedTimeToFirstTokenMs, int CachedTokens);

    public sealed record Result(string Test, int Tokens, double MedianTokensPerSecond, double StdDevTokensPerSecond,
        double MinTokensPerSecond, double MaxTokensPerSecond, int Repetitions);

    public int Run(ParsedArgs a, CliContext c)
    {
        int p = a.GetInt("--n-prompt", 512, 0), n = a.GetInt("--n-gen", 128, 0), r = a.GetInt("--repetitions", 5, 1);
        int threads = a.GetInt("--threads", Environment.ProcessorCount, 1, 1024);
        using var loaded = Common.Load(a, c, tokenizer: false);
        var model = loaded.Model;
        var d = model.Description;
        int ctx = Math.Max(p, n) + 1;
        if (d.ContextLength > 0 && ctx > d.ContextLength)
            throw new JevonsException($"bench needs {ctx} tokens of context; the model holds {d.ContextLength}");
        var rng = new Random(42);
        var state = model.CreateState(ctx);
        var logits = new float[model.VocabSize];
        int RandomId() => rng.Next(model.VocabSize);

        var results = new List<Result>();
        var profiles = new List<(string Test, int Tokens, double TotalMs, Jevons.Models.StepProfile Profile)>();
        var decoder = model as Jevons.Models.DecoderModel;
        if (a.Has("--profile") && decoder is null) throw new JevonsException($"bench: --profile needs a decoder model; {d.Architecture} has no phase timing");
        void Profile(string test, int tokens, Action body)
        {
            if (!a.Has("--profile")) return;
            var profile = new Jevons.Models.StepProfile();
            decoder!.Profile = profile;
            var w = Stopwatch.StartNew();
            try { body(); }
            finally { decoder.Profile = null; }
            profiles.Add((test, tokens, w.Elapsed.TotalMilliseconds, profile));
        }
        if (p > 0)
        {
            var prompt = Enumerable.Range(0, p).Select(_ => RandomId()).ToArray();
            void Prefill()
            {
                state.Truncate(0);
                model.Forward(state, prompt, logits);
            }
            results.Add(Measure($"pp{p}", p, r, c, Prefill,
                warmup: () => { state.Truncate(0); model.Forward(state, prompt.AsSpan(0, Math.Min(p, 16)), logits); }));
            Profile($"pp{p}", p, Prefill);
        }
        if (n > 0)
        {
            int[] one = [0];
            void Generate()
            {
                state.Truncate(0);
                for (int i = 0; i < n; i++)
                {
                    one[0] = RandomId();
                    model.Forward(state, one, logits);
                }
            }
            results.Add(Measure($"tg{n}", n, r, c, Generate,
                warmup: () => { state.Truncate(0); one[0] = RandomId(); model.Forward(state, one, logits); }));
            Profile($"tg{n}", n, Generate);
        }
        var levels = a.Get("--concurrency") is string list ? ParseLevels(list) : [];
        bool identical = a.Has("--identical-streams");
        if (identical && levels.Length == 0) throw new JevonsException("bench: --identical-streams goes with --concurrency");
        var concurrency = levels.Select(level => Concurrency(a, c, loaded, level, Math.Max(p, 1), Math.Max(n, 1), identical, rng)).ToList();
        int shared = a.GetInt("--shared-prefix", 0, 0);
        var sharedPrefix = shared > 0 ? SharedPrefix(a, c, loaded, shared, p > shared ? p : shared + 16, rng) : null;
        long peak = Process.GetCurrentProcess().PeakWorkingSet64;
        // Decode roofline: bytes of weights a token reads / measured read bandwidth.
        double bandwidth = a.Has("--no-roofline") ? 0 : MemoryBandwidth.Measure(threads);
        long bytesPerToken = d.TotalParameters > 0 ? (long)((double)d.WeightBytes * d.ActiveParameters / d.TotalParameters) : d.WeightBytes;
        double roofline = bandwidth > 0 ? bandwidth / bytesPerToken : 0;
        var tg = results.FirstOrDefault(x => x.Test.StartsWith("tg", StringComparison.Ordinal));
        if (a.Has("--json"))
        {
            c.Out.WriteLine(JsonSerializer.Serialize(new
            {
                model = loaded.Source.Path,
                architecture = d.Architecture,
                parameters = d.TotalParameters,
                active_parameters = d.ActiveParameters,
                weight_bytes = d.WeightBytes,
                threads,
                peak_working_set_bytes = peak,
                memory_bandwidth_bytes_per_second = bandwidth,
                weight_bytes_per_token = bytesPerToken,
                decode_roofline_tps = roofline,
                decode_roofline_fraction = tg is null || roofline == 0 ? 0 : tg.MedianTokensPerSecond / roofline,
                results = results.Select(x => new
                {
                    test = x.Test, tokens = x.Tokens, median_tps = x.MedianTokensPerSecond, stddev_tps = x.StdDevTokensPerSecond,
                    min_tps = x.MinTokensPerSecond, max_tps = x.MaxTokensPerSecond, repetitions = x.Repetitions,
                }),
                profile = profiles.Count == 0 ? null : profiles.Select(x => new
                {
                    test = x.Test, passes = x.Profile.Passes, total_ms = x.TotalMs,
                    phases = Enum.GetValues<Jevons.Models.StepPhase>().ToDictionary(ph => ph.ToString(), ph => x.Profile.Milliseconds(ph)),
                }),
                identical_streams = levels.Length == 0 ? (bool?)null : identical,
                concurrency = levels.Length == 0 ? null : concurrency.Select(x => new
                {
                    sequences = x.Sequences, aggregate_tps = x.AggregateTokensPerSecond, decode_tps = x.DecodeTokensPerSecond, per_stream_tps = x.PerStreamTokensPerSecond, ttft_ms = x.TimeToFirstTokenMs,
                    distinct_completions = x.DistinctCompletions,
                }),
                shared_prefix = sharedPrefix is null ? null : new
                {
                    tokens = sharedPrefix.Tokens, prompt_tokens = sharedPrefix.PromptTokens, cold_ttft_ms = sharedPrefix.ColdTimeToFirstTokenMs,
                    cached_ttft_ms = sharedPrefix.CachedTimeToFirstTokenMs, cached_tokens = sharedPrefix.CachedTokens,
                },
            }, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));
            return 0;
        }
        Terminal.WriteTable(c, ["model", "size", "params", "threads", "test", "t/s (median ± stddev)", "min..max"],
            [false, true, true, true, true, true, true],
            results.Select(x => new[]
            {
                d.Architecture.ToString(), Format.Bytes(d.WeightBytes), Format.Count(d.TotalParameters), threads.ToString(), x.Test,
                $"{x.MedianTokensPerSecond:F2} ± {x.StdDevTokensPerSecond:F2}", $"{x.MinTokensPerSecond:F2}..{x.MaxTokensPerSecond:F2}",
            }));
        foreach (var (test, tokens, totalMs, profile) in profiles)
        {
            c.Out.WriteLine();
            c.Out.WriteLine($"profile of {test}: {profile.Passes} passes, {totalMs:F2} ms ({tokens / totalMs * 1000:F1} tok/s with the timers on)");
            var phases = Enum.GetValues<Jevons.Models.StepPhase>();
            double timed = phases.Sum(profile.Milliseconds);
            var rows = phases.Where(ph => profile.Milliseconds(ph) > 0)
                .Select(ph => new[] { ph.ToString(), $"{profile.Milliseconds(ph) / profile.Passes * 1000:F1}", $"{100 * profile.Milliseconds(ph) / totalMs:F1}%" })
                .Append(["(outside the phases)", $"{(totalMs - timed) / profile.Passes * 1000:F1}", $"{100 * (totalMs - timed) / totalMs:F1}%"]);
            Terminal.WriteTable(c, ["phase", "µs per pass", "share"], [false, true, true], rows);
        }
        if (concurrency.Count > 0)
        {
            c.Out.WriteLine();
            if (identical) c.Out.WriteLine("identical streams: one prompt for all, as llama-batched-bench");
            Terminal.WriteTable(c, ["streams", "prompt", "gen", "aggregate t/s", "decode t/s (all streams)", "per-stream t/s", "TTFT ms", "distinct completions"], [true, true, true, true, true, true, true, true],
                concurrency.Select(x => new[]
                {
                    x.Sequences.ToString(), Math.Max(p, 1).ToString(), Math.Max(n, 1).ToString(),
                    $"{x.AggregateTokensPerSecond:F2}", $"{x.DecodeTokensPerSecond:F2}", $"{x.PerStreamTokensPerSecond:F2}", $"{x.TimeToFirstTokenMs:F1}",
                    x.DistinctCompletions.ToString(),
                }));
        }
        if (sharedPrefix is { } sp)
            c.Out.WriteLine($"shared prefix of {sp.Tokens} tokens (prompts of {sp.PromptTokens}): TTFT {sp.ColdTimeToFirstTokenMs:F1} ms cold, {sp.CachedTimeToFirstTokenMs:F1} ms with {sp.CachedTokens} tokens from the prefix cache ({sp.ColdTimeToFirstTokenMs / sp.CachedTimeToFirstTokenMs:F1}x)");
        c.Out.WriteLine($"peak memory (working set): {Format.Bytes(peak)}; repetitions: {r}");
        if (bandwidth > 0)
            c.Out.WriteLine($"decode roofline: {Format.Bytes(bytesPerToken)} of weights per token / {bandwidth / 1e9:F1} GB/s measured read bandwidth = " +
                $"{roofline:F2} tok/s" + (tg is null ? "" : $"; tg reaches {100 * tg.MedianTokensPerSecond / roofline:F0}% of it"));
        return 0;
    }

    static int[] ParseLevels(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var levels = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out levels[i]) || levels[i] < 1 || levels[i] > 1024)
                throw new JevonsException($"--concurrency '{list}': expected stream counts from 1 to 1024 like 1,2,4,8,16");
        return levels.Length > 0 ? levels : throw new JevonsException($"--concurrency '{list}': expected stream counts like 1,2,4,8,16");
    }

    /// <summary>
    /// llama-batched-bench style: <paramref name="streams"/> requests with distinct random prompts (or, with
    /// <paramref name="identical"/>, one random prompt for all: llama-batched-bench's own workload, whose
    /// sequences all read token 0, so a MoE model routes them all to the same experts) submitted
    /// at once. Distinct completions counts the different token sequences the streams generated (greedy: 1 for
    /// identical streams, which also shows the batch gives every stream the bits of one). TTFT is the mean time from submission to a stream's first token; per-stream t/s is the mean
    /// decode rate after it; aggregate t/s is every stream's decode tokens over the span from the first
    /// first-token to the last token (so it includes the prefill steps of the streams admitted later);
    /// decode t/s counts only the tokens after the last stream's first token, over the time from then to the
    /// last token: every prompt is processed by then, which is what llama-batched-bench's S_TG measures.
    /// </summary>
    static ConcurrencyResult Concurrency(ParsedArgs a, CliContext c, Jevons.Models.LoadedModel loaded, int streams, int promptTokens, int genTokens, bool identical, Random rng)
    {
        using var engine = Common.CreateEngine(a, c, loaded, promptTokens + genTokens, streams);
        int[] RandomPrompt() => Enumerable.Range(0, promptTokens).Select(_ => rng.Next(loaded.Model.VocabSize)).ToArray();
        var shared = identical ? RandomPrompt() : null;
        var prompts = Enumerable.Range(0, streams).Select(_ => shared ?? RandomPrompt()).ToArray();
        var clock = Stopwatch.StartNew();
        var tasks = prompts.Select(prompt =>
        {
            var request = new GenerationRequest { Prompt = prompt, MaxTokens = genTokens, IgnoreEos = true, Sampling = SamplerOptions.Greedy };
            return Task.Run(async () =>
            {
                var times = new List<double>(genTokens);
                var ids = new List<int>(genTokens);
                await foreach (var e in engine.GenerateAsync(request, c.Cancel).ConfigureAwait(false))
                {
                    times.Add(clock.Elapsed.TotalSeconds);
                    ids.Add(e.Id);
                }
                return (Times: times, Ids: string.Join(",", ids));
            });
        }).ToArray();
        var done = Task.WhenAll(tasks).GetAwaiter().GetResult();
        int distinct = done.Select(x => x.Ids).Distinct(StringComparer.Ordinal).Count();
        var results = done.Select(x => x.Times).Where(x => x.Count > 0).ToArray();
        if (results.Length == 0) return new ConcurrencyResult(streams, 0, 0, 0, 0, distinct);
        double firstStart = results.Min(x => x[0]), lastStart = results.Max(x => x[0]), end = results.Max(x => x[^1]);
        int decoded = results.Sum(x => x.Count - 1);
        int steady = results.Sum(x => x.Count(time => time > lastStart));
        double perStream = results.Average(x => x.Count > 1 ? (x.Count - 1) / Math.Max(x[^1] - x[0], 1e-9) : 0);
        var result = new ConcurrencyResult(streams, decoded / Math.Max(end - firstStart, 1e-9), steady / Math.Max(end - lastStart, 1e-9),
            perStream, results.Average(x => x[0]) * 1000, distinct);
        c.Error.WriteLine($"  {streams} streams: {result.AggregateTokensPerSecond:F2} tok/s aggregate, {result.DecodeTokensPerSecond:F2} tok/s decode with all streams running, " +
            $"{result.PerStreamTokensPerSecond:F2} per stream, TTFT {result.TimeToFirstTokenMs:F1} ms");
        return result;
    }

    /// <summary>Two requests sharing <paramref name="shared"/> leading tokens (16 own tokens each), one at a time: cold, then cached.</summary>
    /// <summary>Two prompts of <paramref name="length"/> tokens, the first <paramref name="shared"/> the same: time to first token of each.</summary>
    static SharedPrefixResult SharedPrefix(ParsedArgs a, CliContext c, Jevons.Models.LoadedModel loaded, int shared, int length, Random rng)
    {
        int vocab = loaded.Model.VocabSize;
        var prefix = Enumerable.Range(0, shared).Select(_ => rng.Next(vocab)).ToArray();
        int[] Prompt() => [.. prefix, .. Enumerable.Range(0, length - shared).Select(_ => rng.Next(vocab))];
        using var engine = Common.CreateEngine(a, c, loaded, length + 1, 2);
        (double Ms, int Cached) FirstToken(int[] prompt)
        {
            var clock = Stopwatch.StartNew();
            TokenEvent? first = null;
            Common.Consume(engine.GenerateAsync(new GenerationRequest { Prompt = prompt, MaxTokens = 1, IgnoreEos = true, Sampling = SamplerOptions.Greedy }, c.Cancel),
                e => first ??= e);
            return (clock.Elapsed.TotalMilliseconds, first!.Usage.CachedPromptTokens);
        }
        var cold = FirstToken(Prompt());
        var cached = FirstToken(Prompt());
        var result = new SharedPrefixResult(shared, length, cold.Ms, cached.Ms, cached.Cached);
        c.Error.WriteLine($"  shared prefix {shared} of {length}: TTFT {result.ColdTimeToFirstTokenMs:F1} ms cold, {result.CachedTimeToFirstTokenMs:F1} ms cached ({result.CachedTokens} tokens, {result.ColdTimeToFirstTokenMs / result.CachedTimeToFirstTokenMs:F1}x)");
        return result;
    }

    static Result Measure(string test, int tokens, int repetitions, CliContext c, Action body, Action warmup)
    {
        warmup();
        var rates = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            c.Cancel.ThrowIfCancellationRequested();
            var w = Stopwatch.StartNew();
            body();
            rates[i] = tokens / w.Elapsed.TotalSeconds;
            c.Error.WriteLine($"  {test} run {i + 1}/{repetitions}: {rates[i]:F2} tok/s");
        }
        Array.Sort(rates);
        double median = repetitions % 2 == 1 ? rates[repetitions / 2] : (rates[repetitions / 2 - 1] + rates[repetitions / 2]) / 2;
        double mean = rates.Average();
        double sd = repetitions > 1 ? Math.Sqrt(rates.Sum(v => (v - mean) * (v - mean)) / (repetitions - 1)) : 0;
        return new Result(test, tokens, median, sd, rates[0], rates[^1], repetitions);
    }
}

/// <summary>Measures sustained memory read bandwidth: threads summing disjoint slices of a buffer far larger than the caches.</summary>
static class MemoryBandwidth
{
    public static double Measure(int threads, long bytes = 1L << 30)
    {
        int n = (int)(bytes / sizeof(float));
        var buffer = GC.AllocateUninitializedArray<float>(n);
        buffer.AsSpan().Fill(1f);
        double best = 0;
        for (int rep = 0; rep < 3; rep++)
        {
            var w = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                int start = (int)((long)n * t / threads), end = (int)((long)n * (t + 1) / threads);
                System.Numerics.Tensors.TensorPrimitives.Sum(buffer.AsSpan(start, end - start));
            });
            best = Math.Max(best, bytes / w.Elapsed.TotalSeconds);
        }
        return best;
    }
}
