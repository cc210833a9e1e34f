using System.Diagnostics;
using Jevons.Models;

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
            var times = new List<double>();
            for (int s = 0; s < steps + 2; s++)
            {
                batch.Clear();
                for (int i = 0; i < c; i++) batch.Add(new BatchEntry(tokens[i], prompt + s, tables[i], LogitsWanted.Last));
                var sw = Stopwatch.StartNew();
                model.Forward(batch, cache, logits);
                if (s >= 2) times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            double med = times[times.Count / 2];
            Console.WriteLine($"{Path.GetFileName(path)} t{threads} concurrency {c}: median step {med:F1} ms (min {times[0]:F1}), {c * 1000 / med:F1} tok/s aggregate, {1000 / med:F1} tok/s per sequence");
        }
    }
}
