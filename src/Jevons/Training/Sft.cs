using System.Globalization;
using System.Text.Json.Nodes;
using Jevons.Training.Autograd;
using Jevons.Training.Export;

namespace Jevons.Training;

/// <summary>Where and how often <see cref="Sft.Run"/> reports, evaluates, checkpoints and exports.</summary>
public sealed record SftOptions
{
    public required TrainOptions Train { get; init; }
    /// <summary>Receives checkpoint.safetensors, hf/ (config.json, model.safetensors, tokenizer), model.gguf and metrics.jsonl (one line per step).</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>tokenizer.json (+ tokenizer_config.json) to ship beside the exported weights.</summary>
    public string? TokenizerDirectory { get; init; }
    public int LogEvery { get; init; } = 10;
    /// <summary>0: only at the end.</summary>
    public int CheckpointEvery { get; init; } = 200;
    /// <summary>0: no periodic evaluation (the final one still runs when an evaluator is given).</summary>
    public int EvalEvery { get; init; }
    /// <summary>A checkpoint to continue from (its config wins over the preset).</summary>
    public string? ResumeFrom { get; init; }
}

/// <summary>
/// The evaluation hook: called every <see cref="SftOptions.EvalEvery"/> steps and at the end with the model
/// being trained (use <see cref="TinyDeepSeek.Generate"/> with the tape, or export it); returns one line to print.
/// </summary>
public delegate string SftEvaluator(int step, TinyDeepSeek model, Tape tape);

/// <summary>Supervised fine-tuning of a TinyDeepSeek on (ids, loss mask) examples, with progress lines, checkpoints and the final export.</summary>
public static class Sft
{
    public static TinyDeepSeek Run(TinyDeepSeekConfig config, IReadOnlyList<TrainingExample> data, SftOptions options,
        TextWriter log, SftEvaluator? evaluate = null, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(options.OutputDirectory);
        string checkpoint = Path.Combine(options.OutputDirectory, "checkpoint.safetensors");
        using var trainer = options.ResumeFrom is { } resume
            ? Trainer.Resume(resume, data, options.Train)
            : new Trainer(new TinyDeepSeek(config, new TrainRandom(options.Train.Seed)), data, options.Train);
        var model = trainer.Model;
        var c = model.Config;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train: {(c.IsQwen2 ? $"Qwen2 tiny ({model.ParameterCount / 1e6:0.00} M parameters: hidden {c.HiddenSize}, {c.Layers} layers, {c.Heads} heads on {c.KvHeads} key/value heads of {c.HeadDim}, SwiGLU {c.IntermediateSize}, vocab {c.VocabSize})" : $"DeepSeek-V3 tiny ({model.ParameterCount / 1e6:0.00} M parameters: hidden {c.HiddenSize}, {c.Layers} layers + {c.MtpLayers} MTP, {c.RoutedExperts} routed + {c.SharedExperts} shared experts top-{c.ExpertsPerToken}, vocab {c.VocabSize})")}, {data.Count} examples, {options.Train.Steps} steps of {(options.Train.BatchTokens > 0 ? $"≤{options.Train.BatchTokens} positions (similar lengths)" : $"{options.Train.BatchSize} sequences")}×{Math.Max(1, options.Train.Accumulation)}, seed {options.Train.Seed}"));
        var metrics = new MetricsLog(options.OutputDirectory, append: options.ResumeFrom is not null);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long tokens = 0;
        int startStep = trainer.Step;
        while (trainer.Step < options.Train.Steps && !cancel.IsCancellationRequested)
        {
            var r = trainer.TrainStep();
            tokens += r.Tokens;
            metrics.Write(new JsonObject
            {
                ["kind"] = "step", ["step"] = r.Step, ["loss"] = r.Loss, ["mtp_loss"] = r.MtpLoss, ["mtp_accuracy"] = r.MtpAccuracy,
                ["lr"] = r.LearningRate, ["grad_norm"] = r.GradientNorm, ["tok_s"] = r.Tokens / Math.Max(1e-9, r.Seconds),
                ["load"] = MetricsLog.LoadBalance(r.ExpertLoad), ["seconds"] = clock.Elapsed.TotalSeconds,
            });
            if (r.Step % options.LogEvery == 0 || r.Step == options.Train.Steps || r.Step == startStep + 1)
            {
                double elapsed = clock.Elapsed.TotalSeconds, perStep = elapsed / (r.Step - startStep);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"step {r.Step,5}/{r.TotalSteps} | loss {r.Loss:0.0000}{(c.MtpLayers > 0 ? $" | mtp {r.MtpLoss:0.0000} acc {r.MtpAccuracy:0.000}" : "")} | lr {r.LearningRate:0.00e0} | |g| {r.GradientNorm:0.00} | {tokens / elapsed:0} tok/s{(c.RoutedExperts > 0 ? $" | load max/mean {r.LoadBalance()}" : "")} | ETA {Eta(perStep * (r.TotalSteps - r.Step))}"));
            }
            if (options.EvalEvery > 0 && r.Step % options.EvalEvery == 0 && evaluate is not null && r.Step != options.Train.Steps)
                log.WriteLine($"eval  {r.Step,5}: {evaluate(r.Step, model, trainer.Tape)}");
            if (options.CheckpointEvery > 0 && r.Step % options.CheckpointEvery == 0) trainer.SaveCheckpoint(checkpoint);
        }
        trainer.SaveCheckpoint(checkpoint);
        string hf = Path.Combine(options.OutputDirectory, "hf"), gguf = Path.Combine(options.OutputDirectory, "model.gguf");
        TinyDeepSeekExport.WriteHuggingFace(model, hf, options.TokenizerDirectory);
        TinyDeepSeekExport.WriteGguf(model, gguf, options.TokenizerDirectory);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train: {trainer.Step} steps in {clock.Elapsed.TotalSeconds:0.0} s ({tokens / Math.Max(1e-9, clock.Elapsed.TotalSeconds):0} tok/s); wrote {checkpoint}, {hf}, {gguf}"));
        if (evaluate is not null) log.WriteLine($"eval  {trainer.Step,5}: {evaluate(trainer.Step, model, trainer.Tape)}");
        return model;
    }

    static string Eta(double seconds) =>
        seconds >= 3600 ? $"{(int)(seconds / 3600)}h{(int)(seconds % 3600 / 60):00}m"
        : seconds >= 60 ? $"{(int)(seconds / 60)}m{(int)(seconds % 60):00}s"
        : $"{seconds:0}s";
}
