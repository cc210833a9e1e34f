using System.Text.Json;
using Jevons.Tests.Support;
using Jevons.Tokenization;
using Xunit;

namespace Jevons.Tests.Tokenization;

/// <summary>GGUF vocabularies of the llama.cpp goldens: prompt_text -> prompt_ids as llama.cpp made them.</summary>
public class GgufTokenizerTests
{
    public static IEnumerable<object[]> Models() =>
        new[] { "qwen2-tiny-f32", "llama-tiny-f32", "deepseek3-tiny-f32", "deepseek2-lite-tiny-f32", "qwen2-tiny-q8_0" }.Select(m => new object[] { m });

    [GoldenTheory]
    [MemberData(nameof(Models))]
    public void PromptIdsMatchLlamaCpp(string model)
    {
        var manifest = JsonDocument.Parse(File.ReadAllText(Golden.File("llamacpp", model + ".json")!)).RootElement;
        var t = Tokenizer.FromGguf(MetadataSource.ReadGguf(Golden.File("llamacpp", model + ".gguf")!));
        var text = manifest.GetProperty("prompt_text").GetString()!;
        var expected = manifest.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var tok = manifest.GetProperty("tokenizer");

        Assert.Equal(expected, t.Encode(text, addSpecialTokens: true, parseSpecial: false));
        Assert.Equal(expected[1..], t.Encode(text, addSpecialTokens: false));
        Assert.Equal(tok.GetProperty("bos_id").GetInt32(), t.BosId);
        Assert.Equal(tok.GetProperty("eos_id").GetInt32(), t.EosIds[0]);
        Assert.Equal(tok.GetProperty("n_vocab").GetInt32(), t.VocabSize);
        Assert.True(t.AddBos);
        Assert.Equal(text, t.Decode(expected, skipSpecialTokens: true));
        Assert.Equal(t.TokenText(expected[0]) + text, t.Decode(expected));
    }

    [GoldenFact]
    public void ControlAndUserDefinedTokensAreMatchedInText()
    {
        var t = Tokenizer.FromGguf(MetadataSource.ReadGguf(Golden.File("llamacpp", "qwen2-tiny-f32.gguf")!));
        // ids 2000 EOS (control), 2001 <｜User｜>, 2002 <｜Assistant｜> (user-defined), 2003 BOS (control), 2004/2005 <think> </think>
        var ids = t.Encode("<｜begin▁of▁sentence｜><｜User｜>Hi<think>x</think><｜Assistant｜>", addSpecialTokens: false);
        Assert.Equal(2003, ids[0]);
        Assert.Equal(2001, ids[1]);
        Assert.Contains(2004, ids);
        Assert.Contains(2005, ids);
        Assert.Equal(2002, ids[^1]);
        Assert.True(t.IsSpecial(2003));
        Assert.False(t.IsSpecial(2004));
        // With parseSpecial = false, control tokens are plain text but user-defined ones still match.
        var plain = t.Encode("<｜begin▁of▁sentence｜><think>", addSpecialTokens: false, parseSpecial: false);
        Assert.DoesNotContain(2003, plain);
        Assert.Equal(2004, plain[^1]);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<think>x</think><｜Assistant｜>", t.Decode(ids));
        Assert.Equal("<｜User｜>Hi<think>x</think><｜Assistant｜>", t.Decode(ids, skipSpecialTokens: true)); // only control tokens are skipped
    }
}
