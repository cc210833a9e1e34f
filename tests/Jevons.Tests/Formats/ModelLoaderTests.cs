using Jevons.Formats;
using Jevons.Models;
using Jevons.Numerics;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Formats;

public class ModelLoaderTests
{
    [GoldenFact]
    public void OpensGgufWithItsArchitectureAndMetadata()
    {
        using var m = ModelLoader.Open(Golden.File("llamacpp", "qwen2-tiny-f32.gguf")!);
        Assert.Equal(ModelFormat.Gguf, m.Format);
        Assert.Equal("qwen2", m.Architecture);
        Assert.Equal(128, m.Int("hidden_size", "embedding_length"));
        Assert.Equal(2, m.Int("num_key_value_heads", "attention.head_count_kv"));
        Assert.Equal([2006L, 128], m.Weights.Get("token_embd.weight").Shape);
    }

    [GoldenFact]
    public void OpensHuggingFaceDirectoryFileAndConfig()
    {
        var dir = Golden.File("hf", "v3_fp8")!;
        foreach (var path in new[] { dir, Path.Combine(dir, "model.safetensors"), Path.Combine(dir, "config.json") })
        {
            using var m = ModelLoader.Open(path);
            Assert.Equal(ModelFormat.HuggingFace, m.Format);
            Assert.Equal("DeepseekV3ForCausalLM", m.Architecture);
            Assert.Equal(112, m.Int("kv_lora_rank", "attention.kv_lora_rank"));
            Assert.Equal(40.0, m.Float("rope_scaling.factor", "rope.scaling.factor"));
            Assert.Equal(DType.F8_E4M3, m.Weights.Get("model.layers.0.self_attn.q_b_proj.weight").Type);
        }
    }

    [Fact]
    public void ArchitectureFallsBackToModelType()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), """{"model_type": "qwen2", "hidden_size": 8}""");
        var w = new SafetensorsWriter();
        w.AddTensor("x", DType.F32, [2], new byte[8]);
        w.Write(dir.File("model.safetensors"));
        using var m = ModelLoader.Open(dir.Path);
        Assert.Equal("qwen2", m.Architecture);
        Assert.Equal(8, m.Int("hidden_size", "embedding_length"));
    }

    static JevonsException Fails(string path, params string[] expected)
    {
        var e = Assert.Throws<JevonsException>(() => ModelLoader.Open(path).Dispose());
        foreach (var s in expected) Assert.Contains(s, e.Message);
        return e;
    }

    [Fact]
    public void ClearErrorsForWrongPaths()
    {
        using var dir = new TempDir();
        Fails(dir.File("nope.gguf"), "nope.gguf", "does not exist");
        Fails(dir.Path, dir.Path, "no config.json");

        File.WriteAllText(dir.File("model.bin"), "x");
        Fails(dir.File("model.bin"), "model.bin", "unknown model file type '.bin'");

        var w = new SafetensorsWriter();
        w.AddTensor("x", DType.F32, [1], new byte[4]);
        w.Write(dir.File("model.safetensors"));
        Fails(dir.File("model.safetensors"), "no config.json");

        using var noWeights = new TempDir();
        File.WriteAllText(noWeights.File("config.json"), """{"architectures": ["LlamaForCausalLM"]}""");
        Fails(noWeights.Path, "no .safetensors files");

        using var noArch = new TempDir();
        File.WriteAllText(noArch.File("config.json"), """{"hidden_size": 8}""");
        w.Write(noArch.File("model.safetensors"));
        Fails(noArch.Path, "config.json", "neither 'architectures' nor 'model_type'");

        using var gguf = new TempDir();
        var g = new GgufWriter();
        g.Set("general.name", GgufValue.String("x"));
        g.Write(gguf.File("noarch.gguf"));
        Fails(gguf.File("noarch.gguf"), "noarch.gguf", "no general.architecture");
        // A directory holding exactly one .gguf opens it.
        Fails(gguf.Path, "noarch.gguf", "no general.architecture");
    }
}
