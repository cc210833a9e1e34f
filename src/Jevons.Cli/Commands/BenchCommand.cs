using System.Diagnostics;
using System.Text.Json;

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
    ]);

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
        if (p > 0)
        {
            var prompt = Enumerable.Range(0, p).Select(_ => RandomId()).ToArray();
            results.Add(Measure($"pp{p}", p, r, c, () =>
            {
                state.Truncate(0);
                model.Forward(state, prompt, logits);
            }, warmup: () => { state.Truncate(0); model.Forward(state, prompt.AsSpan(0, Math.Min(p, 16)), logits); }));
        }
        if (n > 0)
        {
            int[] one = [0];
            results.Add(Measure($"tg{n}", n, r, c, () =>
            {
                state.Truncate(0);
                for (int i = 0; i < n; i++)
                {
                    one[0] = RandomId();
                    model.Forward(state, one, logits);
                }
            }, warmup: () => { state.Truncate(0); one[0] = RandomId(); model.Forward(state, one, logits); }));
        }
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
            }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        c.Out.WriteLine($"| model | size | params | threads | test | t/s (median ± stddev) | min..max |");
        c.Out.WriteLine($"| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var x in results)
            c.Out.WriteLine($"| {d.Architecture} | {Format.Bytes(d.WeightBytes)} | {Format.Count(d.TotalParameters)} | {threads} | {x.Test} | " +
                $"{x.MedianTokensPerSecond:F2} ± {x.StdDevTokensPerSecond:F2} | {x.MinTokensPerSecond:F2}..{x.MaxTokensPerSecond:F2} |");
        c.Out.WriteLine($"peak memory (working set): {Format.Bytes(peak)}; repetitions: {r}");
        if (bandwidth > 0)
            c.Out.WriteLine($"decode roofline: {Format.Bytes(bytesPerToken)} of weights per token / {bandwidth / 1e9:F1} GB/s measured read bandwidth = " +
                $"{roofline:F2} tok/s" + (tg is null ? "" : $"; tg reaches {100 * tg.MedianTokensPerSecond / roofline:F0}% of it"));
        return 0;
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
