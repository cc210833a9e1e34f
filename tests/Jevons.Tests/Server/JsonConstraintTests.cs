using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>The json_object recognizer over a vocabulary of one token per ASCII byte (id = byte) plus EOS (128).</summary>
public sealed class JsonConstraintTests
{
    const int Eos = 128;
    static readonly byte[][] Tokens = [.. Enumerable.Range(0, 128).Select(b => new[] { (byte)b }), []];
    static readonly bool[] Special = [.. Enumerable.Range(0, 129).Select(i => i == Eos)];

    /// <summary>The ids the constraint allows after <paramref name="prefix"/>.</summary>
    static HashSet<int> Allowed(string prefix)
    {
        var c = new JsonConstraint(Tokens, Special, [Eos]);
        var logits = new float[129];
        c.Apply(prefix.Select(ch => (int)ch).ToArray(), logits);
        return Enumerable.Range(0, 129).Where(i => !float.IsNegativeInfinity(logits[i])).ToHashSet();
    }

    [Theory]
    [InlineData("""{"a": [1, -2.5e3, 0.25E-7, true, false, null, "x\"y\u00e9"], "b": {}, "c": []}""")]
    [InlineData(" {\n\t\"k\" : { \"n\" : [ [ ] , { } ] } }")]
    [InlineData("{}")]
    public void EveryByteOfValidJsonIsAllowedAndThenOnlyEos(string json)
    {
        for (int i = 0; i < json.Length; i++)
            Assert.True(Allowed(json[..i]).Contains(json[i]), $"'{json[i]}' after '{json[..i]}'");
        Assert.Equal([Eos], Allowed(json));
        Assert.DoesNotContain(Eos, Allowed(json[..^1]));
    }

    [Theory]
    [InlineData("", '[')]        // the top level is an object
    [InlineData("", '"')]
    [InlineData("{", ',')]
    [InlineData("{", '1')]       // keys are strings
    [InlineData("{\"a\"", '1')]  // a colon first
    [InlineData("{\"a\":", '}')]
    [InlineData("{\"a\":[1,", ']')] // no trailing comma
    [InlineData("{\"a\":0", '1')]   // no leading zeros
    [InlineData("{\"a\":-", 'e')]
    [InlineData("{\"a\":1.", '}')]
    [InlineData("{\"a\":tr", 'e')]
    [InlineData("{\"a\":\"\\", 'x')] // bad escape
    [InlineData("{\"a\":\"", '\n')]  // control character in a string
    [InlineData("{\"a\":[", '}')]
    public void AByteThatBreaksJsonIsMasked(string prefix, char next)
    {
        Assert.DoesNotContain((int)next, Allowed(prefix));
        Assert.DoesNotContain(Eos, Allowed(prefix));
    }
}
