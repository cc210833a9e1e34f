using System.Text;
using Jevons.Formats;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>
/// Bad input reaches the user as one `error: ...` line that names the file (and tensor) and the
/// problem, with a non-zero exit and no stack trace.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static void AssertOneErrorLine(CliHarness.Result r, params string[] mustContain)
    {
        Assert.NotEqual(0, r.ExitCode);
        var errors = r.ErrorLines.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
        Assert.Single(errors);
        foreach (var s in mustContain) Assert.Contains(s, errors[0]);
        Assert.DoesNotContain("   at ", r.Error);
        Assert.Equal("", r.Out.Trim());
    }

    string Golden(string name) => Support.Golden.File("llamacpp", name)!;

    [GoldenFact]
    public void TruncatedGguf()
    {
        var src = File.ReadAllBytes(Golden("qwen2-tiny-f32.gguf"));
        var path = Path.Combine(_dir, "cut.gguf");
        File.WriteAllBytes(path, src[..(src.Length / 2)]);
        var r = CliHarness.Run("run", "--model", path, "--ids", "1,2", "-n", "1", "--print-ids");
        AssertOneErrorLine(r, "cut.gguf", "truncated");
    }

    [GoldenFact]
    public void CorruptGgufMagic()
    {
        var src = File.ReadAllBytes(Golden("qwen2-tiny-f32.gguf"));
        src[0] = (byte)'X';
        var path = Path.Combine(_dir, "magic.gguf");
        File.WriteAllBytes(path, src);
        var r = CliHarness.Run("eval-logits", "--model", path, "--ids", "1", "--out", Path.Combine(_dir, "l.f32"));
        AssertOneErrorLine(r, "magic.gguf", "magic");
        Assert.False(File.Exists(Path.Combine(_dir, "l.f32")));
    }

    [Fact]
    public void UnknownArchitecture()
    {
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.String("gpt-neox"));
        w.AddTensor("token_embd.weight", Jevons.Numerics.DType.F32, [4, 8], new byte[4 * 8 * 4]);
        var path = Path.Combine(_dir, "neox.gguf");
        w.Write(path);
        var r = CliHarness.Run("inspect", "--model", path);
        AssertOneErrorLine(r, "neox.gguf", "unknown architecture 'gpt-neox'", "qwen2");
    }

    [GoldenFact]
    public void TokenIdOutOfVocabulary()
    {
        var r = CliHarness.Run("eval-logits", "--model", Golden("qwen2-tiny-f32.gguf"), "--ids", "1,999999", "--out", Path.Combine(_dir, "l.f32"));
        AssertOneErrorLine(r, "999999", "out of vocabulary", "2006");
        r = CliHarness.Run("run", "--model", Golden("llama-tiny-f32.gguf"), "--ids", "5,2006", "-n", "2", "--print-ids");
        AssertOneErrorLine(r, "2006", "out of vocabulary");
    }

    [GoldenFact]
    public void MissingTokenizerForTextPrompt()
    {
        // An HF checkpoint directory without tokenizer.json: token ids work, text needs a tokenizer.
        var dir = Path.Combine(_dir, "hf");
        Directory.CreateDirectory(dir);
        var src = Support.Golden.File("hf", "v2lite_bf16")!;
        File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
        File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var r = CliHarness.Run("run", "--model", dir, "hello there", "-n", "2");
        AssertOneErrorLine(r, "tokenizer");
        var ok = CliHarness.Run("run", "--model", dir, "--ids", "0,5,6", "-n", "3", "--temperature", "0", "--print-ids");
        Assert.Equal(0, ok.ExitCode);
        Assert.Matches(@"^\[\d+,\d+,\d+\]$", ok.Out.Trim());
    }

    [GoldenFact]
    public void TruncatedSafetensors()
    {
        var dir = Path.Combine(_dir, "hfcut");
        Directory.CreateDirectory(dir);
        var src = Support.Golden.File("hf", "v3_fp8")!;
        File.Copy(Path.Combine(src, "config.json"), Path.Combine(dir, "config.json"));
        var bytes = File.ReadAllBytes(Path.Combine(src, "model.safetensors"));
        File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), bytes[..(bytes.Length - 1000)]);
        var r = CliHarness.Run("inspect", "--model", dir);
        AssertOneErrorLine(r, "model.safetensors", "truncated");
    }

    [Fact]
    public void UnknownSafetensorsDtypeAndSizeMismatch()
    {
        string Write(string name, string dtype, long[] shape, int dataBytes)
        {
            var header = $"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[0,{dataBytes}]}}}}";
            while (header.Length % 8 != 0) header += " ";
            var dir = Path.Combine(_dir, name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "config.json"), "{\"architectures\":[\"Qwen2ForCausalLM\"]}");
            using var f = File.Create(Path.Combine(dir, "model.safetensors"));
            f.Write(BitConverter.GetBytes((long)header.Length));
            f.Write(Encoding.UTF8.GetBytes(header));
            f.Write(new byte[dataBytes]);
            return dir;
        }
        var r = CliHarness.Run("inspect", "--model", Write("f4", "F4", [2, 2], 2));
        AssertOneErrorLine(r, "model.safetensors", "'w'", "F4");
        r = CliHarness.Run("inspect", "--model", Write("size", "F32", [3, 4], 40));
        AssertOneErrorLine(r, "model.safetensors", "'w'");
    }

    [Fact]
    public void MissingModelPath()
    {
        var r = CliHarness.Run("inspect", "--model", Path.Combine(_dir, "nothing-here"));
        AssertOneErrorLine(r, "nothing-here");
    }
}
