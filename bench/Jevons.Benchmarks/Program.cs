using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Jevons.Benchmarks.MatVecBenchmarks).Assembly).Run(args);
