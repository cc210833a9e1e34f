using System.Diagnostics;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Numerics.Simd;

namespace Jevons.Benchmarks;

/// <summary>
/// A fast A/B timer for development (not BenchmarkDotNet): <c>quick [types] [shape] [threads]</c>, e.g.
/// <c>dotnet run -c Release -- quick F8_E4M3,Q4_K 2048x7168 2</c>. Prints the median of 15 runs of 20 calls.
/// </summary>
public static class Quick
{
    public static void Run(string[] args)
    {
        var types = (args.Length > 1 ? args[1] : "F32,BF16,F8_E4M3,Q8_0,Q4_K,Q6_K,Q5_K,Q3_K,Q2_K,Q4_0,Q5_0")
            .Split(',').Select(Enum.Parse<DType>).ToArray();
        string shape = args.Length > 2 ? args[2] : "2048x7168";
        int threads = args.Length > 3 ? int.Parse(args[3]) : Environment.ProcessorCount;
        foreach (var t in types)
        {
            var b = new MatVecBenchmarks { Type = t, Shape = shape, Mode = ActivationMode.LlamaCpp, Threads = threads };
            b.Setup();
            for (int i = 0; i < 20; i++) b.MatVec();
            var times = new List<double>();
            for (int rep = 0; rep < 15; rep++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 20; i++) b.MatVec();
                times.Add(sw.Elapsed.TotalMilliseconds / 20);
            }
            times.Sort();
            var dims = shape.Split('x');
            long bytes = t.ByteCount((long)int.Parse(dims[0]) * int.Parse(dims[1]));
            double med = times[times.Count / 2];
            Console.WriteLine($"{t,-8} {shape} t{threads}: median {med:F3} ms  min {times[0]:F3} ms  {bytes / med / 1e6:F1} GB/s");
            b.Cleanup();
        }
    }
}

/// <summary><c>quick-q</c>: activation quantisation and one-row integer dots, per call.</summary>
public static unsafe class QuickQ
{
    struct Act : Jevons.Numerics.Quants.IFormatAction
    {
        public byte* W, X; public int Blocks; public float R;
        public void Run<T>() where T : struct, Jevons.Numerics.Quants.IBlockFormat => R += T.DotInt8(W, X, Blocks, KernelPath.V512);
    }

    public static void Run(string[] args)
    {
        const int n = 7168;
        var x = new float[n];
        var rng = new Random(1);
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var q8k = new byte[DType.Q8_K.ByteCount(n)];
        var q80 = new byte[DType.Q8_0.ByteCount(n)];
        fixed (float* px = x) fixed (byte* pk = q8k, p0 = q80)
        {
            for (int rep = 0; rep < 3; rep++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 2000; i++) Jevons.Numerics.Quants.ActivationQuant.QuantizeQ8_K(px, pk, n);
                double tk = sw.Elapsed.TotalMilliseconds / 2;
                sw.Restart();
                for (int i = 0; i < 2000; i++) Jevons.Numerics.Quants.ActivationQuant.QuantizeQ8_0(px, p0, n);
                double t0 = sw.Elapsed.TotalMilliseconds / 2;
                Console.Write($"quantize Q8_K {tk:F2} us, Q8_0 {t0:F2} us;");
                foreach (var name in (args.Length > 1 ? args[1] : "Q8_0,Q4_K,Q6_K,Q5_K,Q3_K,Q2_K").Split(','))
                {
                    var t = Enum.Parse<DType>(name);
                    var w = new byte[t.ByteCount(n)];
                    Quantization.QuantizeRow(t, x, w);
                    fixed (byte* pw = w)
                    {
                        var a = new Act { W = pw, X = t.BlockSize() == 256 ? pk : p0, Blocks = n / t.BlockSize() };
                        sw.Restart();
                        for (int i = 0; i < 20000; i++) Jevons.Numerics.Quants.BlockFormats.Dispatch(t, ref a);
                        Console.Write($" {t} {sw.Elapsed.TotalMilliseconds / 20:F3} us");
                    }
                }
                Console.WriteLine();
            }
        }
    }
}

/// <summary><c>quick-gemm TYPE [tokens]</c>: prefill Gemm at 2048×7168 (FP8 with 128×128 scales), median/min of 7 calls.</summary>
public static unsafe class QuickGemm
{
    public static void Run(string[] args)
    {
        var t = Enum.Parse<DType>(args[1]);
        int n = args.Length > 2 ? int.Parse(args[2]) : 64;
        var b = new MatVecBenchmarks { Type = t, Shape = "2048x7168", Mode = ActivationMode.LlamaCpp };
        b.Setup();
        var x = new float[n * 7168];
        var rng = new Random(5);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = new float[n * 2048];
        b.GemmOnce(x, y, n);
        var times = new List<double>();
        for (int rep = 0; rep < 7; rep++)
        {
            var sw = Stopwatch.StartNew();
            b.GemmOnce(x, y, n);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"Gemm {t} 2048x7168 x{n}: median {times[3]:F1} ms  min {times[0]:F1} ms");
        b.Cleanup();
    }
}

/// <summary>
/// <c>quick-n TYPE SHAPE [tokens] [threads] [rounds]</c>, e.g. <c>quick-n Q8_0 2048x7168 1,2,4,8,16 2</c>: small-batch Gemm
/// (decode of several sequences) at each token count, the counts interleaved round by round so load drifts hit
/// all alike; prints the min and median per call and the time relative to one token, and the process CPU time
/// per call (min), which a loaded machine disturbs far less than the wall clock (with 1 thread it is the kernel's time).
/// </summary>
public static class QuickN
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    static extern unsafe int ClockGetTime(int clock, long* ts);

    /// <summary>CPU time of the whole process in ms (CLOCK_PROCESS_CPUTIME_ID), 0 where libc is not there.</summary>
    internal static double CpuMs()
    {
        try
        {
            unsafe
            {
                long* ts = stackalloc long[2];   // struct timespec { tv_sec, tv_nsec } on 64-bit Linux
                return ClockGetTime(2, ts) == 0 ? ts[0] * 1e3 + ts[1] / 1e6 : 0;
            }
        }
        catch (DllNotFoundException) { return 0; }
        catch (EntryPointNotFoundException) { return 0; }
    }

    public static void Run(string[] args)
    {
        var t = Enum.Parse<DType>(args[1]);
        string shape = args.Length > 2 ? args[2] : "2048x7168";
        var ns = (args.Length > 3 ? args[3] : "1,2,4,8,16").Split(',').Select(int.Parse).ToArray();
        int threads = args.Length > 4 ? int.Parse(args[4]) : Environment.ProcessorCount;
        int rounds = args.Length > 5 ? int.Parse(args[5]) : 15;
        var b = new MatVecBenchmarks { Type = t, Shape = shape, Mode = ActivationMode.LlamaCpp, Threads = threads };
        b.Setup();
        var dims = shape.Split('x');
        int outF = int.Parse(dims[0]), inF = int.Parse(dims[1]);
        int max = ns.Max();
        var x = new float[max * inF];
        var rng = new Random(5);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = new float[max * outF];
        var times = ns.Select(_ => new List<double>()).ToArray();
        var cpu = ns.Select(_ => new List<double>()).ToArray();
        for (int round = -2; round < rounds; round++)
            for (int k = 0; k < ns.Length; k++)
            {
                double c0 = CpuMs();
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 10; i++) b.GemmOnce(x, y, ns[k]);
                if (round >= 0)
                {
                    times[k].Add(sw.Elapsed.TotalMilliseconds / 10);
                    cpu[k].Add((CpuMs() - c0) / 10);
                }
            }
        foreach (var l in times) l.Sort();
        foreach (var l in cpu) l.Sort();
        for (int k = 0; k < ns.Length; k++)
            Console.WriteLine($"{t,-5} {shape} t{threads} n={ns[k],-3}: min {times[k][0]:F3} ms  median {times[k][times[k].Count / 2]:F3} ms  min/min(n=1) {times[k][0] / times[0][0]:F2}  cpu min {cpu[k][0]:F3} ms");
        b.Cleanup();
    }
}
