using System.Diagnostics;
using System.Text.Json;
using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>The npm openai package (v6, pinned in tests/js/package-lock.json) against the server.</summary>
public sealed class NodeClientTests
{
    static string JsDir => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../js"));

    static (int Code, string Out, string Err) Run(string file, string args, string dir, int timeoutMs)
    {
        var start = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutMs)) { p.Kill(entireProcessTree: true); return (-1, "", "timed out"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    internal static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    [NodeFact]
    public async Task TheNpmOpenAiClientChatsStreamsAndSeesErrors()
    {
        var node = Which("node")!;
        if (!File.Exists(Path.Combine(JsDir, "node_modules", "openai", "package.json")))
        {
            var install = Run(Which("npm")!, "ci --no-audit --no-fund", JsDir, 180_000);
            Assert.True(install.Code == 0, $"npm ci in {JsDir} failed: {install.Err}");
        }
        var runner = ServerHarness.Scripted("<think>\nthe user wants two</think>\n\nthe answer is two");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner));
        var (code, stdout, stderr) = await Task.Run(() => Run(node, $"client.mjs {t.Address}v1", JsDir, 60_000));
        Assert.True(code == 0, stderr);
        var r = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("tiny", r.GetProperty("models")[0].GetString());
        Assert.Equal("\n\nthe answer is two", r.GetProperty("content").GetString());
        Assert.Equal("the user wants two", r.GetProperty("reasoning").GetString());
        Assert.Equal("stop", r.GetProperty("finish").GetString());
        var s = r.GetProperty("streamed");
        Assert.Equal("\n\nthe answer is two", s.GetProperty("content").GetString());
        Assert.Equal("the user wants two", s.GetProperty("reasoning").GetString());
        Assert.Equal("stop", s.GetProperty("finish").GetString());
        Assert.Equal(r.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), s.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(s.GetProperty("usage").GetProperty("prompt_cache_hit_tokens").GetInt32() >= 0);
        // json_schema: the reasoning is free, the answer is forced into the schema.
        var structured = r.GetProperty("structured");
        Assert.Equal("the user wants two", structured.GetProperty("reasoning").GetString());
        var parsed = structured.GetProperty("parsed");
        Assert.Equal(["answer"], parsed.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Number, parsed.GetProperty("answer").ValueKind);
        var e = r.GetProperty("error");
        Assert.Equal(400, e.GetProperty("status").GetInt32());
        Assert.Equal("temperature", e.GetProperty("param").GetString());
        Assert.Contains("temperature is 7", e.GetProperty("message").GetString());
    }
}

/// <summary>A fact skipped, with the reason, where node or npm is not on PATH.</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public NodeFactAttribute()
    {
        if (NodeClientTests.Which("node") is null || NodeClientTests.Which("npm") is null)
            Skip = "node / npm are not on PATH: the npm openai client test needs Node 20+";
    }
}
