using System.Text.Json;
using Jevons.Tests.Support;
using Jevons.Tokenization.Templates;
using Xunit;

namespace Jevons.Tests.Tokenization.Templates;

/// <summary>
/// Templates rendered by Jinja2 3.1 configured as transformers configures it (make_jinja2_cases.py
/// beside this file wrote jinja2-cases.json): the same output, or an error where Jinja2 raised.
/// </summary>
public class JinjaConformanceTests
{
    static readonly DateTimeOffset Clock = new(2024, 7, 26, 9, 5, 3, TimeSpan.Zero);
    static readonly Lazy<JsonDocument> Doc = new(() => JsonDocument.Parse(File.ReadAllText(
        Path.Combine(Golden.RepoRoot, "tests", "Jevons.Tests", "Tokenization", "Templates", "jinja2-cases.json"))));

    static JsonElement Case(int i) => Doc.Value.RootElement.GetProperty("cases")[i];

    public static IEnumerable<object[]> Cases() =>
        Enumerable.Range(0, Doc.Value.RootElement.GetProperty("cases").GetArrayLength()).Select(i => new object[] { i });

    static string Render(JsonElement c)
    {
        var vars = c.GetProperty("vars").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value);
        return JinjaTemplate.Parse(c.GetProperty("template").GetString()!, "case", clock: () => Clock).Render(vars);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesJinja2(int index)
    {
        var c = Case(index);
        if (c.TryGetProperty("expected", out var expected))
        {
            Assert.Equal(expected.GetString(), Render(c));
        }
        else if (c.TryGetProperty("syntax_error", out _))
        {
            var e = Assert.Throws<JevonsException>(() => Render(c));
            Assert.Contains($"case: template syntax error at line {c.GetProperty("line").GetInt32()}:", e.Message);
        }
        else
        {
            var e = Assert.Throws<JevonsException>(() => Render(c));
            Assert.StartsWith("case: template error at line 1: ", e.Message);
        }
    }
}
