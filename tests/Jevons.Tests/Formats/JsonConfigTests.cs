using Jevons.Formats;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Formats;

public class JsonConfigTests
{
    const string Sample = """
        {
          "hidden_size": 4096,
          "max_position_embeddings": 131072.0,
          "rms_norm_eps": 1e-05,
          "q_lora_rank": null,
          "tie_word_embeddings": false,
          "eos_token_id": [128001, 128008],
          "bos_token_id": 128000,
          "architectures": ["LlamaForCausalLM"],
          "rope_scaling": { "factor": 8.0, "rope_type": "llama3", "inner": { "x": 3 } },
          "dotted.key": 7,
          "text": "hi",
          "ratio": 1.5,
        }
        """;

    static JsonConfig Config() => JsonConfig.Parse(Sample, "config.json");

    [Fact]
    public void TypedGettersFollowHuggingFaceConventions()
    {
        var c = Config();
        Assert.Equal(4096, c.GetInt("hidden_size"));
        Assert.Equal(131072, c.GetInt("max_position_embeddings")); // integral float is an int
        Assert.Equal(1e-5, c.GetFloat("rms_norm_eps"));
        Assert.Equal(4096.0, c.GetFloat("hidden_size"));
        Assert.False(c.GetBool("tie_word_embeddings"));
        Assert.Equal("hi", c.GetString("text"));
        Assert.Equal(["LlamaForCausalLM"], c.GetStringArray("architectures")!);
        Assert.Equal([128001L, 128008], c.GetIntArray("eos_token_id")!);
        Assert.Equal([128000L], c.GetIntArray("bos_token_id")!); // a single int reads as an array
        Assert.Equal([8.0], c.GetFloatArray("rope_scaling.factor")!);
    }

    [Fact]
    public void NullReadsAsAbsent()
    {
        var c = Config();
        Assert.False(c.Has("q_lora_rank"));
        Assert.Null(c.GetInt("q_lora_rank"));
        Assert.Null(c.GetRaw("q_lora_rank"));
        Assert.Null(c.GetInt("no_such_key"));
        Assert.Null(c.GetIntArray("no_such_key"));
    }

    [Fact]
    public void DottedKeysWalkNestedObjects()
    {
        var c = Config();
        Assert.Equal(8.0, c.GetFloat("rope_scaling.factor"));
        Assert.Equal("llama3", c.GetString("rope_scaling.rope_type"));
        Assert.Equal(3, c.GetInt("rope_scaling.inner.x"));
        Assert.Equal(7, c.GetInt("dotted.key")); // a literal dotted name is found too
        Assert.Null(c.GetFloat("rope_scaling.missing"));
        Assert.Null(c.GetFloat("hidden_size.factor")); // walking through a number finds nothing
        Assert.Equal(System.Text.Json.JsonValueKind.Object, c.GetRaw("rope_scaling")!.Value.ValueKind);
    }

    [Fact]
    public void WrongTypesNameTheFileAndKey()
    {
        var c = Config();
        var e = Assert.Throws<JevonsException>(() => c.GetInt("ratio"));
        Assert.Equal("config.json: 'ratio' is 1.5, expected an integer", e.Message);
        e = Assert.Throws<JevonsException>(() => c.GetInt("text"));
        Assert.Contains("'text' is \"hi\", expected an integer", e.Message);
        Assert.Throws<JevonsException>(() => c.GetString("hidden_size"));
        Assert.Throws<JevonsException>(() => c.GetBool("hidden_size"));
        Assert.Throws<JevonsException>(() => c.GetInt("eos_token_id"));
        Assert.Throws<JevonsException>(() => c.GetFloat("rope_scaling"));
        Assert.Throws<JevonsException>(() => c.GetStringArray("eos_token_id"));
    }

    [Fact]
    public void InvalidOrMissingFiles()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<JevonsException>(() => JsonConfig.Load(dir.File("config.json")));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("not found", e.Message);
        Assert.Null(JsonConfig.LoadIfExists(dir.File("generation_config.json")));

        File.WriteAllText(dir.File("bad.json"), "{\"a\": 1,\n \"b\": }");
        e = Assert.Throws<JevonsException>(() => JsonConfig.Load(dir.File("bad.json")));
        Assert.Contains("bad.json", e.Message);
        Assert.Contains("invalid JSON", e.Message);
        Assert.DoesNotContain("\n", e.Message);

        File.WriteAllText(dir.File("array.json"), "[1]");
        Assert.Contains("expected a JSON object", Assert.Throws<JevonsException>(() => JsonConfig.Load(dir.File("array.json"))).Message);
    }

    [GoldenFact]
    public void GoldenConfigs()
    {
        var v3 = JsonConfig.Load(Golden.File("hf", "v3_fp8", "config.json")!);
        Assert.Equal(144, v3.GetInt("q_lora_rank"));
        Assert.Equal(40, v3.GetInt("rope_scaling.factor"));
        Assert.Equal("yarn", v3.GetString("rope_scaling.type"));
        Assert.Equal([128L, 128], v3.GetIntArray("quantization_config.weight_block_size")!);
        Assert.Equal(2.5, v3.GetFloat("routed_scaling_factor"));
        Assert.True(v3.GetBool("norm_topk_prob"));

        var lite = JsonConfig.Load(Golden.File("hf", "v2lite_bf16", "config.json")!);
        Assert.Null(lite.GetInt("q_lora_rank"));
        Assert.False(lite.Has("rope_scaling"));
        Assert.Null(lite.GetFloat("rope_scaling.factor"));

        var tok = JsonConfig.Load(Golden.File("tokenizer", "deepseek-v3", "tokenizer_config.json")!);
        Assert.NotNull(tok.GetRaw("bos_token"));
    }
}
