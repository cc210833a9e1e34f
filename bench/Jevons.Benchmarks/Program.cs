using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "quick-batch") Jevons.Benchmarks.QuickBatch.Run(args);
else if (args.Length > 0 && args[0] == "quick-step") Jevons.Benchmarks.QuickStep.Run(args);
else if (args.Length > 0 && args[0] == "quick-profile") Jevons.Benchmarks.QuickProfile.Run(args);
else if (args.Length > 0 && args[0] == "quick-gemm") Jevons.Benchmarks.QuickGemm.Run(args);
else if (args.Length > 0 && args[0] == "quick-q") Jevons.Benchmarks.QuickQ.Run(args);
else if (args.Length > 0 && args[0] == "quick-n") Jevons.Benchmarks.QuickN.Run(args);
else if (args.Length > 0 && args[0] == "quick-train") Jevons.Benchmarks.QuickTrain.Run(args);
else if (args.Length > 0 && args[0] == "quick") Jevons.Benchmarks.Quick.Run(args);
else BenchmarkSwitcher.FromAssembly(typeof(Jevons.Benchmarks.MatVecBenchmarks).Assembly).Run(args);
