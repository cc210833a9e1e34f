using System.Text.Json;
using Jevons.Tests.Support;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

/// <summary>
/// The GGUF path (llama.cpp's pre-tokenizer regexes by tokenizer.ggml.pre name) over the real
/// DeepSeek-V3 and Qwen3 vocabularies must give the Hugging Face golden ids: what a converted
/// GGUF of those models holds.
/// </summary>
public class GgufPresetEquivalenceTests
{
    static MetadataSource AsGgufMetadata(string name, string pre)
    {
        var hf = TokenizerGoldenTests.Load(name);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Golden.File("tokenizer", name, "tokenizer.json")!));
        var merges = doc.RootElement.GetProperty("model").GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.String ? m.GetString()! : m[0].GetString() + " " + m[1].GetString()).ToArray();
        var added = hf.AddedTokens.ToDictionary(a => a.Id);
        var tokens = Enumerable.Range(0, hf.VocabSize).Select(hf.TokenText).ToArray();
        var types = Enumerable.Range(0, hf.VocabSize).Select(i => added.TryGetValue(i, out var a) ? (a.Special ? 3 : 4) : 1).ToArray();
        return new MetadataSource(name + ".gguf", new()
        {
            ["tokenizer.ggml.model"] = "gpt2", ["tokenizer.ggml.pre"] = pre, ["tokenizer.ggml.tokens"] = tokens,
            ["tokenizer.ggml.token_type"] = types, ["tokenizer.ggml.merges"] = merges,
        });
    }

    [GoldenTheory]
    [InlineData("deepseek-v3", "deepseek-v3")]
    [InlineData("qwen3", "qwen2")]
    public void PresetRegexesReproduceReferenceIds(string name, string pre)
    {
        var t = Tokenizer.FromGguf(AsGgufMetadata(name, pre));
        int compared = 0;
        foreach (var c in TokenizerGoldenTests.CasesFile(name).GetProperty("cases").EnumerateArray())
        {
            if (!c.GetProperty("roundtrip_exact").GetBoolean()) continue; // Qwen's NFC normalizer is not part of a GGUF vocabulary
            var expected = c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.True(expected.SequenceEqual(t.Encode(c.GetProperty("text").GetString()!, false)), c.GetProperty("id").GetString());
            compared++;
        }
        Assert.True(compared >= 40, $"{compared} cases compared");
    }
}
