using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Jevons.Formats;
using Jevons.Fuzz;
using Jevons.Tests.Formats;
using Jevons.Tests.Fuzz;
using Xunit;
using Xunit.Abstractions;

namespace Jevons.Tests.Cli;

/// <summary>
/// Arguments and file contents reach the user as one escaped `error:` line with exit 1, never as
/// the internal error (exit 70); `inspect --check` finds non-finite weights; adversarial small files
/// stay within a small heap.
/// </summary>
public sealed class HardeningCliTests(ITestOutputHelper output) : IDisposable
{
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static string OneError(CliHarness.Result r)
    {
        Assert.Equal(1, r.ExitCode);
        return Assert.Single(r.ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal));
    }

    [Fact]
    public void EmptyModelPath() =>
        Assert.Equal("error: the model path is empty", OneError(CliHarness.Run("inspect", "--model", "")));

    [Theory]
    [InlineData("run", "-n", "'--n-predict'", -1)]
    [InlineData("bench", "-p", "'--n-prompt'", 0)]
    [InlineData("bench", "-n", "'--n-gen'", 0)]
    public void CountsThatWouldOverflow(string command, string option, string name, int min)
    {
        var r = command == "run"
            ? CliHarness.Run(command, "--model", "m.gguf", "--ids", "1", option, "2147483647")
            : CliHarness.Run(command, "--model", "m.gguf", option, "2147483647");
        Assert.Equal($"error: jevons {command}: option {name} must be an integer >= {min} (at most 16777216), got '2147483647'", OneError(r));
    }

    [Fact]
    public void ControlCharactersAreEscaped()
    {
        var path = _tmp.File("bad\u001b[31mname\u0007.gguf");
        var line = OneError(CliHarness.Run("inspect", "--model", path));
        Assert.Equal($"error: {_tmp.Path}/bad\\x1B[31mname\\x07.gguf: path does not exist", line);
        Assert.DoesNotContain('\u001b', line);
        Assert.Equal("bad\\x00\\x1B\\u202E ok \\uD800 🙂", JevonsException.Printable("bad\0\u001b\u202e ok \ud800 🙂"));
    }

    [Fact]
    public void InspectCheckFindsNonFiniteWeights()
    {
        var clean = TinyModels.Write("deepseek2-v3-f32", _tmp.File("clean"));
        var r = CliHarness.Run("inspect", "--model", clean, "--check");
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"^checked \d+ tensors \([\d,]+ values\): all finite$", r.Out.Trim());

        var path = TinyModels.RewriteGguf("deepseek2-v3-f32", _tmp.File("nan.gguf"), tensorBytes: (name, b) =>
        {
            if (name != "blk.1.ffn_gate_inp.weight" && name != "output_norm.weight") return b;
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b.AsSpan());
            f[0] = float.NaN;
            f[^1] = name == "output_norm.weight" ? float.NegativeInfinity : float.NaN;
            return b;
        });
        r = CliHarness.Run("inspect", "--model", path, "--check");
        Assert.Equal(1, r.ExitCode);
        var lines = r.Out.Trim().Split('\n');
        Assert.Contains("blk.1.ffn_gate_inp.weight: 2 NaN, 0 Inf (F32 [8, 32])", lines);
        Assert.Contains("output_norm.weight: 1 NaN, 1 Inf (F32 [32])", lines);
        Assert.Matches(@"^checked \d+ tensors \([\d,]+ values\): 2 hold non-finite values$", lines[^1]);
    }

    /// <summary>Fuzz cases through the CLI itself (in-process): exit 0 or 1, never 70.</summary>
    [Theory]
    [InlineData(FuzzFormat.Gguf)]
    [InlineData(FuzzFormat.Safetensors)]
    [InlineData(FuzzFormat.Json)]
    public void FuzzedFilesNeverReachTheInternalError(FuzzFormat format)
    {
        var campaign = new Campaign(TinyModels.Gguf, TinyModels.HuggingFace);
        var counts = new int[3];
        for (int i = 0; i < 150; i++)
        {
            var c = campaign.Make(format, Campaign.CaseRandom(77, format, i));
            var path = Campaign.Materialize(c, _tmp.File($"{format}-{i}"));
            var r = CliHarness.Run("run", "--model", path, "--ids", "1,2", "-n", "2", "--temperature", "0", "--print-ids");
            Assert.True(r.ExitCode is 0 or 1, $"case {i} ({c.Seed.Name}, {c.File}): exit {r.ExitCode}: {r.Error}");
            if (r.ExitCode == 1) Assert.Single(r.ErrorLines, l => l.StartsWith("error: ", StringComparison.Ordinal));
            counts[r.ExitCode]++;
        }
        output.WriteLine($"{format}: {counts[0]} ran, {counts[1]} refused");
        Assert.True(counts[0] > 0 && counts[1] > 0);
    }

    /// <summary>Random argument vectors (boundary numbers, empty and control-character strings) for the model commands: exit 0, 1 or 2, never 70.</summary>
    [Fact]
    public void RandomArgumentsNeverReachTheInternalError()
    {
        var model = TinyModels.Write("qwen2-q8_0", _tmp.File("args"));
        string[] values = ["", "0", "-1", "1", "2", "255", "256", "2147483647", "-2147483648", "16777216", "16777217", "1e309", "NaN", "-0",
            "0.5", "abc", "\u001b[2J", "1,2", "[]", "[1,,2]", "299", "300", "99999999999", "\0", model, _tmp.Path];
        string[] commands = ["run", "inspect", "tokenize", "eval-logits"];
        string[] options = ["--prompt", "-n", "--ids", "--temperature", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
            "--presence-penalty", "--frequency-penalty", "--repeat-last-n", "--seed", "--threads", "--ctx-size", "--stop", "--chat",
            "--ignore-eos", "--print-ids", "--no-bos", "--json", "--add-special", "--tokenizer", "--check", "--unknown", "--"];
        var rng = new Random(5);
        var exits = new int[3];
        for (int i = 0; i < 300; i++)
        {
            string command = commands[rng.Next(commands.Length)];
            var args = new List<string> { command };
            if (rng.Next(10) > 0) args.AddRange(["--model", rng.Next(8) == 0 ? values[rng.Next(values.Length)] : model]);
            for (int k = rng.Next(1, 5); k > 0; k--)
            {
                args.Add(options[rng.Next(options.Length)]);
                if (rng.Next(4) > 0) args.Add(values[rng.Next(values.Length)]);
            }
            if (command == "eval-logits") args.AddRange(["--out", _tmp.File("logits.f32")]);
            var r = CliHarness.Run([.. args]);
            Assert.True(r.ExitCode is 0 or 1 or 2, $"jevons {string.Join(" ", args)}: exit {r.ExitCode}: {r.Error}");
            exits[r.ExitCode]++;
        }
        output.WriteLine($"exit 0: {exits[0]}, exit 1: {exits[1]}, exit 2: {exits[2]}");
        Assert.True(exits[0] > 0 && exits[1] > 0);
    }

    /// <summary>
    /// Adversarial files under 64 KiB (huge counts, dims and ids): the CLI, run as its own process with
    /// the managed heap capped at 256 MiB (DOTNET_GCHeapHardLimit), refuses each with one error line;
    /// an allocation sized by the file would instead fail with OutOfMemoryException (exit 70 or a crash).
    /// </summary>
    [Fact]
    public void AdversarialSmallFilesStayUnderTheHeapCap()
    {
        var cases = new List<(string Name, string Path)>();
        string Gguf(string name, Func<string, GgufValue, GgufValue?> edit) =>
            TinyModels.RewriteGguf("qwen2-q8_0", _tmp.File(name + ".gguf"), edit);
        string Patched(string name, int offset, ulong value)
        {
            var b = (byte[])TinyModels.Find("qwen2-q8_0").Files[Seed.GgufFileName].Clone();
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(offset), value);
            var p = _tmp.File(name + ".gguf");
            File.WriteAllBytes(p, b);
            return p;
        }
        string Hf(string name, string file, Action<JsonNode> edit)
        {
            var node = JsonNode.Parse(TinyModels.Find("hf-llama-bf16-sharded").Files[file])!;
            edit(node);
            return TinyModels.Write("hf-llama-bf16-sharded", _tmp.File(name), file, Encoding.UTF8.GetBytes(node.ToJsonString(JsonMutator.WriteOptions)));
        }
        cases.Add(("tensor count 2^40", Patched("tensors", 8, 1UL << 40)));
        cases.Add(("metadata count 2^40", Patched("kvs", 16, 1UL << 40)));
        cases.Add(("block_count 2^31-1", Gguf("layers", (k, v) => k == "qwen2.block_count" ? GgufValue.UInt32(int.MaxValue) : v)));
        cases.Add(("context 2^32-1", Gguf("ctx", (k, v) => k == "qwen2.context_length" ? GgufValue.UInt32(uint.MaxValue) : v)));
        cases.Add(("hidden 2^30", Gguf("hidden", (k, v) => k == "qwen2.embedding_length" ? GgufValue.UInt32(1 << 30) : v)));
        cases.Add(("bos id 2^31-1", Gguf("bos", (k, v) => k == "tokenizer.ggml.bos_token_id" ? GgufValue.UInt32(int.MaxValue) : v)));
        cases.Add(("added token id 3e8", Hf("id3e8", "tokenizer.json", t => t["added_tokens"]!.AsArray()[0]!["id"] = 300_000_000)));
        cases.Add(("vocab id 2e9", Hf("id2e9", "tokenizer.json", t => t["model"]!["vocab"]!["zz"] = 2_000_000_000)));
        cases.Add(("added token id 4e6", Hf("id4e6", "tokenizer.json", t => t["added_tokens"]!.AsArray()[0]!["id"] = 4_000_000)));
        cases.Add(("num_hidden_layers 2^31-1", Hf("hflayers", "config.json", c => c["num_hidden_layers"] = int.MaxValue)));
        cases.Add(("intermediate_size 2^30", Hf("hfffn", "config.json", c => c["intermediate_size"] = 1 << 30)));
        cases.Add(("vocab_size 2^31-1", Hf("hfvocab", "config.json", c => c["vocab_size"] = int.MaxValue)));
        cases.Add(("weight_map of 10^5 names", Hf("index", "model.safetensors.index.json", ix =>
        {
            var map = ix["weight_map"]!.AsObject();
            for (int i = 0; i < 2000; i++) map[$"t{i}"] = "missing.safetensors";
        })));

        string cli = typeof(Jevons.Cli.JevonsCli).Assembly.Location;
        foreach (var (name, path) in cases)
        {
            foreach (var f in Directory.Exists(path) ? Directory.GetFiles(path) : [path])
                Assert.True(new FileInfo(f).Length < 64 << 10, $"{name}: {f} is {new FileInfo(f).Length} bytes");
            var psi = new ProcessStartInfo("dotnet", [cli, "inspect", "--model", path])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            psi.Environment["DOTNET_GCHeapHardLimit"] = "0x10000000";
            psi.Environment["DOTNET_gcServer"] = "0";
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            long peak = 0;
            while (!p.WaitForExit(20))
            {
                try { p.Refresh(); peak = Math.Max(peak, p.PeakWorkingSet64); } catch (InvalidOperationException) { }
            }
            p.WaitForExit();
            var errors = stderr.Result.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
            output.WriteLine($"{name}: exit {p.ExitCode}, peak working set {peak >> 20} MiB: {errors.FirstOrDefault()}");
            Assert.True(p.ExitCode == 1, $"{name}: exit {p.ExitCode}\n{stderr.Result}");
            Assert.Single(errors);
            Assert.DoesNotContain("internal error", errors[0]);
        }
    }
}
