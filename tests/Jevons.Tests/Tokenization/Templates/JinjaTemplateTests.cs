using System.Text.Json;
using Jevons.Formats;
using Jevons.Tokenization;
using Jevons.Tokenization.Templates;
using Xunit;

namespace Jevons.Tests.Tokenization.Templates;

/// <summary>Errors, limits and the ChatTemplate loaders (the Jinja2 semantics are in JinjaConformanceTests).</summary>
public sealed class JinjaTemplateTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-jinja-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string Render(string template, object? vars = null, TemplateLimits? limits = null) =>
        JinjaTemplate.Parse(template, "t.jinja", limits).Render(
            vars is null ? new Dictionary<string, object?>() : JsonSerializer.SerializeToElement(vars).EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value));

    static string Error(string template, object? vars = null, TemplateLimits? limits = null) =>
        Assert.Throws<JevonsException>(() => Render(template, vars, limits)).Message;

    [Theory]
    [InlineData("line 1\n{% if x %}\nnever closed", "t.jinja: template syntax error at line 3: unexpected end of template: expected '{% elif %}' or '{% else %}' or '{% endif %}'")]
    [InlineData("a\nb\n{{ 1 + }}", "t.jinja: template syntax error at line 3: unexpected '}}'")]
    [InlineData("{% nosuchtag %}", "t.jinja: template syntax error at line 1: unknown tag 'nosuchtag'")]
    [InlineData("{{ 'open }}", "t.jinja: template syntax error at line 1: unterminated string literal")]
    [InlineData("{# open", "t.jinja: template syntax error at line 1: unclosed comment (missing '#}')")]
    [InlineData("{{ x", "t.jinja: template syntax error at line 1: unclosed expression (missing '}}')")]
    public void SyntaxErrorsNameSourceLineAndProblem(string template, string message)
    {
        Assert.Equal(message, Error(template));
    }

    [Theory]
    [InlineData("ok\n\n{{ x.y }}", "t.jinja: template error at line 3: 'x' is undefined")]
    [InlineData("{{ d.a.b }}", "t.jinja: template error at line 1: 'dict object' has no attribute 'a'")]
    [InlineData("{% for m in [1] %}\n{{ raise_exception('Only user and assistant roles are supported!') }}{% endfor %}", "t.jinja: template error at line 2: the template raised an exception: Only user and assistant roles are supported!")]
    [InlineData("{{ 'a' + 1 }}", "t.jinja: template error at line 1: can only concatenate str (not \"int\") to str")]
    [InlineData("{{ [1].append(2) }}", "t.jinja: template error at line 1: access to attribute 'append' of 'list' object is unsafe (the template environment is immutable)")]
    [InlineData("{{ 1|nosuch }}", "t.jinja: template error at line 1: no filter named 'nosuch'")]
    [InlineData("{{ x() }}", "t.jinja: template error at line 1: 'x' is undefined")]
    public void RuntimeErrorsNameSourceLineAndProblem(string template, string message)
    {
        Assert.Equal(message, Error(template, new { d = new { } }));
    }

    [Fact]
    public void UndefinedRendersEmptyAndIsFalseButMissingKeysAreUndefined()
    {
        Assert.Equal("[]|False|0|[]|d", Render("[{{ x }}]|{{ x is defined }}|{{ x|length }}|{{ x|list }}|{{ m.missing|default('d') }}", new { m = new { } }));
    }

    [Fact]
    public void HostileTemplatesHitLimitsInsteadOfHanging()
    {
        var limits = new TemplateLimits { MaxSteps = 10_000, MaxOutputChars = 1 << 16, MaxCallDepth = 20 };
        Assert.Contains("more than 10000 loop iterations", Error("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", limits: limits));
        Assert.Contains("macro calls nested deeper than 20", Error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", limits: limits));
        Assert.Contains("output exceeds 65536 characters", Error("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", limits: limits));
        Assert.Contains("string exceeds", Error("{{ 'x' * 10000000000 }}"));
        Assert.Contains("range too big", Error("{{ range(1000000) }}"));
        Assert.Contains("nested deeper than 64", Error("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}"));
        Assert.Contains("nested deeper than 64", Error(string.Concat(Enumerable.Repeat("{% if 1 %}", 5000)) + string.Concat(Enumerable.Repeat("{% endif %}", 5000))));
        Assert.Contains("loop iterations", Error("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x == ns.x }}", limits: limits));
    }

    [Fact]
    public void StrftimeNowReadsTheInjectedClock()
    {
        var t = JinjaTemplate.Parse("{{ strftime_now('%d %b %Y') }}", clock: () => new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero));
        Assert.Equal("02 Jan 2025", t.Render(new Dictionary<string, object?>()));
    }

    [Fact]
    public void ClrValuesAreAccepted()
    {
        var t = JinjaTemplate.Parse("{{ n + 1 }} {{ f }} {{ items|join(',') }} {{ d.k }} {{ none_value is none }}");
        Assert.Equal("2 0.5 a,b v True", t.Render(new Dictionary<string, object?>
        {
            ["n"] = 1, ["f"] = 0.5f, ["items"] = new[] { "a", "b" }, ["d"] = new Dictionary<string, object?> { ["k"] = "v" }, ["none_value"] = null,
        }));
    }

    [Fact]
    public void NamedTemplatesPickToolUseWhenToolsAreGiven()
    {
        var path = Path.Combine(_dir, "tokenizer_config.json");
        File.WriteAllText(path, """
            {"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
             "chat_template": [{"name": "default", "template": "D{{ bos_token }}{{ messages|length }}"},
                               {"name": "tool_use", "template": "T{{ eos_token }}{{ tools|length }}"}]}
            """);
        var t = ChatTemplate.FromTokenizerConfig(path)!;
        var messages = JsonDocument.Parse("""[{"role": "user", "content": "hi"}]""").RootElement;
        var tools = JsonDocument.Parse("""[{"type": "function", "function": {"name": "f"}}]""").RootElement;
        Assert.Equal("D<s>1", t.Render(messages));
        Assert.Equal("T</s>1", t.Render(messages, tools));
        Assert.Equal("<s>", t.BosToken);
    }

    [Fact]
    public void ConfigWithoutTemplateHasNoneAndBadTemplatesNameTheConfig()
    {
        var path = Path.Combine(_dir, "tokenizer_config.json");
        File.WriteAllText(path, """{"eos_token": "</s>"}""");
        Assert.Null(ChatTemplate.FromTokenizerConfig(path));
        File.WriteAllText(path, """{"chat_template": "{% for %}"}""");
        var e = Assert.Throws<JevonsException>(() => ChatTemplate.FromTokenizerConfig(path));
        Assert.StartsWith(path + " chat_template: template syntax error at line 1:", e.Message);
    }

    string WriteGguf(string? template)
    {
        var vocab = SyntheticVocabulary.Create(400);
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.String("llama"));
        vocab.WriteTo(w);
        if (template is not null) w.Set("tokenizer.chat_template", GgufValue.String(template));
        w.AddTensor("token_embd.weight", Jevons.Numerics.DType.F32, [4, 8], new byte[4 * 8 * 4]);
        var path = Path.Combine(_dir, template is null ? "plain.gguf" : "templated.gguf");
        w.Write(path);
        return path;
    }

    [Fact]
    public void GgufTemplateAndSpecialTokensComeFromMetadata()
    {
        var path = WriteGguf("{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}{{ eos_token }}{% endif %}");
        using var gguf = GgufFile.Open(path);
        var t = ChatTemplate.FromGguf(gguf.Metadata)!;
        Assert.Equal("<｜begin▁of▁sentence｜>[user]hi<｜end▁of▁sentence｜>", t.Render([new ChatMessage("user", "hi")], addGenerationPrompt: true));
        var prompt = ChatPrompt.For(Tokenizer.Load(path));
        Assert.Null(prompt.Notice);
        Assert.Equal("<｜begin▁of▁sentence｜>[user]hi", prompt.Render([new ChatMessage("user", "hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void WithoutTemplateTheBuiltInFormatIsUsedAndSaidSo()
    {
        var prompt = ChatPrompt.For(Tokenizer.Load(WriteGguf(null)));
        Assert.Equal("note: the model has no chat template; using the built-in DeepSeek format", prompt.Notice);
        Assert.Null(prompt.Template);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>", prompt.Render([new ChatMessage("user", "hi")], addGenerationPrompt: true));
    }
}
