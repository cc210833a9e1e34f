using System.Diagnostics;
using Jevons.Models;
using Jevons.Numerics.Simd;

namespace Jevons.Benchmarks;

/// <summary>
/// <c>quick-batch MODEL [concurrencies] [threads] [steps]</c>, e.g. <c>quick-batch /tmp/qwen15-q8.gguf 1,8 2 16</c>:
/// times one batched decode step (every sequence one token, context ~32) at each concurrency and prints the
/// median step time and aggregate tokens/s. A development timer on the engine's batch path (not the
/// scheduler's <c>jevons bench --concurrency</c>).
/// </summary>
public static class QuickBatch
{
    public static void Run(string[] args)
    {
        string path = args[1];
        var concurrencies = (args.Length > 2 ? args[2] : "1,8").Split(',').Select(int.Parse).ToArray();
        int threads = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
        int steps = args.Length > 4 ? int.Parse(args[4]) : 16;
        using var source = ModelLoader.Open(path);
        using var model = ModelRegistry.Create(source, new ModelOptions { Threads = threads });
        foreach (int c in concurrencies)
        {
            var times = DecodeSteps.Time(model, c, steps);
            times.Sort();
            double med = times[times.Count / 2];
            Console.WriteLine($"{Path.GetFileName(path)} t{threads} concurrency {c}: median step {med:F1} ms (min {times[0]:F1}), {c * 1000 / med:F1} tok/s aggregate, {1000 / med:F1} tok/s per sequence");
        }
    }
}

/// <summary>
/// <c>quick-step MODEL [concurrencies] [threads] [steps]</c>, e.g. <c>quick-step /tmp/qwen15-q8.gguf 1,8,16 1 4</c>: where a
/// batched decode step's time goes, without a profiler. Times one engine step at each concurrency (as
/// <c>quick-batch</c>), then every distinct weight matrix of the file (type × shape, with how many the model has)
/// as one <c>MatMul.Gemm</c> over that many rows, and prints each matrix's share of the step and the rest
/// (attention, norms, rope, embedding, sampling-free glue). Times are min of the rounds, wall and process CPU;
/// with 1 thread the CPU time is the work itself even on a loaded machine.
/// </summary>
public static class QuickStep
{
    public static void Run(string[] args)
    {
        string path = args[1];
        var concurrencies = (args.Length > 2 ? args[2] : "1,8,16").Split(',').Select(int.Parse).ToArray();
        int threads = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
        int steps = args.Length > 4 ? int.Parse(args[4]) : 4;
        using var source = ModelLoader.Open(path);
        using var model = ModelRegistry.Create(source, new ModelOptions { Threads = threads });
        using var pool = new Jevons.Numerics.Kernels.WorkerPool(threads, Jevons.Numerics.Simd.KernelDispatch.Default);

        // distinct matrices: the 2-D weights other than the embedding (the head is output.weight, or the embedding when tied)
        var groups = new Dictionary<string, (Jevons.Numerics.Linear W, int Count)>();
        var names = source.Weights.TensorNames.ToArray();
        bool tied = !names.Contains("output.weight") && !names.Contains("lm_head.weight");
        foreach (var name in names.OrderBy(x => x, StringComparer.Ordinal))
        {
            var t = source.Weights.Get(name);
            bool embed = name.Contains("token_embd") || name.Contains("embed_tokens");
            if (t.Rank != 2 || !name.EndsWith(".weight", StringComparison.Ordinal) || (embed && !tied)) continue;
            var w = Jevons.Numerics.Linear.FromTensor(t);
            string key = $"{t.Type} {w.OutFeatures}x{w.InFeatures}" + (embed || name.StartsWith("output", StringComparison.Ordinal) || name.StartsWith("lm_head", StringComparison.Ordinal) ? " (head)" : "");
            groups[key] = groups.TryGetValue(key, out var g) ? (g.W, g.Count + 1) : (w, 1);
        }

        const int blockSize = 16, prompt = 32;
        foreach (int c in concurrencies)
        {
            int blocksPer = (prompt + steps + 8 + blockSize - 1) / blockSize;
            var cache = model.CreatePagedCache(blockSize, c * blocksPer, KvType.F32);
            var tables = Enumerable.Range(0, c).Select(i => Enumerable.Range(i * blocksPer, blocksPer).ToArray()).ToArray();
            var batch = new ForwardBatch();
            var promptIds = Enumerable.Range(0, prompt).Select(i => (i * 31 + 7) % model.VocabSize).ToArray();
            for (int i = 0; i < c; i++) batch.Add(new BatchEntry(promptIds, 0, tables[i], LogitsWanted.Last));
            model.Forward(batch, cache, new float[c * model.VocabSize]);
            var tokens = Enumerable.Range(0, c).Select(i => new[] { i + 1 }).ToArray();
            var logits = new float[c * model.VocabSize];
            double stepWall = double.MaxValue, stepCpu = double.MaxValue;
            for (int s = 0; s < steps + 2; s++)
            {
                batch.Clear();
                for (int i = 0; i < c; i++) batch.Add(new BatchEntry(tokens[i], prompt + s, tables[i], LogitsWanted.Last));
                double c0 = QuickN.CpuMs();
                var sw = Stopwatch.StartNew();
                model.Forward(batch, cache, logits);
                if (s >= 2) { stepWall = Math.Min(stepWall, sw.Elapsed.TotalMilliseconds); stepCpu = Math.Min(stepCpu, QuickN.CpuMs() - c0); }
            }
            Console.WriteLine($"{Path.GetFileName(path)} t{threads} {c} sequences: step min {stepWall:F1} ms wall, {stepCpu:F1} ms cpu ({c * 1000 / stepWall:F1} tok/s aggregate)");
            double sumWall = 0, sumCpu = 0;
            foreach (var (key, (w, count)) in groups.OrderByDescending(g => (long)g.Value.W.OutFeatures * g.Value.W.InFeatures * g.Value.Count))
            {
                var x = new float[(long)c * w.InFeatures];
                var rng = new Random(3);
                for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
                var y = new float[(long)c * w.OutFeatures];
                double wall = double.MaxValue, cpu = double.MaxValue;
                for (int r = 0; r < steps + 2; r++)
                {
                    double c0 = QuickN.CpuMs();
                    var sw = Stopwatch.StartNew();
                    Jevons.Numerics.Kernels.MatMul.Gemm(w, x, y, c, pool);
                    if (r >= 2) { wall = Math.Min(wall, sw.Elapsed.TotalMilliseconds); cpu = Math.Min(cpu, QuickN.CpuMs() - c0); }
                }
                sumWall += wall * count;
                sumCpu += cpu * count;
                Console.WriteLine($"  {key,-28} x{count,-3} {wall:F3} ms wall {cpu:F3} ms cpu per call; per step {wall * count,7:F1} ms wall ({100 * wall * count / stepWall,3:F0}%) {cpu * count,7:F1} ms cpu ({100 * cpu * count / stepCpu,3:F0}%)");
            }
            Console.WriteLine($"  {"all matrices",-33} per step {sumWall,7:F1} ms wall ({100 * sumWall / stepWall,3:F0}%) {sumCpu,7:F1} ms cpu ({100 * sumCpu / stepCpu,3:F0}%); the rest {stepWall - sumWall:F1} ms wall, {stepCpu - sumCpu:F1} ms cpu");
        }
    }
}

/// <summary>
/// <c>quick-profile MODEL [concurrencies] [threads] [steps]</c>, e.g. <c>quick-profile /tmp/v2lite-q8.gguf 1,8,16 2 8</c>:
/// one batched decode step at each concurrency (as <c>quick-batch</c>) with the decoder's <see cref="StepProfile"/> on,
/// printing the mean wall milliseconds per step of every phase (attention projections, attention, MoE router,
/// expert gate/up and down loops, head, ...) beside the step's mean and median.
/// </summary>
public static class QuickProfile
{
    public static void Run(string[] args)
    {
        string path = args[1];
        var concurrencies = (args.Length > 2 ? args[2] : "1,8").Split(',').Select(int.Parse).ToArray();
        int threads = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
        int steps = args.Length > 4 ? int.Parse(args[4]) : 8;
        using var source = ModelLoader.Open(path);
        using var model = ModelRegistry.Create(source, new ModelOptions { Threads = threads });
        var decoder = (DecoderModel)model;
        foreach (int c in concurrencies)
        {
            var profile = new StepProfile();
            var times = DecodeSteps.Time(model, c, steps, s => decoder.Profile = s >= 2 ? profile : null);
            decoder.Profile = null;
            times.Sort();
            double mean = times.Average(), sum = 0;
            Console.WriteLine($"{Path.GetFileName(path)} t{threads} {c} sequences: step mean {mean:F1} ms, median {times[times.Count / 2]:F1} ms ({c * 1000 / mean:F1} tok/s aggregate)");
            foreach (var phase in Enum.GetValues<StepPhase>())
            {
                double ms = profile.Milliseconds(phase) / profile.Passes;
                sum += ms;
                if (ms > 0) Console.WriteLine($"  {phase,-22} {ms,8:F2} ms ({100 * ms / mean,4:F1}%)");
            }
            Console.WriteLine($"  {"(untimed)",-22} {mean - sum,8:F2} ms");
        }
    }
}

/// <summary>
/// The decode loop <c>quick-batch</c> and <c>quick-profile</c> time: c sequences prefilled with the same 32-token
/// prompt on a fresh F32 paged cache, then steps + 2 one-token steps of all of them (the first two warm up).
/// </summary>
static class DecodeSteps
{
    const int BlockSize = 16, Prompt = 32;

    /// <summary>Wall milliseconds of each timed step; <paramref name="beforeStep"/> runs before every step (its index).</summary>
    public static List<double> Time(Model model, int c, int steps, Action<int>? beforeStep = null)
    {
        int blocksPer = (Prompt + steps + 8 + BlockSize - 1) / BlockSize;
        var cache = model.CreatePagedCache(BlockSize, c * blocksPer, KvType.F32);
        var tables = Enumerable.Range(0, c).Select(i => Enumerable.Range(i * blocksPer, blocksPer).ToArray()).ToArray();
        var batch = new ForwardBatch();
        var promptIds = Enumerable.Range(0, Prompt).Select(i => (i * 31 + 7) % model.VocabSize).ToArray();
        for (int i = 0; i < c; i++) batch.Add(new BatchEntry(promptIds, 0, tables[i], LogitsWanted.Last));
        model.Forward(batch, cache, new float[c * model.VocabSize]);
        var tokens = Enumerable.Range(0, c).Select(i => new[] { i + 1 }).ToArray();
        var logits = new float[c * model.VocabSize];
        var times = new List<double>();
        for (int s = 0; s < steps + 2; s++)
        {
            batch.Clear();
            for (int i = 0; i < c; i++) batch.Add(new BatchEntry(tokens[i], Prompt + s, tables[i], LogitsWanted.Last));
            beforeStep?.Invoke(s);
            var sw = Stopwatch.StartNew();
            model.Forward(batch, cache, logits);
            if (s >= 2) times.Add(sw.Elapsed.TotalMilliseconds);
        }
        return times;
    }
}
