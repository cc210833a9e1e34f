using System.Text.Json;
using Jevons.Formats;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>
/// The CLI end to end against the DeepSeek reference goldens, the way an outside reviewer checks
/// (`eval-logits` and `run --print-ids`), including a sharded FP8 checkpoint with an index file.
/// </summary>
public sealed class GoldenCliTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-golden-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    void CheckCase(string modelDir, string variantDir, string caseName)
    {
        var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(variantDir, "golden.json"))).RootElement;
        var c = golden.GetProperty("cases").EnumerateArray().First(x => x.GetProperty("name").GetString() == caseName);
        var ids = c.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        int vocab = c.GetProperty("logits_shape")[1].GetInt32();
        var expected = Golden.ReadF32(Path.Combine(variantDir, c.GetProperty("logits_file").GetString()!));

        var outFile = Path.Combine(_dir, caseName + ".f32");
        var r = CliHarness.Run("eval-logits", "--model", modelDir, "--ids", string.Join(",", ids), "--out", outFile);
        Assert.True(r.ExitCode == 0, r.Error);
        var actual = Golden.ReadF32(outFile);
        Assert.Equal(ids.Length * vocab, actual.Length);
        float maxDiff = 0;
        for (int i = 0; i < actual.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(actual[i] - expected[i]));
        Assert.True(maxDiff < 1e-3f, $"max |diff| {maxDiff}");

        var greedy = c.GetProperty("greedy").GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        r = CliHarness.Run("run", "--model", modelDir, "--ids", string.Join(",", ids), "-n", greedy.Length.ToString(),
            "--temperature", "0", "--ignore-eos", "--print-ids");
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.Equal(JsonSerializer.Serialize(greedy), r.Out.Trim());
    }

    [GoldenTheory]
    [InlineData("v2lite_bf16")]
    [InlineData("v3_bf16")]
    [InlineData("v3_fp8")]
    public void EvalLogitsAndGreedyMatchTheReference(string variant)
    {
        var dir = Golden.File("hf", variant)!;
        CheckCase(dir, dir, "prompt_a");
    }

    [GoldenFact]
    public void ShardedFp8CheckpointWithIndex()
    {
        var src = Golden.File("hf", "v3_fp8")!;
        var dir = Path.Combine(_dir, "sharded");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
        using (var st = SafetensorsCheckpoint.Open(src))
        {
            var names = st.TensorNames.OrderBy(n => n, StringComparer.Ordinal).ToArray();
            var map = new List<KeyValuePair<string, string>>();
            long total = 0;
            const int shards = 3;
            for (int s = 0; s < shards; s++)
            {
                var file = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
                var w = new SafetensorsWriter();
                // Interleave tensors over the shards so every layer spans several files.
                for (int i = s; i < names.Length; i += shards)
                {
                    var t = st.Get(names[i]);
                    w.AddTensor(t);
                    map.Add(new(names[i], file));
                    total += t.ByteLength;
                }
                w.Write(Path.Combine(dir, file));
            }
            SafetensorsWriter.WriteIndex(Path.Combine(dir, "model.safetensors.index.json"), map, total);
        }
        Assert.Equal(3, Directory.GetFiles(dir, "*.safetensors").Length);
        CheckCase(dir, src, "prompt_b");
    }
}
