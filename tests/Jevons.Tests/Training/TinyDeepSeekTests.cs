using Jevons.Models;
using Jevons.Numerics.Kernels;
using Jevons.Training;
using Jevons.Training.Autograd;
using Jevons.Training.Export;
using Xunit;

namespace Jevons.Tests.Training;

public class TinyDeepSeekTests
{
    /// <summary>The micro preset with every variant flag on: q-LoRA, MTP, routed scaling, a second MoE layer.</summary>
    static TinyDeepSeekConfig Micro(int vocab = 48, int qLora = 12) => TinyDeepSeekConfig.Preset("micro", vocab) with
    {
        QLoraRank = qLora, RoutedScalingFactor = 1.5f, Layers = 3,
    };

    /// <summary>Weights far from the init's near-zero so that logits, routing and attention all vary.</summary>
    internal static TinyDeepSeek RandomModel(TinyDeepSeekConfig config, ulong seed, float std = 0.3f)
    {
        var rng = new TrainRandom(seed);
        var model = new TinyDeepSeek(config, rng);
        foreach (var p in model.Parameters.Values)
            for (int i = 0; i < p.Length; i++)
                p.Data[i] = p.Shape.Length == 1 ? 1f + (float)(rng.NextGaussian() * 0.2) : (float)(rng.NextGaussian() * std);
        foreach (var bias in model.RouterBias.Values)
            for (int e = 0; e < bias.Length; e++) bias[e] = (float)(rng.NextGaussian() * 0.1);
        return model;
    }

    static TrainingBatch RandomBatch(TrainRandom rng, int vocab, int batch, int seq)
    {
        var inputs = new int[batch * seq];
        var targets = new int[batch * seq];
        var mask = new float[batch * seq];
        for (int i = 0; i < inputs.Length; i++)
        {
            inputs[i] = rng.NextInt(vocab);
            targets[i] = rng.NextInt(vocab);
            mask[i] = rng.NextInt(4) == 0 ? 0 : 1;
        }
        return new TrainingBatch(batch, seq, inputs, targets, mask);
    }

    /// <summary>
    /// The whole model's gradient (main + λ·MTP loss) against central differences, per parameter tensor along
    /// two directions: its own gradient (unit length) and a random unit vector. Over all of them the relative
    /// error ‖numeric − analytic‖ / ‖numeric‖ is ≤ 1e-3 (measured 2e-4); each single one is ≤ 1e-2, the float32
    /// forward's rounding (~4e-7 of the loss) over 2ε being ~1e-4 absolute on a small directional derivative.
    /// Every token takes all experts here (top-4 of 4), so no step of the difference flips a top-k choice,
    /// which would make the loss jump; the top-k selection itself is checked op by op in AutogradTests.
    /// </summary>
    [Fact]
    public void WholeModelGradientMatchesFiniteDifferences() =>
        AssertGradientMatchesFiniteDifferences(RandomModel(Micro(vocab: 24) with { Layers = 2, ExpertsPerToken = 4 }, 5, std: 0.2f));

    /// <summary>The same check for the Qwen2 student (GQA with biases, split-half RoPE, dense SwiGLU).</summary>
    [Fact]
    public void Qwen2GradientMatchesFiniteDifferences() =>
        AssertGradientMatchesFiniteDifferences(RandomModel(TinyDeepSeekConfig.Preset("micro-qwen2", 24), 5, std: 0.2f));

    static void AssertGradientMatchesFiniteDifferences(TinyDeepSeek model)
    {
        var batch = RandomBatch(new TrainRandom(6), 24, 2, 5);
        using var pool = new WorkerPool(2);
        var tape = new Tape(pool);
        foreach (var p in model.Parameters.Values) p.ZeroGrad();
        tape.Backward(model.Loss(tape, batch, out _));
        tape.Recording = false;
        double L()
        {
            model.Loss(tape, batch, out var s); // the losses as the CE sums them, in double
            return s.Main.Loss + model.Config.MtpLossWeight * s.Mtp.Loss;
        }

        var rng = new TrainRandom(8);
        // the float32 loss's own rounding, seen through the central difference: ~1e-6 of the loss over 2·eps (a
        // near-invariant direction such as a key bias under softmax has a numeric slope of that order, and the
        // 256-bit and 512-bit paths round it differently)
        double floor = 1e-6 * Math.Abs(L()) / 2e-3;
        double worst = 0, diff2 = 0, num2 = 0;
        string worstName = "";
        foreach (var p in model.Parameters.Values)
        {
            var g = p.Grad!;
            double gNorm = Math.Sqrt(g.Sum(v => (double)v * v));
            if (gNorm < 1e-4) continue; // a direction of ~no change: the difference is all rounding
            var random = new double[p.Length];
            for (int i = 0; i < random.Length; i++) random[i] = rng.NextGaussian();
            double rNorm = Math.Sqrt(random.Sum(v => v * v));
            foreach (var dir in new[] { g.Select(v => v / gNorm).ToArray(), random.Select(v => v / rNorm).ToArray() })
            {
                double analytic = 0;
                for (int i = 0; i < dir.Length; i++) analytic += g[i] * dir[i];
                if (Math.Abs(analytic) < 0.05 * gNorm) continue; // a random direction nearly orthogonal to g
                const double eps = 2e-3;
                var keep = (float[])p.Data.Clone();
                for (int i = 0; i < dir.Length; i++) p.Data[i] = (float)(keep[i] + eps * dir[i]);
                double plus = L();
                for (int i = 0; i < dir.Length; i++) p.Data[i] = (float)(keep[i] - eps * dir[i]);
                double minus = L();
                keep.CopyTo(p.Data, 0);
                double numeric = (plus - minus) / (2 * eps);
                double rel = Math.Max(0, Math.Abs(numeric - analytic) - floor) / Math.Max(Math.Abs(numeric), 1e-8);
                if (rel > worst) { worst = rel; worstName = p.Name; }
                diff2 += (numeric - analytic) * (numeric - analytic);
                num2 += numeric * numeric;
            }
        }
        double overall = Math.Sqrt(diff2 / num2);
        Assert.True(overall <= 1e-3, $"relative error {overall:e2}");
        Assert.True(worst <= 1e-2, $"worst single relative error {worst:e2} in {worstName}");
    }

    [Theory]
    [InlineData(12, false)]
    [InlineData(0, false)]
    [InlineData(12, true)]
    public void EngineReadsTheExportWithTheSameLogits(int qLora, bool gguf)
    {
        var config = Micro(qLora: qLora);
        var model = RandomModel(config, 11);
        var (ids, expected) = TrainerLogits(model, 12);
        WithExport(model, gguf, loaded =>
        {
            var engine = Assert.IsType<DeepSeek>(loaded);
            Assert.Equal(config.Layers, engine.Config.Layers);
            Assert.True(engine.Config.HasRouterBias);
            Assert.Equal(config.MtpLayers, engine.MtpLayers.Count);
            var experts = new HashSet<int>();
            engine.OnRouting = (l, t, e, w) => { foreach (var x in e) experts.Add(l * 100 + x); };
            AssertSameLogits(engine, ids, expected, config.VocabSize);
            Assert.True(experts.Count >= 6, $"routing used only {experts.Count} (layer, expert) pairs");
        });
    }

    /// <summary>
    /// The Qwen2 student exported as Qwen2ForCausalLM (HF) and qwen2 (GGUF): the engine's Llama-family model reads it
    /// with grouped-query attention and q/k/v biases and gives the trainer's logits; the HF directory reads back into
    /// the trainer with every tensor equal.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EngineReadsTheQwen2ExportWithTheSameLogits(bool gguf)
    {
        var config = TinyDeepSeekConfig.Preset("micro-qwen2", 48) with { Layers = 3 };
        var model = RandomModel(config, 13);
        var (ids, expected) = TrainerLogits(model, 14);
        WithExport(model, gguf, loaded =>
        {
            var engine = Assert.IsType<Llama>(loaded);
            Assert.True(engine.Config.RopeNeox);
            Assert.Equal(config.KvHeads, engine.Config.KvHeads);
            Assert.True(engine.Config.QkvBias);
            AssertSameLogits(engine, ids, expected, config.VocabSize);
        });
        var dir = Path.Combine(Path.GetTempPath(), $"jevons-qwen2-{Guid.NewGuid():N}");
        try
        {
            TinyDeepSeekExport.WriteHuggingFace(model, dir);
            var back = TinyDeepSeekExport.ReadHuggingFace(dir);
            Assert.Equal(config, back.Config with { RmsNormEps = config.RmsNormEps });
            foreach (var (name, p) in model.Parameters) Assert.Equal(p.Data, back.Parameters[name].Data);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Qwen2ConfigurationsTheTrainerCannotBuildAreOneLineErrors()
    {
        var qwen = TinyDeepSeekConfig.Preset("micro-qwen2", 24);
        Assert.Contains("key/value heads", Assert.Throws<JevonsException>(() => new TinyDeepSeek(qwen with { KvHeads = 3 }, new TrainRandom(0))).Message);
        Assert.Contains("no routed experts", Assert.Throws<JevonsException>(() => new TinyDeepSeek(qwen with { RoutedExperts = 4 }, new TrainRandom(0))).Message);
        Assert.Contains("architecture", Assert.Throws<JevonsException>(() => new TinyDeepSeek(qwen with { Architecture = "llama" }, new TrainRandom(0))).Message);
    }

    /// <summary>Nine random ids and the trainer's logits for them (2 threads).</summary>
    static (int[] Ids, float[] Logits) TrainerLogits(TinyDeepSeek model, ulong seed)
    {
        var rng = new TrainRandom(seed);
        var ids = new int[9];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(model.Config.VocabSize);
        using var pool = new WorkerPool(2);
        return (ids, model.Logits(new Tape(pool), ids, 1, ids.Length));
    }

    /// <summary>The engine's logits for ids equal the trainer's within 1e-4, on logits large enough to mean something.</summary>
    static void AssertSameLogits(Model engine, int[] ids, float[] expected, int vocab)
    {
        var logits = new float[ids.Length * vocab];
        engine.Forward(engine.CreateState(ids.Length), ids, logits);
        double max = 0;
        for (int i = 0; i < logits.Length; i++) max = Math.Max(max, Math.Abs(logits[i] - expected[i]));
        Assert.True(max <= 1e-4, $"max |Δlogit| {max:e2}");
        Assert.True(expected.Select(Math.Abs).Max() > 1, "logits too small to compare meaningfully");
    }

    /// <summary>Exports the model (HF directory or GGUF) to a temporary place, loads it in the engine on 2 threads, runs body.</summary>
    static void WithExport(TinyDeepSeek model, bool gguf, Action<Model> body)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"jevons-export-{Guid.NewGuid():N}");
        try
        {
            string path = dir;
            if (gguf)
            {
                path = Path.Combine(dir, "model.gguf");
                TinyDeepSeekExport.WriteGguf(model, path);
            }
            else TinyDeepSeekExport.WriteHuggingFace(model, dir);
            using var loaded = LoadedModel.Load(path, new ModelOptions { Threads = 2 }, loadTokenizer: false);
            body(loaded.Model);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// The tiny-r1 preset at training shape (a batch of several sequences, hundreds of positions, two threads):
    /// the trainer's logits for every row of the batch equal the engine's on the export, so the trainer's
    /// attention, rope and batched products at the sizes a real run uses are the inference model's.
    /// </summary>
    [Fact]
    public void EngineMatchesTheTrainerAtTrainingShape()
    {
        var config = TinyDeepSeekConfig.Preset("tiny-r1", 64);
        var model = RandomModel(config, 21, std: 0.08f);
        var rng = new TrainRandom(22);
        int batch = 3, seq = 160;
        var ids = new int[batch * seq];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(config.VocabSize);
        using var pool = new WorkerPool(2);
        var expected = model.Logits(new Tape(pool), ids, batch, seq);
        WithExport(model, gguf: false, engine =>
        {
            int vocab = config.VocabSize;
            var logits = new float[seq * vocab];
            for (int b = 0; b < batch; b++)
            {
                engine.Forward(engine.CreateState(seq), ids.AsSpan(b * seq, seq), logits);
                double max = 0, scale = 0;
                for (int i = 0; i < logits.Length; i++)
                {
                    max = Math.Max(max, Math.Abs(logits[i] - expected[b * seq * vocab + i]));
                    scale = Math.Max(scale, Math.Abs(logits[i]));
                }
                Assert.True(max <= 1e-3 * Math.Max(1, scale), $"row {b}: max |Δlogit| {max:e2} (logits up to {scale:f2})");
            }
        });
    }

    static List<TrainingExample> CountingData(int vocab, int count, TrainRandom rng)
    {
        // Sequences "a, a+1, a+2, ..." mod vocab: predictable next and next-next tokens.
        var data = new List<TrainingExample>();
        for (int n = 0; n < count; n++)
        {
            int start = rng.NextInt(vocab), len = 8 + rng.NextInt(8);
            var ids = Enumerable.Range(0, len).Select(i => (start + i) % vocab).ToArray();
            var mask = Enumerable.Range(0, len).Select(i => i < 3 ? 0f : 1f).ToArray();
            data.Add(new TrainingExample(ids, mask));
        }
        return data;
    }

    static readonly TrainOptions Quick = new()
    {
        Steps = 150, BatchSize = 8, LearningRate = 1e-2f, MinLearningRate = 1e-3f, WarmupSteps = 10, Threads = 2, Seed = 3,
    };

    [Fact]
    public void LossFallsOnAMicroModel()
    {
        var config = TinyDeepSeekConfig.Preset("micro", 32) with { Layers = 2 };
        var data = CountingData(32, 64, new TrainRandom(1));
        using var trainer = new Trainer(new TinyDeepSeek(config, new TrainRandom(2)), data, Quick);
        var first = trainer.TrainStep();
        StepReport last = first;
        while (trainer.Step < Quick.Steps) last = trainer.TrainStep();
        Assert.True(first.Loss > 3, $"first loss {first.Loss}");
        Assert.True(last.Loss < 0.5, $"loss {first.Loss:0.###} → {last.Loss:0.###}");
        Assert.True(last.MtpAccuracy > 0.8, $"MTP next-next accuracy {last.MtpAccuracy:0.###}");
    }

    [Fact]
    public void ResumeIsExactAndRunsAreReproducible()
    {
        var config = TinyDeepSeekConfig.Preset("micro", 32) with { Layers = 2 };
        var data = CountingData(32, 32, new TrainRandom(1));
        var options = Quick with { Steps = 12 };
        var path = Path.Combine(Path.GetTempPath(), $"jevons-ckpt-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var straight = new Trainer(new TinyDeepSeek(config, new TrainRandom(2)), data, options);
            var curve = new List<double>();
            for (int i = 0; i < 12; i++) curve.Add(straight.TrainStep().Loss);

            using (var half = new Trainer(new TinyDeepSeek(config, new TrainRandom(2)), data, options with { Threads = 1 }))
            {
                for (int i = 0; i < 6; i++) Assert.Equal(curve[i], half.TrainStep().Loss); // same bits on 1 thread as on 2
                half.SaveCheckpoint(path);
            }
            using var resumed = Trainer.Resume(path, data, options);
            Assert.Equal(6, resumed.Step);
            for (int i = 6; i < 12; i++) Assert.Equal(curve[i], resumed.TrainStep().Loss);
            foreach (var (name, p) in straight.Model.Parameters)
                Assert.True(p.Data.AsSpan().SequenceEqual(resumed.Model.Parameters[name].Data), $"{name} differs after resume");
            foreach (var (layer, bias) in straight.Model.RouterBias)
                Assert.Equal(bias, resumed.Model.RouterBias[layer]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ReusedTapeMemoryGivesTheSameBits()
    {
        // Up to 1,024 positions a step in batches of similar lengths (8–63 tokens): the step's shapes change every
        // step, and its activations are large enough (≥ 16k floats) for the tape to keep and hand out again.
        var config = TinyDeepSeekConfig.Preset("micro", 32) with { Layers = 2 };
        var rng = new TrainRandom(5);
        var data = Enumerable.Range(0, 64).Select(_ =>
        {
            int start = rng.NextInt(32), len = 8 + rng.NextInt(56);
            return new TrainingExample(Enumerable.Range(0, len).Select(i => (start + i) % 32).ToArray(), Enumerable.Repeat(1f, len).ToArray());
        }).ToList();
        var options = Quick with { Steps = 8, BatchTokens = 1024 };
        using var reusing = new Trainer(new TinyDeepSeek(config, new TrainRandom(2)), data, options);
        using var fresh = new Trainer(new TinyDeepSeek(config, new TrainRandom(2)), data, options);
        Assert.True(reusing.Tape.ReuseMemory);
        fresh.Tape.ReuseMemory = false;
        var shapes = new HashSet<int>();
        for (int i = 0; i < 8; i++)
        {
            var a = reusing.TrainStep();
            Assert.Equal(a.Loss, fresh.TrainStep().Loss);
            shapes.Add(a.Tokens);
        }
        Assert.True(shapes.Count > 2, "the batches should differ in shape");
        foreach (var (name, p) in fresh.Model.Parameters)
            Assert.True(p.Data.AsSpan().SequenceEqual(reusing.Model.Parameters[name].Data), $"{name} differs with reused memory");
    }

    [Fact]
    public void ThreadCountDoesNotChangeTheBits()
    {
        // Large enough (1,024 positions × hidden 64, 16 experts' rows) that every spread op, the parallel packing
        // and AdamW's blocks really run on the pool's threads.
        var config = TinyDeepSeekConfig.Preset("micro", 32) with { HiddenSize = 64, IntermediateSize = 128, MoeIntermediateSize = 32 };
        var rng = new TrainRandom(7);
        var data = Enumerable.Range(0, 64).Select(_ =>
        {
            int start = rng.NextInt(32), len = 16 + rng.NextInt(48);
            return new TrainingExample(Enumerable.Range(0, len).Select(i => (start + i) % 32).ToArray(), Enumerable.Repeat(1f, len).ToArray());
        }).ToList();
        var options = Quick with { Steps = 4, BatchTokens = 1024 };
        var runs = new[] { 1, 2, 3 }.Select(threads =>
        {
            using var trainer = new Trainer(new TinyDeepSeek(config, new TrainRandom(2)), data, options with { Threads = threads });
            var losses = Enumerable.Range(0, 4).Select(_ => trainer.TrainStep()).Select(r => (r.Loss, r.GradientNorm)).ToList();
            return (losses, weights: trainer.Model.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value.Data.ToArray()));
        }).ToList();
        foreach (var run in runs.Skip(1))
        {
            Assert.Equal(runs[0].losses, run.losses);
            foreach (var (name, w) in runs[0].weights)
                Assert.True(w.AsSpan().SequenceEqual(run.weights[name]), $"{name} differs with another thread count");
        }
    }

    [Fact]
    public void BiasUpdateMovesTowardBalance()
    {
        var model = new TinyDeepSeek(TinyDeepSeekConfig.Preset("micro", 16) with { BiasUpdateSpeed = 0.01f }, new TrainRandom(1));
        int layer = model.RouterBias.Keys.First();
        model.UpdateRouterBias(new Dictionary<int, long[]> { [layer] = [10, 2, 4, 4] });
        Assert.Equal([-0.01f, 0.01f, 0.01f, 0.01f], model.RouterBias[layer]);
        var off = new TinyDeepSeek(TinyDeepSeekConfig.Preset("micro", 16) with { BiasUpdateSpeed = 0f }, new TrainRandom(1));
        off.UpdateRouterBias(new Dictionary<int, long[]> { [layer] = [10, 2, 4, 4] });
        Assert.All(off.RouterBias[layer], b => Assert.Equal(0f, b));
    }

    [Fact]
    public void TinyR1HasAFewMillionParameters()
    {
        var model = new TinyDeepSeek(TinyDeepSeekConfig.Preset("tiny-r1", 1536), new TrainRandom(1));
        Assert.InRange(model.ParameterCount, 2_000_000, 8_000_000);
    }
}
