using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Jevons.Formats;
using Jevons.Numerics;
using Jevons.Numerics.Kernels;
using Jevons.Training.Autograd;

namespace Jevons.Training;

/// <summary>The loop's settings. Same options + same seed + same data ⇒ the same loss curve, bit for bit, on one machine.</summary>
public sealed record TrainOptions
{
    public int Steps { get; init; } = 1000;
    /// <summary>Sequences per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Micro-batches whose gradients are summed into one step (each scaled by 1/Accumulation).</summary>
    public int Accumulation { get; init; } = 1;
    /// <summary>Longest sequence trained on (inputs; examples are cut to it + 1 tokens).</summary>
    public int MaxSequence { get; init; } = 256;
    public float LearningRate { get; init; } = 3e-3f;
    public float MinLearningRate { get; init; } = 3e-4f;
    public int WarmupSteps { get; init; } = 50;
    public float WeightDecay { get; init; } = 0.1f;
    public float ClipNorm { get; init; } = 1.0f;
    public ulong Seed { get; init; } = 1;
    /// <summary>Threads of the matrix products; 0 = all cores. Results do not depend on it.</summary>
    public int Threads { get; init; }
    /// <summary>
    /// 0: every micro-batch is <see cref="BatchSize"/> examples drawn at random. Above 0: a micro-batch is a run
    /// of examples of similar length (neighbours in length order from a random start) holding up to this many
    /// positions (rows × longest), at least one example — so little of each step is padding and every step
    /// costs about the same.
    /// </summary>
    public int BatchTokens { get; init; }
}

/// <summary>One optimizer step's numbers.</summary>
public sealed record StepReport(int Step, int TotalSteps, double Loss, double MtpLoss, double MtpAccuracy, float LearningRate,
    double GradientNorm, int Tokens, double Seconds, IReadOnlyDictionary<int, long[]> ExpertLoad)
{
    /// <summary>max/mean tokens per expert, per MoE layer (1.0 = perfectly balanced).</summary>
    public string LoadBalance() => string.Join(" ", ExpertLoad.OrderBy(kv => kv.Key)
        .Select(kv => MetricsLog.MaxOverMean(kv.Value).ToString("0.00", CultureInfo.InvariantCulture)));
}

/// <summary>
/// The training loop, llm.c style: sample a batch, forward + backward on the tape, clip, AdamW with
/// warmup + cosine, update the router biases, repeat. State (weights, moments, biases, RNG, step) saves to a
/// checkpoint and resumes exactly.
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly IReadOnlyList<TrainingExample> _data;
    readonly WorkerPool _pool;

    public Trainer(TinyDeepSeek model, IReadOnlyList<TrainingExample> data, TrainOptions options)
    {
        if (data.Count == 0) JevonsException.Throw("the training set is empty");
        Model = model;
        _data = data;
        Options = options;
        Random = new TrainRandom(options.Seed ^ 0x5DEECE66DUL);
        _pool = new WorkerPool(options.Threads > 0 ? options.Threads : Environment.ProcessorCount);
        Tape = new Tape(_pool) { ReuseMemory = true };
        Optimizer = new AdamW(model.Parameters.Values, options.WeightDecay, pool: _pool);
    }

    public TinyDeepSeek Model { get; }
    public TrainOptions Options { get; }
    public AdamW Optimizer { get; }
    public Tape Tape { get; }
    /// <summary>The data-order RNG (checkpointed).</summary>
    public TrainRandom Random { get; }
    /// <summary>Steps done.</summary>
    public int Step { get; private set; }

    int[]? _byLength;

    /// <summary>
    /// A batch of examples drawn with replacement (or, with <see cref="TrainOptions.BatchTokens"/>, a run of
    /// similar lengths), cut to MaxSequence + 1 tokens, padded with masked zeros.
    /// </summary>
    public TrainingBatch NextBatch()
    {
        int cap = Math.Min(Options.MaxSequence, Model.Config.ContextLength) + 1;
        TrainingExample[] picks;
        if (Options.BatchTokens > 0)
        {
            _byLength ??= Enumerable.Range(0, _data.Count).OrderBy(i => Math.Min(_data[i].Ids.Length, cap)).ThenBy(i => i).ToArray();
            int start = Random.NextInt(_data.Count);
            var run = new List<TrainingExample>();
            for (int i = start; i < _byLength.Length; i++)
            {
                var ex = _data[_byLength[i]];
                int len = Math.Min(ex.Ids.Length, cap) - 1;
                if (run.Count > 0 && (run.Count + 1) * len > Options.BatchTokens) break;
                run.Add(ex);
            }
            // At the long end of the order, fill downwards so the batch still holds its share of positions.
            for (int i = start - 1; i >= 0 && run.Count < _data.Count; i--)
            {
                int longest = Math.Min(run.Max(e => e.Ids.Length), cap) - 1;
                if ((run.Count + 1) * longest > Options.BatchTokens) break;
                run.Add(_data[_byLength[i]]);
            }
            picks = run.ToArray();
        }
        else
        {
            picks = new TrainingExample[Options.BatchSize];
            for (int b = 0; b < picks.Length; b++) picks[b] = _data[Random.NextInt(_data.Count)];
        }
        int B = picks.Length;
        int T = Math.Min(Math.Max(2, picks.Max(p => p.Ids.Length)), cap) - 1;
        var inputs = new int[B * T];
        var targets = new int[B * T];
        var mask = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            var ex = picks[b];
            int n = Math.Min(ex.Ids.Length, T + 1);
            for (int i = 0; i + 1 < n; i++)
            {
                inputs[b * T + i] = ex.Ids[i];
                targets[b * T + i] = ex.Ids[i + 1];
                mask[b * T + i] = ex.LossMask[i + 1];
            }
        }
        return new TrainingBatch(B, T, inputs, targets, mask);
    }

    /// <summary>One optimizer step over <see cref="TrainOptions.Accumulation"/> micro-batches.</summary>
    public StepReport TrainStep()
    {
        var clock = Stopwatch.StartNew();
        Optimizer.ZeroGradients();
        double loss = 0, mtpLoss = 0;
        int mtpTokens = 0, mtpCorrect = 0, tokens = 0;
        var load = new SortedDictionary<int, long[]>();
        int micro = Math.Max(1, Options.Accumulation);
        for (int a = 0; a < micro; a++)
        {
            var batch = NextBatch();
            var l = Model.Loss(Tape, batch, out var stats);
            var scaled = Tape.Scale(l, 1f / micro);
            Tape.Backward(scaled);
            loss += stats.Main.Loss / micro;
            mtpLoss += stats.Mtp.Loss / micro;
            mtpTokens += stats.Mtp.Tokens;
            mtpCorrect += stats.Mtp.Correct;
            tokens += batch.Tokens;
            foreach (var (layer, counts) in stats.ExpertLoad)
            {
                if (!load.TryGetValue(layer, out var sum)) load[layer] = sum = new long[counts.Length];
                for (int e = 0; e < counts.Length; e++) sum[e] += counts[e];
            }
        }
        double norm = Optimizer.ClipGradients(Options.ClipNorm);
        float lr = LearningRateSchedule.At(Step, Options.Steps, Options.WarmupSteps, Options.LearningRate, Options.MinLearningRate);
        Optimizer.Update(lr);
        Model.UpdateRouterBias(load);
        Step++;
        return new StepReport(Step, Options.Steps, loss, mtpLoss, mtpTokens == 0 ? 0 : (double)mtpCorrect / mtpTokens, lr, norm, tokens,
            clock.Elapsed.TotalSeconds, load);
    }

    // ---------------------------------------------------------------- checkpoints

    const string MomentM = "optimizer.m.", MomentV = "optimizer.v.";

    /// <summary>
    /// A safetensors file: every parameter under its HF name, the router biases as e_score_correction_bias,
    /// both Adam moments (optimizer.m./optimizer.v. + name), and in __metadata__ the config, step, Adam step and RNG state.
    /// </summary>
    public void SaveCheckpoint(string path)
    {
        var w = new SafetensorsWriter();
        void Add(string name, int[] shape, float[] data) =>
            w.AddTensor(name, DType.F32, shape.Select(d => (long)d).ToArray(), MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
        var ps = Optimizer.Parameters;
        for (int k = 0; k < ps.Count; k++)
        {
            Add(ps[k].Name, ps[k].Shape, ps[k].Data);
            Add(MomentM + ps[k].Name, ps[k].Shape, Optimizer.M[k]);
            Add(MomentV + ps[k].Name, ps[k].Shape, Optimizer.V[k]);
        }
        foreach (var (layer, bias) in Model.RouterBias)
            Add(BiasName(layer), [bias.Length], bias);
        w.Metadata["config"] = Model.Config.ToHfConfig().ToJsonString();
        w.Metadata["step"] = Step.ToString(CultureInfo.InvariantCulture);
        w.Metadata["adam_step"] = Optimizer.Step.ToString(CultureInfo.InvariantCulture);
        w.Metadata["rng"] = Random.State.ToString(CultureInfo.InvariantCulture);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        w.Write(path);
    }

    public static string BiasName(int layer) => $"model.layers.{layer}.mlp.gate.e_score_correction_bias";

    /// <summary>Rebuilds the trainer of a checkpoint: the model from its config and weights, then moments, biases, RNG and step.</summary>
    public static Trainer Resume(string path, IReadOnlyList<TrainingExample> data, TrainOptions options)
    {
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("config", out var configJson))
            JevonsException.Throw("not a jevons training checkpoint (no 'config' in __metadata__)", path);
        var config = TinyDeepSeekConfig.FromHfConfig((JsonObject)JsonNode.Parse(configJson)!);
        var model = new TinyDeepSeek(config, new TrainRandom(0));
        var trainer = new Trainer(model, data, options);
        float[] Read(string name, int length)
        {
            var t = file.TryGet(name) ?? JevonsException.Throw<TensorView>("missing tensor", path, name);
            var v = t.ToFloatArray();
            if (v.Length != length) JevonsException.Throw($"has {v.Length} values, the config needs {length}", path, name);
            return v;
        }
        var ps = trainer.Optimizer.Parameters;
        for (int k = 0; k < ps.Count; k++)
        {
            Read(ps[k].Name, ps[k].Length).CopyTo(ps[k].Data, 0);
            Read(MomentM + ps[k].Name, ps[k].Length).CopyTo(trainer.Optimizer.M[k], 0);
            Read(MomentV + ps[k].Name, ps[k].Length).CopyTo(trainer.Optimizer.V[k], 0);
        }
        foreach (var (layer, bias) in model.RouterBias) Read(BiasName(layer), bias.Length).CopyTo(bias, 0);
        trainer.Step = int.Parse(file.Metadata["step"], CultureInfo.InvariantCulture);
        trainer.Optimizer.Step = long.Parse(file.Metadata["adam_step"], CultureInfo.InvariantCulture);
        trainer.Random.State = ulong.Parse(file.Metadata["rng"], CultureInfo.InvariantCulture);
        return trainer;
    }

    public void Dispose() => _pool.Dispose();
}
