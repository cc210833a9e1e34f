using System.Text.Json;
using Jevons.Tests.Support;
using Xunit;

namespace Jevons.Tests.Cli;

/// <summary>`jevons template`: the exact prompt on stdout, --json with ids, and one-line errors.</summary>
public sealed class TemplateCommandTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("jevons-template-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    static JsonElement Chat(string model, string id) =>
        JsonDocument.Parse(File.ReadAllText(Golden.File("tokenizer", model, "cases.json")!)).RootElement
            .GetProperty("chats").EnumerateArray().Single(c => c.GetProperty("id").GetString() == id);

    [GoldenFact]
    public void PrintsTheExactPromptWithNoNewlineAdded()
    {
        var chat = Chat("deepseek-v3", "ds_multiturn_gen");
        var messages = Write("m.json", chat.GetProperty("messages").GetRawText());
        var r = CliHarness.Run("template", "--tokenizer-config", Golden.File("tokenizer", "deepseek-v3", "tokenizer_config.json")!,
            "--messages", messages, "--add-generation-prompt");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(chat.GetProperty("prompt").GetString(), r.Out);
        Assert.Equal("", r.Error);
    }

    [GoldenFact]
    public void ObjectFormCarriesToolsAndTemplateVariables()
    {
        var tools = Chat("qwen3", "qw_tools_schema");
        var file = Write("tools.json", JsonSerializer.Serialize(new
        {
            messages = tools.GetProperty("messages"),
            tools = tools.GetProperty("template_kwargs").GetProperty("tools"),
            add_generation_prompt = true,
        }));
        var config = Golden.File("tokenizer", "qwen3", "tokenizer_config.json")!;
        var r = CliHarness.Run("template", "--tokenizer-config", config, "--messages", file, "--json");
        Assert.Equal(0, r.ExitCode);
        using var json = JsonDocument.Parse(r.Out);
        Assert.Equal(tools.GetProperty("prompt").GetString(), json.RootElement.GetProperty("prompt").GetString());
        Assert.Equal(tools.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), json.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.EndsWith("}\n", r.Out.ReplaceLineEndings("\n"));

        var nothink = Chat("qwen3", "qw_user_gen_nothink");
        var file2 = Write("nothink.json", JsonSerializer.Serialize(new { messages = nothink.GetProperty("messages"), enable_thinking = false }));
        var r2 = CliHarness.Run("template", "--tokenizer-config", config, "--messages", file2, "--add-generation-prompt");
        Assert.Equal(nothink.GetProperty("prompt").GetString(), r2.Out);
    }

    [GoldenFact]
    public void ModelDirectoryUsesItsTokenizerConfig()
    {
        var chat = Chat("qwen3", "qw_multiturn_nogen");
        var messages = Write("m.json", chat.GetProperty("messages").GetRawText());
        var r = CliHarness.Run("template", "--model", Golden.File("tokenizer", "qwen3")!, "--messages", messages);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(chat.GetProperty("prompt").GetString(), r.Out);
    }

    static void AssertOneErrorLine(CliHarness.Result r, params string[] mustContain)
    {
        Assert.Equal(1, r.ExitCode);
        var errors = r.ErrorLines.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
        Assert.Single(errors);
        foreach (var s in mustContain) Assert.Contains(s, errors[0]);
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void BadInputIsOneErrorLine()
    {
        var config = Write("tokenizer_config.json", """{"chat_template": "{% for m in messages %}{% if m.role == 'bot' %}{{ raise_exception('no bots') }}{% endif %}{{ m.content }}{% endfor %}"}""");
        AssertOneErrorLine(CliHarness.Run("template", "--tokenizer-config", config, "--messages", Write("bad.json", "[{\"role\": ")), "bad.json", "invalid JSON");
        AssertOneErrorLine(CliHarness.Run("template", "--tokenizer-config", config, "--messages", Write("obj.json", "{\"msgs\": []}")), "obj.json", "\"messages\"");
        AssertOneErrorLine(CliHarness.Run("template", "--tokenizer-config", config, "--messages", Write("norole.json", "[{\"content\": \"x\"}]")), "message 0", "role");
        AssertOneErrorLine(CliHarness.Run("template", "--tokenizer-config", config, "--messages", Write("bot.json", "[{\"role\": \"bot\", \"content\": \"x\"}]")),
            "tokenizer_config.json chat_template: template error at line 1: the template raised an exception: no bots");
        AssertOneErrorLine(CliHarness.Run("template", "--tokenizer-config", config, "--messages", Path.Combine(_dir, "missing.json")), "missing.json", "not found");
        AssertOneErrorLine(CliHarness.Run("template", "--messages", "x.json"), "exactly one of --model or --tokenizer-config");
        AssertOneErrorLine(CliHarness.Run("template", "--tokenizer-config", config, "--messages", Write("ok.json", "[]"), "--json"), "--json", "tokenizer.json");
    }

    [Fact]
    public void PlainRunHasNoTrailingNewline()
    {
        var config = Write("tokenizer_config.json", """{"bos_token": "<s>", "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"}""");
        var r = CliHarness.Run("template", "--tokenizer-config", config, "--messages", Write("m.json", """{"messages": [{"role": "user", "content": "héllo"}]}"""));
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("<s>user: héllo\n", r.Out);
    }
}
