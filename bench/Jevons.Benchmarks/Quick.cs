using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;

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

/// <summary><c>quick-dot</c>: one 7168-element row dotted 100000 times (L1-resident: the kernel's compute cost).</summary>
public static unsafe class QuickDot
{
    static float V1(byte* w, float* x, int n)
    {
        // plain: no subnormal fix (wrong values, timing only)
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        for (int i = 0; i < n; i += 64)
        {
            a0 = Vector512.FusedMultiplyAdd(D(w + i), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd(D(w + i + 16), Vector512.Load(x + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(D(w + i + 32), Vector512.Load(x + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(D(w + i + 48), Vector512.Load(x + i + 48), a3);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3);
        static Vector512<float> D(byte* p) => ((Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)p)) << 20) & Vector512.Create(unchecked((int)0x87F00000))).AsSingle();
    }

    static float V2(byte* w, float* x, int n)
    {
        // the real decode, 4 accumulators, no blocks
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        for (int i = 0; i < n; i += 64)
        {
            a0 = Vector512.FusedMultiplyAdd(D(w + i), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd(D(w + i + 16), Vector512.Load(x + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(D(w + i + 32), Vector512.Load(x + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(D(w + i + 48), Vector512.Load(x + i + 48), a3);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3);
        static Vector512<float> D(byte* p) => Vec512Probe.F8(p);
    }

    static float V3(byte* w, float* x, int n)
    {
        // denormal-scaled weights against x pre-multiplied by 2^120 (x here holds x·2^120)
        var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        for (int i = 0; i < n; i += 64)
        {
            a0 = Vector512.FusedMultiplyAdd(D(w + i), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd(D(w + i + 16), Vector512.Load(x + i + 16), a1);
            a2 = Vector512.FusedMultiplyAdd(D(w + i + 32), Vector512.Load(x + i + 32), a2);
            a3 = Vector512.FusedMultiplyAdd(D(w + i + 48), Vector512.Load(x + i + 48), a3);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3);
        static Vector512<float> D(byte* p) => ((Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)p)) << 20) & Vector512.Create(unchecked((int)0x87F00000))).AsSingle();
    }

    public static void Run()
    {
        const int n = 7168;
        var rng = new Random(1);
        var wf = new float[n];
        for (int i = 0; i < n; i++) wf[i] = (float)(rng.NextDouble() * 2 - 1);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var f8 = new byte[n];
        Quantization.QuantizeRow(DType.F8_E4M3, wf, f8);
        var bf = new byte[2 * n];
        Quantization.QuantizeRow(DType.BF16, wf, bf);
        var sc = Enumerable.Repeat(1f, n / 128).ToArray();
        fixed (byte* p8 = f8, pb = bf) fixed (float* px = x, ps = sc)
        {
            for (int rep = 0; rep < 5; rep++)
            {
                float s = 0;
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 20000; i++) s += FloatDot.DotF8Scaled(p8, px, n, 128, ps, KernelPath.V512);
                double t8 = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                for (int i = 0; i < 20000; i++) s += FloatDot.F8HasNaN(p8, n) ? 1 : 0;
                double tn = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                for (int i = 0; i < 20000; i++) s += FloatDot.Dot<Bf16Elements>(pb, px, n, KernelPath.V512);
                double tb = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                for (int i = 0; i < 20000; i++) s += V1(p8, px, n);
                double t1 = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                for (int i = 0; i < 20000; i++) s += V2(p8, px, n);
                double t2 = sw.Elapsed.TotalMilliseconds;
                var xs = new float[n];
                for (int i = 0; i < n; i++) xs[i] = x[i] * MathF.Pow(2, 120);
                float s3 = 0;
                sw.Restart();
                fixed (float* pxs = xs) for (int i = 0; i < 20000; i++) s3 += V3(p8, pxs, n);
                double t3 = sw.Elapsed.TotalMilliseconds;
                Console.WriteLine($"v3 {t3 / 20:F3} us {s3}");
                Console.WriteLine($"per row: F8 scaled {t8 / 20:F3} us, F8 NaN scan {tn / 20:F3} us, BF16 {tb / 20:F3} us, v1 {t1 / 20:F3} v2 {t2 / 20:F3} ({s})");
            }
        }
    }
}

internal static unsafe class Vec512Probe
{
    public static Vector512<float> F8(byte* p) => VecBits.F8FiniteToFloat(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)p)));
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
