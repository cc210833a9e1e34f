using System.Text;
using System.Text.Json;
using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>
/// The response_format recognizer over a vocabulary of one token per byte (id = byte) plus EOS
/// (256), and for the random walks a few multi-byte tokens too; final outputs are checked with
/// JsonSchema.Net, a validator nobody here wrote.
/// </summary>
public sealed class JsonConstraintTests
{
    const int Eos = 256;
    static readonly byte[][] Tokens = [.. Enumerable.Range(0, 256).Select(b => new[] { (byte)b }), []];
    static readonly bool[] Special = [.. Enumerable.Range(0, 257).Select(i => i == Eos)];
    static readonly JsonVocabulary Bytes = JsonVocabulary.For(Tokens, Special);

    static SchemaNode Compile(string schema, bool strict = false) =>
        JsonSchemaCompiler.Compile(JsonDocument.Parse(schema).RootElement, "schema", strict);

    /// <summary>The ids the constraint allows after <paramref name="prefix"/>.</summary>
    static HashSet<int> Allowed(string prefix, SchemaNode? schema = null, bool inReasoning = false)
    {
        var c = new JsonConstraint(Bytes, schema ?? SchemaNode.AnyObject(), [Eos], inReasoning);
        var logits = new float[257];
        c.Apply(Encoding.UTF8.GetBytes(prefix).Select(b => (int)b).ToArray(), logits);
        return Enumerable.Range(0, 257).Where(i => !float.IsNegativeInfinity(logits[i])).ToHashSet();
    }

    static void AllowsExactly(string json, SchemaNode schema)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        for (int i = 0; i < bytes.Length; i++)
        {
            var c = new JsonConstraint(Bytes, schema, [Eos]);
            var logits = new float[257];
            c.Apply(bytes[..i].Select(b => (int)b).ToArray(), logits);
            Assert.False(float.IsNegativeInfinity(logits[bytes[i]]), $"byte {bytes[i]:X2} after '{Encoding.UTF8.GetString(bytes[..i])}'");
        }
        Assert.Equal([Eos], Allowed(json, schema));
    }

    [Theory]
    [InlineData("""{"a": [1, -2.5e3, 0.25E-7, true, false, null, "x\"y\u00e9"], "b": {}, "c": []}""")]
    [InlineData(" {\n\t\"k\" : { \"n\" : [ [ ] , { } ] } }")]
    [InlineData("{}")]
    public void EveryByteOfValidJsonIsAllowedAndThenOnlyEos(string json)
    {
        AllowsExactly(json, SchemaNode.AnyObject());
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
    [InlineData("{\"a\":1,\"a\"", ':')] // a key twice
    public void AByteThatBreaksJsonIsMasked(string prefix, char next)
    {
        Assert.DoesNotContain((int)next, Allowed(prefix));
        Assert.DoesNotContain(Eos, Allowed(prefix));
    }

    [Fact]
    public void WhitespaceRunsAreBounded()
    {
        var spaces = new string(' ', JsonConstraint.MaxWhitespace);
        Assert.Contains((int)' ', Allowed("{" + spaces[1..]));
        Assert.DoesNotContain((int)' ', Allowed("{" + spaces));
        Assert.Contains((int)'"', Allowed("{" + spaces));
    }

    const string Person = """
        {"type": "object",
         "properties": {
           "name": {"type": "string", "minLength": 1, "maxLength": 4},
           "age": {"type": "integer"},
           "mood": {"enum": ["happy", "sad", 3, null]},
           "tags": {"type": "array", "items": {"type": "string", "maxLength": 2}, "minItems": 1, "maxItems": 2},
           "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
           "nick": {"type": ["string", "null"]},
           "ok": {"const": true}
         },
         "required": ["name", "age", "ok"],
         "additionalProperties": false}
        """;

    [Theory]
    [InlineData("""{"name":"Ann","age":41,"ok":true}""")]
    [InlineData("""{"ok":true, "age": -7, "name": "Zoë", "mood": "sad", "tags": ["a", "bc"], "score": 2.5e1, "nick": null}""")]
    [InlineData("""{"name":"x","mood":3,"age":0,"score":null,"nick":"n","ok":true}""")]
    public void ConformingDocumentsAreAllowedByteByByte(string json) => AllowsExactly(json, Compile(Person));

    [Theory]
    [InlineData("{\"", 'x')]                              // not a property, additionalProperties false
    [InlineData("{\"name\":\"Ann\"", '}')]               // age and ok are required
    [InlineData("{\"name\":\"", '"')]                    // minLength 1
    [InlineData("{\"name\":\"abcd", 'e')]                // maxLength 4
    [InlineData("{\"name\":\"abcd", '\\')]              // an escape is a character too
    [InlineData("{\"age\":1", '.')]                      // an integer
    [InlineData("{\"age\":", '"')]
    [InlineData("{\"mood\":\"h", 'o')]                   // enum: only "happy"
    [InlineData("{\"mood\":", 't')]
    [InlineData("{\"tags\":[", ']')]                     // minItems 1
    [InlineData("{\"tags\":[\"a\",\"b\"", ',')]          // maxItems 2
    [InlineData("{\"nick\":", '1')]
    [InlineData("{\"ok\":", 'f')]                        // const true
    [InlineData("{\"ok\":true,\"", 'o')]                 // no key twice
    public void ABytePastTheSchemaIsMasked(string prefix, char next)
    {
        var allowed = Allowed(prefix, Compile(Person));
        Assert.DoesNotContain((int)next, allowed);
        Assert.NotEmpty(allowed); // never a dead end
    }

    [Fact]
    public void MultiByteCharactersCountOnceAndMustBeValidUtf8()
    {
        var schema = Compile("""{"type":"string","maxLength":2}""");
        Assert.Contains((int)'"', Allowed("\"é€", schema));
        Assert.DoesNotContain((int)'a', Allowed("\"é€", schema));
        Assert.DoesNotContain(0x80, Allowed("\"", schema));  // a lone continuation byte
        Assert.DoesNotContain(0xFF, Allowed("\"", schema));
        Assert.Contains(0xC3, Allowed("\"", schema));
        Assert.DoesNotContain((int)'"', Allowed("\"\\u00", schema));
        // After a lead byte only its continuation bytes.
        var c = new JsonConstraint(Bytes, schema, [Eos]);
        var logits = new float[257];
        c.Apply(['"', 0xC3], logits);
        Assert.Equal(Enumerable.Range(0x80, 0x40), Enumerable.Range(0, 257).Where(i => !float.IsNegativeInfinity(logits[i])));
        // Escaped surrogates are refused (the model writes such characters as UTF-8).
        Assert.DoesNotContain((int)'0', Allowed("\"\\uD80", schema));
        Assert.Contains((int)'0', Allowed("\"\\uD7F", schema));
    }

    [Fact]
    public void TheConstraintStartsAfterTheThinkBlock()
    {
        // Inside the think block anything but EOS goes; after it, JSON only.
        var inside = Allowed("I think [", inReasoning: true);
        Assert.Contains((int)']', inside);
        Assert.DoesNotContain(Eos, inside);
        var after = Allowed("hmm</think>\n", inReasoning: true);
        Assert.Equal([(int)'\t', '\n', '\r', ' ', '{'], after.Order());
    }

    [Fact]
    public void RecursiveDefinitionsAndTopLevelScalars()
    {
        var tree = Compile("""
            {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                                "required": ["v"], "additionalProperties": false}},
             "$ref": "#/$defs/node"}
            """);
        AllowsExactly("""{"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]}""", tree);
        var number = Compile("""{"type":"number"}""");
        Assert.Contains(Eos, Allowed("12", number));
        Assert.Contains((int)'3', Allowed("12", number));
        Assert.DoesNotContain(Eos, Allowed("12.", number));
    }

    /// <summary>Random logits, greedy within the allowed set, until EOS: every output validates against the schema.</summary>
    [Theory]
    [InlineData(Person, 40)]
    [InlineData("""{"type":"object","properties":{"items":{"type":"array","items":{"anyOf":[{"type":"integer"},{"type":"string","maxLength":3},{"type":"boolean"}]},"maxItems":4},"extra":{"type":"object","additionalProperties":{"type":"null"}}},"required":["items","extra"],"additionalProperties":false}""", 40)]
    [InlineData("""{"type":"array","items":{"enum":["a","bb",1.5,{"k":[1]}]},"minItems":2,"maxItems":3}""", 40)]
    public void RandomWalksEndInValidDocuments(string schemaText, int walks) => RandomWalks(schemaText, walks, int.MaxValue);

    /// <summary>
    /// Unbounded strings and free keys, with random logits that favour "keep writing": the documents
    /// still close, with their EOS, within max_tokens.
    /// </summary>
    [Theory]
    [InlineData("""{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"likes":{"type":"boolean"}},"required":["name","age","likes"]}""", 40)]
    [InlineData("""{"type":"object","properties":{"a":{"type":"array","items":{"type":"string"},"minItems":3},"b":{"anyOf":[{"type":"string","minLength":5},{"enum":["long enough"]}]}},"required":["a","b"],"additionalProperties":{"type":"string"}}""", 45)]
    [InlineData("""{"$defs":{"n":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/n"}},"name":{"type":"string"}},"required":["name"]}},"$ref":"#/$defs/n"}""", 30)]
    public void RandomWalksCloseWithinMaxTokens(string schemaText, int maxTokens)
    {
        var schema = Compile(schemaText);
        Assert.True(schema.MinBytes + 1 <= maxTokens, $"{schema.MinBytes}");
        RandomWalks(schemaText, 30, maxTokens);
    }

    static void RandomWalks(string schemaText, int walks, int maxTokens)
    {
        // Multi-byte tokens as a tokenizer has them: words, quotes with letters, punctuation runs.
        string[] extra = ["\"name", "\":", "\",\"", "true", "nu", "ll}", "[\"", "\"]", "12", "{\"", "}}", "é", " \"", ", "];
        var tokens = Tokens.Concat(extra.Select(Encoding.UTF8.GetBytes)).ToArray();
        var special = Special.Concat(extra.Select(_ => false)).ToArray();
        var vocab = JsonVocabulary.For(tokens, special);
        var schema = Compile(schemaText);
        var validator = Json.Schema.JsonSchema.FromText(schemaText);
        var rng = new Random(7);
        for (int w = 0; w < walks; w++)
        {
            var c = new JsonConstraint(vocab, schema, [Eos], maxTokens: maxTokens);
            var generated = new List<int>();
            var logits = new float[tokens.Length];
            while (true)
            {
                for (int i = 0; i < logits.Length; i++) logits[i] = (float)rng.NextDouble();
                c.Apply(generated.ToArray(), logits);
                int best = -1;
                for (int i = 0; i < logits.Length; i++) if (!float.IsNegativeInfinity(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
                Assert.True(best >= 0, "a dead end after " + Text());
                generated.Add(best);
                Assert.True(generated.Count <= maxTokens, "past max_tokens: " + Text());
                if (best == Eos) break;
                Assert.True(generated.Count < 4000, "no end in sight: " + Text());
            }
            generated.RemoveAt(generated.Count - 1);
            var text = Text();
            using var doc = JsonDocument.Parse(text);
            var result = validator.Evaluate(doc.RootElement, new Json.Schema.EvaluationOptions { OutputFormat = Json.Schema.OutputFormat.List });
            Assert.True(result.IsValid, text);

            string Text() => Encoding.UTF8.GetString(generated.SelectMany(id => tokens[id]).ToArray());
        }
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"^a"}""", "schema.pattern", "'pattern'")]
    [InlineData("""{"type":"object","properties":{"n":{"type":"number","minimum":0}}}""", "schema.properties.n.minimum", "'minimum'")]
    [InlineData("""{"oneOf":[{"type":"string"}]}""", "schema.oneOf", "'oneOf'")]
    [InlineData("""{"type":"strin"}""", "schema.type", "not one of")]
    [InlineData("""{"type":"object","properties":{"a":{}},"required":["b"]}""", "schema.required", "'b' is required")]
    [InlineData("""{"type":"string","minLength":3,"maxLength":2}""", "schema.minLength", "over maxLength")]
    [InlineData("""{"type":"array","items":[{"type":"string"}]}""", "schema.items", "tuple")]
    [InlineData("""{"$ref":"#/definitions/x"}""", "schema.$ref", "names no definition")]
    [InlineData("""{"$ref":"http://example.com/s.json"}""", "schema.$ref", "not supported")]
    [InlineData("""{"type":"object","properties":{"a":{"enum":[1]}},"required":["a"],"additionalProperties":false,"x":1}""", "schema.x", "'x'")]
    [InlineData("""{"type":"integer","enum":["a"]}""", "schema", "no JSON value")]
    [InlineData("""{"$defs":{"n":{"type":"object","properties":{"k":{"$ref":"#/$defs/n"}},"required":["k"]}},"$ref":"#/$defs/n"}""", "schema", "no JSON value")]
    public void UnsupportedOrBadSchemasNameTheKeyword(string schema, string param, string message)
    {
        var e = Assert.Throws<ApiException>(() => Compile(schema));
        Assert.Equal(400, e.Status);
        Assert.Equal(param, e.Param);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void StrictModeNeedsAllPropertiesRequiredAndNoAdditionalOnes()
    {
        const string loose = """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a"],"additionalProperties":false}""";
        Compile(loose);
        var e = Assert.Throws<ApiException>(() => Compile(loose, strict: true));
        Assert.Equal("schema.required", e.Param);
        Assert.Contains("missing: b", e.Message);
        e = Assert.Throws<ApiException>(() => Compile("""{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}""", strict: true));
        Assert.Equal("schema.additionalProperties", e.Param);
        Compile("""{"type":"object","properties":{"a":{"type":["string","null"]}},"required":["a"],"additionalProperties":false}""", strict: true);
    }
}
