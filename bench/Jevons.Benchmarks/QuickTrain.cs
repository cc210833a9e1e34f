using System.Diagnostics;
using Jevons.Tokenization;
using Jevons.Training;
using Jevons.Training.Autograd;
using Jevons.Training.Tasks;

namespace Jevons.Benchmarks;

/// <summary>
/// Training throughput on the real SFT data, as `jevons train sft --preset tiny-r1 --seq 768 --batch-tokens 2048`
/// trains: <c>quick-train [steps] [threads] [examples]</c>. The arithmetic task's tokenizer and examples (seed 1),
/// then steps with the process's CPU time (user + sys) measured per step beside the wall clock, so a run on a
/// shared machine still compares: positions per CPU-second is what the change buys, whoever else is running.
/// <c>quick-train profile [steps]</c>: one thread, thread CPU time per tape op (forward and backward), the
/// optimizer and the rest of the step.
/// </summary>
public static unsafe class QuickTrain
{
    [System.Runtime.InteropServices.DllImport("libc")]
    static extern int clock_gettime(int clock, long* ts);

    /// <summary>CLOCK_THREAD_CPUTIME_ID in ns.</summary>
    static long ThreadCpuNs()
    {
        long* ts = stackalloc long[2];
        clock_gettime(3, ts);
        return ts[0] * 1_000_000_000 + ts[1];
    }

    public static void Run(string[] args)
    {
        if (args.Length > 1 && args[1] == "profile")
        {
            Profile(args.Length > 2 ? int.Parse(args[2]) : 10);
            return;
        }
        if (args.Length > 1 && args[1] == "gemm")
        {
            Gemm(args.Length > 2 ? int.Parse(args[2]) : 1);
            return;
        }
        int steps = args.Length > 1 ? int.Parse(args[1]) : 20;
        int threads = args.Length > 2 ? int.Parse(args[2]) : Environment.ProcessorCount;
        int examples = args.Length > 3 ? int.Parse(args[3]) : 2000;
        using var trainer = Setup(steps, threads, examples);
        for (int i = 0; i < 2; i++) trainer.TrainStep(); // JIT, first allocations
        var process = Process.GetCurrentProcess();
        long positions = 0;
        double cpu = 0, wall = 0, sys = 0;
        long gcBefore = GC.CollectionCount(0);
        long allocBefore = GC.GetTotalAllocatedBytes();
        string losses = "";
        for (int s = 0; s < steps; s++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var sys0 = process.PrivilegedProcessorTime;
            var clock = Stopwatch.StartNew();
            var r = trainer.TrainStep();
            wall += clock.Elapsed.TotalSeconds;
            process.Refresh();
            cpu += (process.TotalProcessorTime - cpu0).TotalSeconds;
            sys += (process.PrivilegedProcessorTime - sys0).TotalSeconds;
            positions += r.Tokens;
            if (s < 3 || s == steps - 1) losses += $" {r.Step}:{r.Loss:R}";
        }
        Console.WriteLine($"quick-train: {steps} steps, {positions / (double)steps:0} positions/step; CPU {cpu / steps * 1000:0} ms/step (sys {sys / steps * 1000:0}) " +
            $"({positions / cpu:0} positions per CPU-s, ×{threads} threads = {positions / cpu * threads:0}/s if the cores were ours); " +
            $"wall {wall / steps * 1000:0} ms/step ({positions / wall:0} positions/s)");
        Console.WriteLine($"quick-train: {(GC.GetTotalAllocatedBytes() - allocBefore) / steps / 1e6:0} MB allocated/step, {GC.CollectionCount(0) - gcBefore} gen0 GCs; losses{losses}");
    }

    const int Seq = 768, BatchTokens = 2048;

    static Trainer Setup(int steps, int threads, int examples)
    {
        var dir = Path.Combine(Path.GetTempPath(), "jevons-quick-train");
        var tasks = new[] { ReasoningTasks.Get("arithmetic") };
        var tokenizer = TaskTokenizer.Train(Path.Combine(dir, "tokenizer"), tasks, 1024, seed: 1, modelMaxLength: 1024);
        var data = SftDataset.Build(tokenizer, [new TaskMix(tasks[0], 1, null)], examples, 1, Seq + 1, ChatFormat.For(tokenizer))
            .Select(e => TrainingExample.FromBools(e.Ids, e.LossMask)).ToList();
        var config = TinyDeepSeekConfig.Preset("tiny-r1", tokenizer.VocabSize);
        var options = new TrainOptions { Steps = steps + 2, MaxSequence = Seq, BatchTokens = BatchTokens, Threads = threads, Seed = 1, WarmupSteps = 1 };
        Console.WriteLine($"quick-train: tiny-r1 vocab {config.VocabSize}, {data.Count} examples, ≤{BatchTokens} positions per step, {threads} threads");
        return new Trainer(new TinyDeepSeek(config, new TrainRandom(1)), data, options);
    }

    /// <summary>The step of <see cref="Trainer.TrainStep"/> in its phases on one thread, each op timed on the tape.</summary>
    static void Profile(int steps)
    {
        using var trainer = Setup(steps, 1, 2000);
        for (int i = 0; i < 2; i++) trainer.TrainStep();
        var tape = trainer.Tape;
        var profile = new TapeProfile(ThreadCpuNs);
        double zero = 0, forward = 0, backward = 0, optimizer = 0;
        long positions = 0;
        for (int s = 0; s < steps; s++)
        {
            long t0 = ThreadCpuNs();
            trainer.Optimizer.ZeroGradients();
            var batch = trainer.NextBatch();
            long t1 = ThreadCpuNs();
            tape.Profile = profile;
            var loss = trainer.Model.Loss(tape, batch, out _);
            long t2 = ThreadCpuNs();
            tape.Backward(loss);
            tape.Profile = null;
            long t3 = ThreadCpuNs();
            trainer.Optimizer.ClipGradients(1.0);
            trainer.Optimizer.Update(1e-3f);
            long t4 = ThreadCpuNs();
            zero += t1 - t0; forward += t2 - t1; backward += t3 - t2; optimizer += t4 - t3;
            positions += batch.Tokens;
        }
        double total = zero + forward + backward + optimizer;
        Console.WriteLine($"quick-train profile: {steps} steps, {positions / (double)steps:0} positions/step, 1 thread: {total / steps / 1e6:0} CPU ms/step ({positions / (total / 1e9):0} positions per CPU-s)");
        void Line(string what, double ns) => Console.WriteLine($"  {what,-28} {ns / steps / 1e6,8:0.0} ms {ns / total * 100,6:0.0}%");
        var entries = profile.Entries.ToList();
        Line("zero grads + batch", zero);
        Line("forward (all)", forward);
        Line("backward (all)", backward);
        Line("clip + AdamW", optimizer);
        Line("forward outside ops", forward - entries.Where(e => e.Forward).Sum(e => (double)e.Time));
        Line("backward outside ops", backward - entries.Where(e => !e.Forward).Sum(e => (double)e.Time));
        foreach (var e in entries) Line($"{e.Op} {(e.Forward ? "fwd" : "bwd")} ×{e.Calls / steps}", e.Time);
    }

    /// <summary>
    /// tiny-r1's matrix products at 2048 positions (512 per routed expert), each as the forward, dX and dW
    /// products of Tape.MatMul, with how often a step runs it: GFLOP/s per shape and the step's total.
    /// </summary>
    static void Gemm(int threads)
    {
        (string Name, int Rows, int Out, int In, int Count)[] shapes =
        [
            ("q_a", 2048, 96, 256, 5), ("q_b", 2048, 192, 96, 5), ("kv_a", 2048, 80, 256, 5), ("kv_b", 2048, 256, 64, 5),
            ("o", 2048, 256, 128, 5), ("dense gate/up", 2048, 768, 256, 2), ("dense down", 2048, 256, 768, 1),
            ("expert gate/up", 512, 192, 256, 64), ("expert down", 512, 256, 192, 32), ("shared gate/up", 2048, 192, 256, 8),
            ("shared down", 2048, 256, 192, 4), ("router", 2048, 8, 256, 4), ("head", 2048, 298, 256, 2), ("eh_proj", 2048, 256, 512, 1),
        ];
        using var pool = new Jevons.Numerics.Kernels.WorkerPool(threads);
        var rng = new TrainRandom(3);
        double total = 0, flops = 0;
        Console.WriteLine($"quick-train gemm: {threads} threads, {pool.Path}; per shape: forward / dX / dW ms and GFLOP/s (thread CPU time, best of 9; 1 thread runs inline on this thread)");
        float[] Random(int count)
        {
            var v = new float[count];
            for (int i = 0; i < count; i++) v[i] = (float)rng.NextGaussian();
            return v;
        }
        foreach (var (name, rows, outF, inF, count) in shapes)
        {
            float[] x = Random(rows * inF), w = Random(outF * inF), y = new float[rows * outF], dy = Random(rows * outF);
            float[] dx = new float[x.Length], dw = new float[w.Length];
            double f = 2.0 * rows * outF * inF;
            double Time(Action a)
            {
                a();
                double best = double.MaxValue;
                for (int r = 0; r < 9; r++)
                {
                    long t0 = ThreadCpuNs();
                    a();
                    best = Math.Min(best, (ThreadCpuNs() - t0) / 1e9);
                }
                return best;
            }
            // The three products of Tape.MatMul: y = x·Wᵀ, dx += dy·W, dW += dyᵀ·x.
            double fwd = Time(() => Product(x, inF, false, w, inF, true, y, outF, rows, outF, inF, false, pool));
            double tdx = Time(() => Product(dy, outF, false, w, inF, false, dx, inF, rows, inF, outF, true, pool));
            double tdw = Time(() => Product(dy, outF, true, x, inF, false, dw, inF, outF, inF, rows, true, pool));
            total += count * (fwd + tdx + tdw);
            flops += count * 3 * f;
            Console.WriteLine($"  {name,-15} [{rows}, {inF}]·[{outF}, {inF}]ᵀ ×{count,-3} fwd {fwd * 1e3,6:0.00} ms {f / fwd / 1e9,5:0.0}   dX {tdx * 1e3,6:0.00} ms {f / tdx / 1e9,5:0.0}   dW {tdw * 1e3,6:0.00} ms {f / tdw / 1e9,5:0.0}");
        }
        Console.WriteLine($"quick-train gemm: a step's products {total * 1e3:0} ms, {flops / 1e9:0.0} GFLOP, {flops / total / 1e9:0.0} GFLOP/s");
    }

    static void Product(float[] a, int lda, bool transA, float[] b, int ldb, bool transB, float[] c, int ldc, int m, int n, int k, bool accumulate,
        Jevons.Numerics.Kernels.WorkerPool pool)
    {
        fixed (float* pa = a, pb = b, pc = c)
            MatrixProduct.Multiply(pa, lda, transA, pb, ldb, transB, pc, ldc, m, n, k, accumulate, pool);
    }
}
