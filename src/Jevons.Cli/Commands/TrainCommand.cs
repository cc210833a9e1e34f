using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json;
using Jevons.Tokenization;
using Jevons.Training;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons train sft`: supervised fine-tuning of a tiny DeepSeek-V3 (Training/Sft), with checkpoints and an
/// HF + GGUF export; `jevons train bench`: training tokens/s on random data against a measured FMA peak.
/// </summary>
sealed class TrainCommand : ICommand
{
    /// <summary>
    /// SFT's default peak learning rate. On tiny-r1 (5,000 steps of ≤ 1,024 positions) held-out accuracy at step 5,000 was
    /// 96% at 5e-4, 80% and 72% at 1e-3 (two seeds), 2% at 6e-3, and 3e-3 (the earlier default) was still at 0% at step
    /// 2,500: at the higher rates the main head did not learn to copy digits for thousands of steps (docs/training.md).
    /// </summary>
    const float SftLearningRate = 5e-4f;

    public CommandSpec Spec { get; } = new("train", "train a tiny DeepSeek-V3 (sft: fine-tune on prompt/completion data; grpo: reinforce on verified rewards; distill: a dense student from a teacher's verified traces; bench: training throughput)",
    [
        new("--preset", $"model preset: {string.Join(", ", TinyDeepSeekConfig.Presets)} (default tiny-r1)", "NAME"),
        new("--output", "output directory: checkpoint.safetensors, hf/, model.gguf", "DIR", "-o"),
        new("--data", "training data: JSON lines of {\"prompt\": ..., \"completion\": ...} (loss on the completion); default: the built-in tasks", "FILE"),
        new("--tokenizer", "with --data: directory with the tokenizer.json the data is encoded with (copied into the export)", "DIR"),
        new("--task", "built-in tasks: arithmetic, countdown or all (default arithmetic)", "NAME"),
        new("--examples", "built-in tasks: training examples generated (default 20000)", "N"),
        new("--vocab", "built-in tasks: BPE vocabulary size (default 1024)", "N"),
        new("--eval-every", "built-in tasks: steps between test-accuracy evaluations (default 0: only at the end)", "N"),
        new("--eval-problems", "built-in tasks: test problems per evaluation (default 50)", "N"),
        new("--steps", "optimizer steps (default 1000)", "N"),
        new("--batch", "sequences per step (default 8)", "B"),
        new("--accumulate", "micro-batches per step (default 1)", "N"),
        new("--seq", "longest training sequence in tokens (default 256)", "T"),
        new("--batch-tokens", "group examples of similar length into steps of up to this many positions instead of --batch random ones (default 0: off)", "N"),
        new("--layers", "decoder layers (the MTP module comes after them; default: the preset's, 4 for tiny-r1)", "N"),
        new("--context", "the model's context length (max_position_embeddings; default: the preset's)", "N"),
        new("--lr", $"peak learning rate (sft: default {SftLearningRate:0e0}, distill: 3e-3, cosine to a tenth; grpo: default 2e-5, constant)", "X"),
        new("--warmup", "warmup steps (default 50, at most a tenth of the steps)", "N"),
        new("--seed", "seed of the weights and the data order (default 1)", "S"),
        new("--bias-update", "γ of the aux-loss-free router balancing (default 1e-2; 0 = off)", "G"),
        new("--mtp-weight", "λ of the MTP loss (default 0.3)", "L"),
        new("--resume", "continue from a checkpoint.safetensors", "CKPT"),
        new("--hard-weight", "built-in tasks: extra sampling weight of each task's hard problems beside its full mix of weight 1 (default 0; 0.33 makes arithmetic's expressions 44% of the examples); the test split keeps the full mix", "W"),
        new("--answer-only", "built-in tasks: completions are an empty think block + the boxed answer (the R1-Zero ablation's start)"),
        new("--from", "grpo: the model to start from (a trainer's HF directory, e.g. SFT's DIR/hf); also the frozen reference", "DIR"),
        new("--group", "grpo: completions per question, G (default 8)", "G"),
        new("--difficulty", "grpo: train and evaluate on one difficulty: easy, medium or hard (a curriculum's stage; default: each task's full mix)", "D"),
        new("--questions-per-step", "grpo: questions per step (default 8)", "N"),
        new("--beta", "grpo: β of the KL penalty to the reference (default 0.04; 0 = none)", "B"),
        new("--clip", "grpo: ε of the ratio clip (default 0.2)", "E"),
        new("--updates", "grpo: optimizer steps per batch of rollouts, μ (default 1)", "N"),
        new("--micro-batch", "grpo: sequences per forward/backward (default 16)", "N"),
        new("--max-new-tokens", "grpo: longest completion (default: what the context leaves, at most 1000)", "N"),
        new("--temperature", "grpo: sampling temperature of the rollouts (default 1.0)", "T"),
        new("--format-reward", "grpo: reward for the taught layout, on top of 1 for a right answer (default 0.1)", "R"),
        new("--step-reward", "grpo: λ of the process term: each a op b = c step of the think block rewarded by whether it holds, normalised in the group, added to its tokens' advantage (default 0: outcome only)", "L"),
        new("--teacher", "distill: the teacher model (HF directory or GGUF with a tokenizer.json beside it)", "PATH"),
        new("--student-preset", "distill: the student's preset (default tiny-r1-qwen2, the R1-Distill-Qwen analogue; tiny-r1-dense: the same size with MLA)", "NAME"),
        new("--questions", "distill: train-split questions the teacher answers (default 2000)", "N"),
        new("--samples", "distill: teacher completions per question (default 1 = greedy; more are sampled at --temperature, default 0.7)", "K"),
        new("--log-every", "steps between progress lines (default 10; grpo 1)", "N"),
        new("--checkpoint-every", "steps between checkpoints (default 200)", "N"),
        Common.Threads,
    ], Positional: "sft|grpo|distill|bench",
        Usage: "jevons train sft --preset tiny-r1 -o DIR [--steps N] [--seed S] [--batch B] [--lr X] [--resume CKPT] [--task arithmetic|countdown|all] [--answer-only]\n" +
               "       jevons train grpo --from SFT_DIR/hf -o DIR [--steps N] [--group G] [--questions-per-step N] [--beta B] [--clip E] [--lr X] [--task ...]\n" +
               "       jevons train distill --teacher DIR -o DIR [--student-preset tiny-r1-qwen2] [--questions N] [--samples K] [--steps N] [--task ...]\n" +
               "       jevons train sft --preset tiny-r1 -o DIR --data FILE.jsonl --tokenizer DIR [...]\n" +
               "       jevons train bench [--preset tiny-r1] [--steps N] [--batch B] [--seq T]");

    public int Run(ParsedArgs a, CliContext c)
    {
        if (a.Positionals.Count != 1 || a.Positionals[0] is not ("sft" or "grpo" or "distill" or "bench"))
            throw new JevonsException("jevons train: say what to run: 'sft', 'grpo', 'distill' or 'bench' (see jevons train --help)");
        if (a.Positionals[0] == "grpo") return Grpo(a, c);
        if (a.Has("--difficulty"))
            throw new JevonsException($"jevons train {a.Positionals[0]}: --difficulty is for grpo (sft weights hard problems up with --hard-weight)");
        var preset = a.Get("--preset") ?? "tiny-r1";
        if (!TinyDeepSeekConfig.Presets.Contains(preset))
            throw new JevonsException($"jevons train: unknown --preset '{preset}' ({string.Join(", ", TinyDeepSeekConfig.Presets)})");
        var d = new TrainOptions();
        var options = new TrainOptions
        {
            Steps = a.GetInt("--steps", d.Steps, 1),
            BatchSize = a.GetInt("--batch", d.BatchSize, 1, 4096),
            Accumulation = a.GetInt("--accumulate", d.Accumulation, 1, 4096),
            MaxSequence = a.GetInt("--seq", d.MaxSequence, 2, 1 << 16),
            BatchTokens = a.GetInt("--batch-tokens", 0, 0, 1 << 24),
            LearningRate = Positive(a, "--lr", a.Positionals[0] == "sft" ? SftLearningRate : d.LearningRate),
            WarmupSteps = a.GetInt("--warmup", d.WarmupSteps, 0),
            Seed = a.GetSeed("--seed") ?? d.Seed,
            Threads = a.GetInt("--threads", 0, 0, 1024),
        };
        options = options with
        {
            MinLearningRate = options.LearningRate / 10,
            WarmupSteps = a.Has("--warmup") ? options.WarmupSteps : Math.Min(d.WarmupSteps, Math.Max(1, options.Steps / 10)),
        };
        return a.Positionals[0] switch
        {
            "bench" => Bench(a, preset, options, c),
            "distill" => Distill(a, options, c),
            _ => Sft(a, preset, options, c),
        };
    }

    static float Positive(ParsedArgs a, string name, float fallback)
    {
        float v = a.GetFloat(name, fallback);
        if (v <= 0) throw new JevonsException($"jevons train: option '{name}' must be positive, got '{a.Get(name)}'");
        return v;
    }

    static float NonNegative(ParsedArgs a, string name)
    {
        float v = a.GetFloat(name, 0);
        if (!(v >= 0)) throw new JevonsException($"jevons train: option '{name}' must be 0 or more, got '{a.Get(name)}'");
        return v;
    }

    static TinyDeepSeekConfig Config(ParsedArgs a, string preset, int vocab, Tokenizer? tokenizer)
    {
        var config = Adjust(a, TinyDeepSeekConfig.Preset(preset, vocab));
        return config with
        {
            BosTokenId = tokenizer?.BosId ?? config.BosTokenId,
            EosTokenId = tokenizer is { EosIds.Count: > 0 } t ? t.EosIds[0] : config.EosTokenId,
        };
    }

    static TinyDeepSeekConfig Adjust(ParsedArgs a, TinyDeepSeekConfig config) => config with
    {
        BiasUpdateSpeed = a.GetFloat("--bias-update", config.BiasUpdateSpeed),
        MtpLossWeight = a.GetFloat("--mtp-weight", config.MtpLossWeight),
        ContextLength = a.GetInt("--context", config.ContextLength, 2, 1 << 16),
        Layers = a.GetInt("--layers", config.Layers, 1, 64),
    };

    int Sft(ParsedArgs a, string preset, TrainOptions options, CliContext c)
    {
        var output = a.Require("--output");
        SynthCommand.EnsureWritable(Path.GetFullPath(output));
        var sft = new SftOptions
        {
            Train = options,
            OutputDirectory = output,
            LogEvery = a.GetInt("--log-every", 10, 1),
            CheckpointEvery = a.GetInt("--checkpoint-every", 200, 0),
            EvalEvery = a.GetInt("--eval-every", 0, 0),
            ResumeFrom = a.Get("--resume"),
        };
        var dataPath = a.Get("--data");
        if (dataPath is null)
        {
            if (a.Has("--tokenizer")) throw new JevonsException("jevons train sft: --tokenizer goes with --data (the built-in tasks train their own)");
            var task = a.Get("--task") ?? "arithmetic";
            string[] tasks = task == "all" ? Jevons.Training.Tasks.ReasoningTasks.All.Select(t => t.Name).ToArray() : [task];
            foreach (var t in tasks) Jevons.Training.Tasks.ReasoningTasks.Get(t);
            TaskSft.Run(preset, sft, new TaskSftOptions
            {
                Tasks = tasks,
                TrainExamples = a.GetInt("--examples", 20000, 1),
                VocabSize = a.GetInt("--vocab", 1024, 300, 1 << 20),
                EvalProblems = a.GetInt("--eval-problems", 50, 1),
                AnswerOnly = a.Has("--answer-only"),
                HardWeight = NonNegative(a, "--hard-weight"),
            }, c.Out, c.Cancel, config => Adjust(a, config));
            WritePlots(output, c);
            return 0;
        }
        var tokenizerDir = a.Require("--tokenizer");
        if (!File.Exists(Path.Combine(tokenizerDir, "tokenizer.json")))
            throw new JevonsException($"jevons train sft: no tokenizer.json in '{tokenizerDir}'");
        var tokenizer = Tokenizer.Load(tokenizerDir);
        var data = ReadJsonl(dataPath, tokenizer);
        var config = Config(a, preset, tokenizer.VocabSize, tokenizer);
        Training.Sft.Run(config, data, sft with { TokenizerDirectory = tokenizerDir }, c.Out, cancel: c.Cancel);
        WritePlots(output, c);
        return 0;
    }

    int Distill(ParsedArgs a, TrainOptions options, CliContext c)
    {
        if (a.Has("--preset")) throw new JevonsException("jevons train distill: the student's preset is --student-preset (--preset is for sft)");
        var teacher = a.Require("--teacher");
        if (!Directory.Exists(teacher) && !File.Exists(teacher)) throw new JevonsException($"jevons train distill: --teacher '{teacher}' does not exist");
        var student = a.Get("--student-preset") ?? "tiny-r1-qwen2";
        if (!TinyDeepSeekConfig.Presets.Contains(student))
            throw new JevonsException($"jevons train distill: unknown --student-preset '{student}' ({string.Join(", ", TinyDeepSeekConfig.Presets)})");
        var output = a.Require("--output");
        var task = a.Get("--task") ?? "arithmetic";
        string[] tasks = task == "all" ? Jevons.Training.Tasks.ReasoningTasks.All.Select(t => t.Name).ToArray() : [task];
        foreach (var t in tasks)
            if (!Jevons.Training.Tasks.ReasoningTasks.All.Any(k => k.Name == t))
                throw new JevonsException($"jevons train distill: unknown --task '{t}' (arithmetic, countdown or all)");
        float temperature = a.GetFloat("--temperature", 0.7f);
        if (temperature <= 0) throw new JevonsException($"jevons train distill: option '--temperature' must be positive, got '{a.Get("--temperature")}'");
        var distill = new DistillOptions
        {
            Teacher = teacher,
            StudentPreset = student,
            Tasks = tasks,
            Questions = a.GetInt("--questions", 2000, 1),
            Samples = a.GetInt("--samples", 1, 1, 256),
            Temperature = temperature,
            EvalProblems = a.GetInt("--eval-problems", 50, 0),
            Sft = new SftOptions
            {
                Train = options,
                OutputDirectory = output,
                LogEvery = a.GetInt("--log-every", 10, 1),
                CheckpointEvery = a.GetInt("--checkpoint-every", 200, 0),
                EvalEvery = a.GetInt("--eval-every", 0, 0),
            },
        };
        SynthCommand.EnsureWritable(Path.GetFullPath(output));
        Training.Distill.Run(distill, c.Out, c.Cancel);
        WritePlots(output, c);
        return 0;
    }

    static void WritePlots(string output, CliContext c)
    {
        var files = Plots.Training(output);
        if (files.Count > 0) c.Out.WriteLine($"train: plots in {Path.Combine(output, "plots")} ({string.Join(", ", files.Select(Path.GetFileName))})");
    }

    static int Grpo(ParsedArgs a, CliContext c)
    {
        foreach (var sftOnly in new[] { "--preset", "--data", "--tokenizer", "--resume", "--examples", "--vocab", "--batch", "--accumulate", "--seq", "--answer-only", "--hard-weight", "--bias-update", "--mtp-weight", "--layers" })
            if (a.Has(sftOnly)) throw new JevonsException($"jevons train grpo: option '{sftOnly}' is for sft (grpo takes the model and its tokenizer from --from)");
        var from = a.Require("--from");
        if (!Directory.Exists(from)) throw new JevonsException($"jevons train grpo: --from '{from}' is not a directory (want a trainer's HF directory, e.g. SFT's DIR/hf)");
        var output = a.Require("--output");
        var task = a.Get("--task") ?? "arithmetic";
        string[] tasks = task == "all" ? Jevons.Training.Tasks.ReasoningTasks.All.Select(t => t.Name).ToArray() : [task];
        foreach (var t in tasks)
            if (!Jevons.Training.Tasks.ReasoningTasks.All.Any(k => k.Name == t))
                throw new JevonsException($"jevons train grpo: unknown --task '{t}' (arithmetic, countdown or all)");
        float beta = a.GetFloat("--beta", 0.04f), clip = a.GetFloat("--clip", 0.2f), temperature = a.GetFloat("--temperature", 1f);
        if (beta < 0) throw new JevonsException($"jevons train grpo: option '--beta' must be >= 0, got '{a.Get("--beta")}'");
        if (clip <= 0 || clip >= 1) throw new JevonsException($"jevons train grpo: option '--clip' must be in (0, 1), got '{a.Get("--clip")}'");
        if (temperature <= 0) throw new JevonsException($"jevons train grpo: option '--temperature' must be positive, got '{a.Get("--temperature")}'");
        int steps = a.GetInt("--steps", 100, 1);
        var options = new GrpoRunOptions
        {
            From = from,
            OutputDirectory = output,
            Steps = steps,
            QuestionsPerStep = a.GetInt("--questions-per-step", 8, 1, 4096),
            Tasks = tasks,
            Difficulty = Common.Difficulty(a, "train grpo"),
            FormatReward = a.GetFloat("--format-reward", 0.1f),
            WarmupSteps = a.GetInt("--warmup", Math.Min(5, steps / 10), 0),
            LogEvery = a.GetInt("--log-every", 1, 1),
            CheckpointEvery = a.GetInt("--checkpoint-every", 50, 0),
            EvalEvery = a.GetInt("--eval-every", 0, 0),
            EvalProblems = a.GetInt("--eval-problems", 50, 0),
            Grpo = new GrpoOptions
            {
                Group = a.GetInt("--group", 8, 2, 256),
                Beta = beta,
                Clip = clip,
                LearningRate = Positive(a, "--lr", 2e-5f),
                Updates = a.GetInt("--updates", 1, 1, 64),
                MicroBatch = a.GetInt("--micro-batch", 16, 1, 4096),
                MaxNewTokens = a.GetInt("--max-new-tokens", 0, 1, 1 << 16),
                Temperature = temperature,
                Seed = a.GetSeed("--seed") ?? 1,
                Threads = a.GetInt("--threads", 0, 0, 1024),
                StepReward = NonNegative(a, "--step-reward"),
            },
        };
        if (!File.Exists(Path.Combine(from, "tokenizer.json")))
            throw new JevonsException($"jevons train grpo: no tokenizer.json in --from '{from}' (want a trainer's HF directory, e.g. SFT's DIR/hf)");
        SynthCommand.EnsureWritable(Path.GetFullPath(output));
        Training.Grpo.Run(options, c.Out, c.Cancel);
        WritePlots(output, c);
        return 0;
    }

    /// <summary>[bos] prompt completion [eos] per line; the loss mask covers the completion and eos.</summary>
    static List<TrainingExample> ReadJsonl(string path, Tokenizer tokenizer)
    {
        if (!File.Exists(path)) throw new JevonsException("no such file", path);
        int eos = tokenizer.EosIds.Count > 0 ? tokenizer.EosIds[0]
            : throw new JevonsException("the tokenizer has no end-of-sequence token to end completions with", path);
        var examples = new List<TrainingExample>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string prompt, completion;
            try
            {
                using var doc = JsonDocument.Parse(line);
                prompt = doc.RootElement.GetProperty("prompt").GetString() ?? "";
                completion = doc.RootElement.GetProperty("completion").GetString() ?? "";
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new JevonsException($"line {lineNo}: want {{\"prompt\": \"...\", \"completion\": \"...\"}} ({e.Message.Split('\n')[0]})", path);
            }
            var ids = new List<int>();
            var mask = new List<float>();
            if (tokenizer.BosId is int bos) { ids.Add(bos); mask.Add(0); }
            foreach (var id in tokenizer.Encode(prompt, addSpecialTokens: false)) { ids.Add(id); mask.Add(0); }
            foreach (var id in tokenizer.Encode(completion, addSpecialTokens: false)) { ids.Add(id); mask.Add(1); }
            ids.Add(eos);
            mask.Add(1);
            examples.Add(new TrainingExample(ids.ToArray(), mask.ToArray()));
        }
        if (examples.Count == 0) throw new JevonsException("no examples", path);
        return examples;
    }

    int Bench(ParsedArgs a, string preset, TrainOptions options, CliContext c)
    {
        const int vocab = 1536;
        var config = Config(a, preset, vocab, null);
        var rng = new TrainRandom(options.Seed);
        int seq = options.MaxSequence;
        var data = Enumerable.Range(0, 256).Select(_ =>
            new TrainingExample(Enumerable.Range(0, seq + 1).Select(_ => rng.NextInt(vocab)).ToArray(), Enumerable.Repeat(1f, seq + 1).ToArray())).ToList();
        int steps = a.Has("--steps") ? options.Steps : 5;
        options = options with { Steps = steps + 1, WarmupSteps = 1 };
        var model = new TinyDeepSeek(config, new TrainRandom(options.Seed));
        using var trainer = new Trainer(model, data, options);
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        c.Out.WriteLine($"train bench: {preset} ({model.ParameterCount / 1e6:0.00} M parameters), {options.BatchSize}×{seq} tokens per step, {threads} threads");
        trainer.TrainStep(); // warm-up: JIT and first allocations
        var watch = Stopwatch.StartNew();
        long tokens = 0;
        for (int s = 0; s < steps; s++) tokens += trainer.TrainStep().Tokens;
        double seconds = watch.Elapsed.TotalSeconds, tokPerS = tokens / seconds;
        double flopsPerToken = FlopsPerToken(model, seq);
        double peak = MeasureFmaPeak(threads);
        c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train bench: {tokPerS:0} tokens/s ({seconds / steps * 1000:0} ms/step); {flopsPerToken / 1e6:0.0} MFLOP/token (6·active matmul parameters + attention) → {tokPerS * flopsPerToken / 1e9:0.00} GFLOP/s"));
        c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train bench: measured float32 FMA peak {peak / 1e9:0.0} GFLOP/s on {threads} threads (Vector512 FMA chains{(Vector512.IsHardwareAccelerated ? "" : ", not hardware-accelerated here")}) → {tokPerS * flopsPerToken / peak * 100:0.0}% of peak"));
        return 0;
    }

    /// <summary>
    /// Forward + backward matmul FLOPs per token: 6 × the parameters a token multiplies with (routed experts
    /// counted top-k of n, the embedding lookups not at all, the head twice with MTP), plus causal attention
    /// at an average of half the sequence: 3 × 2·(qk + v)·heads·seq/2 per layer.
    /// </summary>
    static double FlopsPerToken(TinyDeepSeek model, int seq)
    {
        var c = model.Config;
        double active = 0;
        foreach (var (name, p) in model.Parameters)
        {
            if (p.Shape.Length < 2 || name == "model.embed_tokens.weight") continue;
            double n = p.Length;
            if (name.Contains(".mlp.experts.", StringComparison.Ordinal)) n *= (double)c.ExpertsPerToken / c.RoutedExperts;
            if (name == "lm_head.weight" && c.MtpLayers > 0) n *= 2;
            active += n;
        }
        double attention = 3.0 * 2 * (c.QkHeadDim + c.VHeadDim) * c.Heads * (seq / 2.0) * (c.Layers + c.MtpLayers);
        return 6 * active + attention;
    }

    /// <summary>FLOP/s of independent FMA chains (12 accumulators per thread, 2 FLOP per lane per FMA) on every thread.</summary>
    static double MeasureFmaPeak(int threads)
    {
        const int iterations = 20_000_000;
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var watch = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => FmaChains(iterations));
            best = Math.Max(best, threads * (double)iterations * 12 * Vector512<float>.Count * 2 / watch.Elapsed.TotalSeconds);
        }
        return best;
    }

    static float FmaChains(int iterations)
    {
        var m = Vector512.Create(0.9999f);
        var b = Vector512.Create(1e-4f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (int i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, b); a1 = Vector512.FusedMultiplyAdd(a1, m, b); a2 = Vector512.FusedMultiplyAdd(a2, m, b);
            a3 = Vector512.FusedMultiplyAdd(a3, m, b); a4 = Vector512.FusedMultiplyAdd(a4, m, b); a5 = Vector512.FusedMultiplyAdd(a5, m, b);
            a6 = Vector512.FusedMultiplyAdd(a6, m, b); a7 = Vector512.FusedMultiplyAdd(a7, m, b); a8 = Vector512.FusedMultiplyAdd(a8, m, b);
            a9 = Vector512.FusedMultiplyAdd(a9, m, b); a10 = Vector512.FusedMultiplyAdd(a10, m, b); a11 = Vector512.FusedMultiplyAdd(a11, m, b);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
