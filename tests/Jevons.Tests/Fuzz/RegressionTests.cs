using System.Text;
using System.Text.Json.Nodes;
using Jevons.Formats;
using Jevons.Fuzz;
using Jevons.Inference;
using Jevons.Tests.Formats;
using Xunit;

namespace Jevons.Tests.Fuzz;

/// <summary>
/// One test per bug class the fuzzer (and the outside check) found, each with its minimized input
/// (a seed model with one field changed) and the exact message the reader now gives. Before the
/// fixes each of these escaped as an internal error (InvalidOperationException, OverflowException,
/// ArgumentOutOfRangeException, IndexOutOfRangeException, OutOfMemoryException) or hung.
/// </summary>
public sealed class RegressionTests : IDisposable
{
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static string Error(string path) => Assert.Throws<JevonsException>(() => Harness.Pipeline(path)).Message;

    /// <summary>An HF seed with one JSON file edited as a tree.</summary>
    string Hf(string seed, string file, Action<JsonNode> edit)
    {
        var node = JsonNode.Parse(TinyModels.Find(seed).Files[file])!;
        edit(node);
        return TinyModels.Write(seed, _tmp.File(seed), file, Encoding.UTF8.GetBytes(node.ToJsonString(JsonMutator.WriteOptions)));
    }

    /// <summary>An HF seed with one file's bytes edited.</summary>
    string HfBytes(string seed, string file, Func<byte[], byte[]> edit) =>
        TinyModels.Write(seed, _tmp.File(seed), file, edit(TinyModels.Find(seed).Files[file]));

    static byte[] Replace(byte[] text, string find, byte[] with)
    {
        int at = text.AsSpan().IndexOf(Encoding.UTF8.GetBytes(find));
        Assert.True(at >= 0, $"'{find}' not in the seed");
        return [.. text.AsSpan(0, at), .. with, .. text.AsSpan(at + Encoding.UTF8.GetByteCount(find))];
    }

    static int IndexOf(string path, byte[] what) => File.ReadAllBytes(path).AsSpan().IndexOf(what);

    // ---- tokenizer.json: values of the wrong kind ----

    [Fact]
    public void VocabIdThatIsAString()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["model"]!["vocab"]!["zz"] = "5");
        Assert.Equal($"{dir}/tokenizer.json: model.vocab['zz'] is \"5\", expected a non-negative integer id", Error(dir));
    }

    [Fact]
    public void EmptyMerge()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["model"]!["merges"]!.AsArray().Insert(0, ""));
        Assert.Equal($"{dir}/tokenizer.json: model.merges[0] = '' is malformed (expected 'left right')", Error(dir));
    }

    [Fact]
    public void MergeOfNumbers()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["model"]!["merges"]!.AsArray()[0] = new JsonArray(1, 2));
        Assert.Equal($"{dir}/tokenizer.json: model.merges[0] is [1,2], expected \"left right\" or [\"left\", \"right\"]", Error(dir));
    }

    [Fact]
    public void PostProcessorSingleOfNumbers()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["post_processor"] = JsonNode.Parse("""{"type":"TemplateProcessing","single":[5],"special_tokens":{}}"""));
        Assert.Equal($"{dir}/tokenizer.json: post_processor.single holds 5, expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}} objects", Error(dir));
    }

    [Fact]
    public void GenerationConfigEosOfWrongKindIsIgnored()
    {
        var dir = Hf("hf-qwen2-f32", "generation_config.json", g => g["eos_token_id"] = JsonNode.Parse("""["x", 1]"""));
        Harness.Pipeline(dir);
    }

    // ---- tokenizer.json: ids that size arrays ----

    [Fact]
    public void AddedTokenIdFarBeyondTheEntries()
    {
        int entries = 0;
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t =>
        {
            t["added_tokens"]!.AsArray()[0]!["id"] = 3_000_000;
            entries = t["model"]!["vocab"]!.AsObject().Count + t["added_tokens"]!.AsArray().Count;
        });
        Assert.Equal($"{dir}/tokenizer.json: token id 3000000 leaves {3_000_001 - entries} of 3000001 ids unused (only {entries} tokens are declared); the ids are corrupt", Error(dir));
    }

    [Fact]
    public void TokenIdsAboveTheCap()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["model"]!["vocab"]!["zz"] = int.MaxValue); // was an OverflowException
        Assert.Equal($"{dir}/tokenizer.json: token id 2147483647 is above the 4194303 this reader accepts", Error(dir));
        dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["added_tokens"]!.AsArray()[0]!["id"] = 300_000_000); // took 2.4 GB
        Assert.Equal($"{dir}/tokenizer.json: token id 300000000 is above the 4194303 this reader accepts", Error(dir));
    }

    // ---- invalid UTF-8 and lone surrogates ----

    [Fact]
    public void InvalidUtf8InTokenizerString()
    {
        var dir = HfBytes("hf-qwen2-f32", "tokenizer.json", b => Replace(b, "\"<think>\"", [(byte)'"', (byte)'<', 0xFF, .. "think>\""u8]));
        int offset = IndexOf(Path.Combine(dir, "tokenizer.json"), [(byte)'"', (byte)'<', 0xFF]);
        Assert.Equal($"{dir}/tokenizer.json (offset {offset}): a string at or after key 'content' is not valid UTF-8 text (invalid bytes or a lone surrogate escape)", Error(dir));
    }

    [Fact]
    public void LoneSurrogateInConfig()
    {
        var dir = HfBytes("hf-qwen2-f32", "config.json", b => Replace(b, "{", "{\"note\":\"\\ud800\","u8.ToArray()));
        Assert.Equal($"{dir}/config.json (offset 8): a string at or after key 'note' is not valid UTF-8 text (invalid bytes or a lone surrogate escape)", Error(dir));
    }

    [Fact]
    public void LoneSurrogateInIndexKey()
    {
        var dir = HfBytes("hf-llama-bf16-sharded", "model.safetensors.index.json", b => Replace(b, "\"weight_map\":{", "\"weight_map\":{\"\\udc00\":\"x\","u8.ToArray()));
        var index = Path.Combine(dir, "model.safetensors.index.json");
        int offset = IndexOf(index, "\"\\udc00\""u8.ToArray());
        Assert.Equal($"{index} (offset {offset}): a property name at or after key 'weight_map' is not valid UTF-8 text (invalid bytes or a lone surrogate escape)", Error(dir));
    }

    [Fact]
    public void InvalidUtf8InSafetensorsHeaderName()
    {
        var dir = HfBytes("hf-qwen2-f32", "model.safetensors", b =>
        {
            var d = (byte[])b.Clone();
            int quote = Array.IndexOf(d, (byte)'"', 8);
            d[quote + 1] = 0xFF;
            return d;
        });
        int at = Array.IndexOf(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), (byte)'"', 8);
        Assert.Equal($"{dir}/model.safetensors (offset {at}): a property name is not valid UTF-8 text (invalid bytes or a lone surrogate escape)", Error(dir));
    }

    // ---- regexes from tokenizer.json ----

    [Fact]
    public void CatastrophicSplitRegexTimesOut()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"] = new JsonObject { ["Regex"] = "(a+)+$" });
        var tok = Jevons.Tokenization.Tokenizer.Load(dir);
        var e = Assert.Throws<JevonsException>(() => tok.Encode(new string('a', 40) + "!", addSpecialTokens: false));
        Assert.Equal("tokenizer regex '(a+)+$' took over 1 s on one match (catastrophic backtracking); the tokenizer file's pattern is unusable", e.Message);
    }

    [Fact]
    public void InvalidReplaceRegex()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["normalizer"] = JsonNode.Parse("""{"type":"Replace","pattern":{"Regex":"("},"content":""}"""));
        Assert.StartsWith($"{dir}/tokenizer.json: Replace normalizer regex '(' is not supported: ", Error(dir));
    }

    [Fact]
    public void EmptyReplaceLiteral()
    {
        var dir = Hf("hf-qwen2-f32", "tokenizer.json", t => t["normalizer"] = JsonNode.Parse("""{"type":"Replace","pattern":{"String":""},"content":"x"}"""));
        Assert.Equal($"{dir}/tokenizer.json: normalizer Replace has an empty pattern.String", Error(dir));
    }

    // ---- config values ----

    [Theory]
    [InlineData("num_hidden_layers", 2147483647L, "'num_hidden_layers' = 2147483647 is out of range: expected a value in [1, 1024]")]
    [InlineData("hidden_size", 0L, "'hidden_size' = 0 is out of range: expected a positive size in [1, 1048576]")]
    [InlineData("intermediate_size", -5L, "'intermediate_size' = -5 is out of range: expected a positive size in [1, 1048576]")]
    [InlineData("max_position_embeddings", 4294967297L, "'max_position_embeddings' = 4294967297 is out of range: expected a value in [1, 16777216]")]
    public void ConfigSizeOutOfRange(string key, long value, string message)
    {
        var dir = Hf("hf-qwen2-f32", "config.json", c => c[key] = value);
        Assert.Equal($"{dir}/config.json: {message}", Error(dir));
    }

    [Fact]
    public void MoreLayersThanTheFilesHold()
    {
        var dir = Hf("hf-qwen2-f32", "config.json", c => c["num_hidden_layers"] = 1000);
        int tensors = SafetensorsCheckpoint.Open(dir).TensorCount;
        Assert.Equal($"{dir}/config.json: 'num_hidden_layers' = 1000 layers, but the files hold only {tensors} tensors (a layer has at least 5)", Error(dir));
    }

    [Fact]
    public void RopeThetaZero()
    {
        var path = TinyModels.RewriteGguf("qwen2-f32", _tmp.File("theta.gguf"), (k, v) => k == "qwen2.rope.freq_base" ? GgufValue.Float32(0) : v);
        Assert.Equal($"{path}: 'qwen2.rope.freq_base' = 0 is out of range: expected a finite number > 0", Error(path));
    }

    [Fact]
    public void RmsEpsInfinite()
    {
        var dir = Hf("hf-v3-bf16", "config.json", c => c["rms_norm_eps"] = JsonNode.Parse("1e999")); // parses as +inf
        Assert.Equal($"{dir}/config.json: 'rms_norm_eps' = Infinity is out of range: expected a finite number > 0 and <= 1", Error(dir));
    }

    [Fact]
    public void DeepSeekBlockCountThatOverflowedTheCast()
    {
        var path = TinyModels.RewriteGguf("deepseek2-v2-f32", _tmp.File("blocks.gguf"), (k, v) => k == "deepseek2.block_count" ? GgufValue.UInt32(uint.MaxValue) : v);
        Assert.Equal($"{path}: 'deepseek2.block_count' = 4294967295 is out of range: expected a value in [1, 1024]", Error(path));
    }

    [Fact]
    public void DeepSeekExpertsPerTokenAboveExperts()
    {
        var path = TinyModels.RewriteGguf("deepseek2-v2-f32", _tmp.File("topk.gguf"), (k, v) => k == "deepseek2.expert_used_count" ? GgufValue.UInt32(5) : v);
        Assert.Equal($"{path}: 'deepseek2.expert_used_count' = 5 is out of range: expected a value in [1, 4]", Error(path));
    }

    // ---- GGUF header counts and extents ----

    string SparseGguf(string name, int patchOffset, ulong value, long length)
    {
        var bytes = (byte[])TinyModels.Find("qwen2-f32").Files[Seed.GgufFileName].Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(patchOffset), value);
        var path = _tmp.File(name);
        using (var f = File.Create(path))
        {
            f.Write(bytes);
            f.SetLength(length); // sparse: no disk used
        }
        return path;
    }

    [Fact]
    public void MetadataCountInALargeSparseFile()
    {
        var path = SparseGguf("kv.gguf", 16, 1 << 20, 1L << 32);
        Assert.Equal($"{path} (offset 16): header declares 1048576 metadata entries, more than the 65536 this reader accepts", Error(path));
    }

    [Fact]
    public void TensorCountInALargeSparseFile()
    {
        var path = SparseGguf("tensors.gguf", 8, 1 << 24, 1L << 32);
        Assert.Equal($"{path} (offset 8): header declares 16777216 tensors, more than the 1048576 this reader accepts", Error(path));
    }

    [Fact]
    public void KeyLengthInALargeSparseFile()
    {
        var path = SparseGguf("key.gguf", 24, 1 << 30, 1L << 32);
        Assert.Equal($"{path} (offset 24): metadata key 0 declares 1073741824 bytes, more than the 65536 this reader accepts", Error(path));
    }

    [Fact]
    public void TensorByteLengthThatOverflowsTheExtentSum()
    {
        // The last tensor (by offset) gets ne1 = 2^56 - 1: its byte length is 2^63 - 128, and
        // data offset + tensor offset + length wrapped negative, so the view passed the check.
        var seed = TinyModels.Find("qwen2-f32").Files[Seed.GgufFileName];
        var path = _tmp.File("extent.gguf");
        File.WriteAllBytes(path, seed);
        GgufTensorInfo last;
        long dataOffset;
        using (var g = GgufFile.Open(path))
        {
            last = g.TensorInfos.MaxBy(t => t.Offset)!;
            dataOffset = g.DataOffset;
        }
        Assert.Equal(2, last.Shape.Length);
        var sites = new GgufMutator(seed).Sites;
        int lastDims = sites.Select((s, i) => (s, i)).Last(x => x.s.Kind == GgufMutator.Field.NDims).i;
        var ne1 = sites[lastDims + 2];
        var bytes = (byte[])seed.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(ne1.Offset), (1L << 56) - 1);
        File.WriteAllBytes(path, bytes);
        Assert.Equal($"{path} (offset {dataOffset + last.Offset}): tensor '{last.Name}': truncated file: data of 9223372036854775680 bytes (F32 [72057594037927935, {last.Shape[1]}]) at offset {last.Offset} of the data section (which starts at byte {dataOffset}) extends past the end of the file ({seed.Length} bytes)",
            Error(path));
    }

    [Fact]
    public void GgufByteTokenWithBadHexLoads()
    {
        var path = TinyModels.RewriteGguf("qwen2-f32", _tmp.File("bytetok.gguf"), (k, v) => k switch
        {
            "tokenizer.ggml.tokens" => GgufValue.Array(v.AsArray<string>().Select((t, i) => i == 5 ? "<0xZZ>" : t).ToArray()),
            "tokenizer.ggml.token_type" => GgufValue.Array(v.AsArray<int>().Select((t, i) => i == 5 ? 6 : t).ToArray()),
            _ => v,
        });
        Harness.Pipeline(path); // was FormatException from Convert.ToByte
    }

    // ---- non-finite weights ----

    [Fact]
    public void NaNRouterWeightsRouteDeterministically()
    {
        // All router logits NaN: top-k used NaN as its "taken" marker, found no expert, and indexed -1.
        var path = TinyModels.RewriteGguf("deepseek2-v3-f32", _tmp.File("nan.gguf"), tensorBytes: (name, b) =>
            name == "blk.1.ffn_gate_inp.weight" ? MemoryMarshalNaN(b.Length) : b);
        Harness.Pipeline(path);
        using var source = Jevons.Models.ModelLoader.Open(path);
        var n = NonFiniteScan.Count(source.Weights.Get("blk.1.ffn_gate_inp.weight"));
        Assert.Equal(source.Weights.Get("blk.1.ffn_gate_inp.weight").ElementCount, n.NaN);
    }

    static byte[] MemoryMarshalNaN(int bytes)
    {
        var f = new float[bytes / 4];
        Array.Fill(f, float.NaN);
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()).ToArray();
    }

    [Fact]
    public void SamplingWithNaNLogitsIsDefined()
    {
        Assert.Equal(0, Sampler.ArgMax([float.NaN, float.NaN]));
        Assert.Equal(2, Sampler.ArgMax([float.NaN, 1, 3, 3, float.NaN]));
        var greedyish = new Sampler(new SamplerOptions { Temperature = 1, TopK = 1, Seed = 3 });
        Assert.Equal(2, greedyish.Sample(new float[] { float.NaN, 1, 3, float.NaN }, []));
        var s = new Sampler(new SamplerOptions { Temperature = 0.8f, Seed = 3 });
        Assert.Equal(0, s.Sample(new float[] { float.NaN, float.NaN, float.NaN }, []));
        Assert.Equal(1, s.Sample(new float[] { 0, float.PositiveInfinity, float.NaN }, []));
    }
}
