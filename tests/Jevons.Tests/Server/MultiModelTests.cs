using System.Text.Json;
using Jevons.Cli;
using Jevons.Inference;
using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>Several models, Ollama-style: listed by /v1/models, chosen by "model", loaded on first use, unloaded after --keep-alive idle.</summary>
public sealed class MultiModelTests
{
    /// <summary>A model whose loads are counted; each load is a fresh scripted engine.</summary>
    sealed class Counted(string script, bool gated = false)
    {
        public int Loads;
        public ScriptedRunner? Runner;
        public LoadedEngine Load()
        {
            Interlocked.Increment(ref Loads);
            Runner = ServerHarness.Scripted(script);
            if (gated) Runner.Gate.Reset();
            return new LoadedEngine(ServerHarness.ScriptedEngine(Runner));
        }
    }

    static string Content(JsonElement body) => body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    static double Loaded(string metrics, string model) => double.Parse(metrics.Split('\n')
        .Single(l => l.StartsWith($"jevons:model_loaded{{model_name=\"{model}\"}}", StringComparison.Ordinal)).Split(' ')[^1],
        System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task ModelsAreListedChosenByNameLoadedOnFirstUseAndUnloadedWhenIdle()
    {
        var alpha = new Counted("<think>\nhmm</think>alpha says hi");
        var beta = new Counted("<think>\nhmm</think>beta says hi");
        await using var server = JevonsServer.Create([new ModelSpec("alpha", alpha.Load), new ModelSpec("beta", beta.Load)], new ServerOptions { Port = 0 });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };

        var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
        Assert.Equal(["alpha", "beta"], models.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.False(models[0].TryGetProperty("max_model_len", out _)); // not known before the first load
        Assert.Equal(0, alpha.Loads + beta.Loads);
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(0, Loaded(metrics, "alpha"));

        // The request's model picks one; only that one loads.
        var (status, body) = await Post(http, """{"model":"beta","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(200, status);
        Assert.Equal("beta says hi", Content(body));
        Assert.Equal("beta", body.GetProperty("model").GetString());
        Assert.Equal((0, 1), (alpha.Loads, beta.Loads));
        Assert.True(server.IsLoaded("beta"));
        (_, body) = await Post(http, """{"model":"alpha","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("alpha says hi", Content(body));
        // No model: the first.
        (_, body) = await Post(http, """{"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("alpha", body.GetProperty("model").GetString());
        var card = JsonDocument.Parse(await http.GetStringAsync("/v1/models/beta")).RootElement;
        Assert.Equal(1024, card.GetProperty("max_model_len").GetInt32());
        metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(1, Loaded(metrics, "beta"));
        Assert.Contains("vllm:request_success_total{model_name=\"alpha\",finished_reason=\"stop\"} 2", metrics);

        // An unknown model: 404 model_not_found naming the ones there are, and the server goes on.
        (status, body) = await Post(http, """{"model":"gamma","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(404, status);
        var error = body.GetProperty("error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
        Assert.Contains("'gamma'", error.GetProperty("message").GetString());
        Assert.Contains("'alpha', 'beta'", error.GetProperty("message").GetString());
        var missing = await http.GetAsync("/v1/models/gamma");
        Assert.Equal(404, (int)missing.StatusCode);
        Assert.Equal(404, (await Post(http, """{"model":"gamma","prompt":"x"}""", "/v1/completions")).Status);
        Assert.Equal(404, (await Post(http, """{"model":"gamma","content":"x"}""", "/tokenize")).Status);

        await server.StopAsync();
    }

    [Fact]
    public async Task IdleModelsUnloadAfterKeepAliveAndLoadAgainOnTheNextRequest()
    {
        var alpha = new Counted("<think>\nhmm</think>alpha says hi");
        var beta = new Counted("<think>\nhmm</think>beta says hi");
        await using var server = JevonsServer.Create([new ModelSpec("alpha", alpha.Load), new ModelSpec("beta", beta.Load)],
            new ServerOptions { Port = 0, ModelKeepAlive = TimeSpan.FromMilliseconds(200) });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        foreach (var model in new[] { "alpha", "beta" })
            Assert.Equal(200, (await Post(http, $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""")).Status);

        // Idle past --keep-alive: both unload; the next request loads again, and the counters go on rising.
        await WaitUntil(() => !server.IsLoaded("alpha") && !server.IsLoaded("beta"), TimeSpan.FromSeconds(20));
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(0, Loaded(metrics, "beta"));
        var generated = Counter(metrics, "vllm:generation_tokens_total{model_name=\"beta\"}");
        Assert.True(generated > 0);
        var (_, body) = await Post(http, """{"model":"beta","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("beta says hi", Content(body));
        Assert.Equal(2, beta.Loads);
        Assert.Equal(1, alpha.Loads);
        Assert.Equal(2 * generated, Counter(await http.GetStringAsync("/metrics"), "vllm:generation_tokens_total{model_name=\"beta\"}"));
        await server.StopAsync();
    }

    [Fact]
    public async Task AModelInUseIsNotUnloadedAndAFailedLoadIsA500()
    {
        var slow = new Counted("<think>\nhmm</think>slow answer", gated: true);
        await using var server = JevonsServer.Create(
            [new ModelSpec("slow", slow.Load), new ModelSpec("broken", () => throw new JevonsException("model.gguf: truncated at byte 12"))],
            new ServerOptions { Port = 0, ModelKeepAlive = TimeSpan.FromMilliseconds(100) });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        // The first load's engine holds its steps until the gate opens.
        var pending = Post(http, """{"model":"slow","messages":[{"role":"user","content":"hi"}]}""");
        await WaitUntil(() => slow.Runner is { Entered: > 0 }, TimeSpan.FromSeconds(20));
        await Task.Delay(500); // five keep-alive periods, but a request holds it
        Assert.True(server.IsLoaded("slow"));
        Assert.Equal(1, slow.Loads);
        slow.Runner!.Gate.Set();
        Assert.Equal("slow answer", Content((await pending).Body));

        var (status, body) = await Post(http, """{"model":"broken","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(500, status);
        Assert.Equal("model_load_failed", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("truncated at byte 12", body.GetProperty("error").GetProperty("message").GetString());
        await server.StopAsync();
    }

    [Fact]
    public async Task JevonsServeTakesModelsDirAndRepeatedModels()
    {
        // The tiny model under two names, as a folder of models.
        var dir = Path.Combine(Path.GetTempPath(), "jevons-models-dir-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var name in new[] { "one", "two" })
            {
                var target = Path.Combine(dir, name);
                Directory.CreateDirectory(target);
                foreach (var f in Directory.GetFiles(ServerHarness.ModelPath)) File.Copy(f, Path.Combine(target, Path.GetFileName(f)), overwrite: true);
            }
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "not a model");
            var log = new StringWriter();
            using var cancel = new CancellationTokenSource();
            var context = new CliContext { Out = TextWriter.Null, Error = TextWriter.Synchronized(log), In = Stream.Null, Cancel = cancel.Token };
            var run = Task.Run(() => JevonsCli.Run(["serve", "--models-dir", dir, "--model", ServerHarness.ModelPath, "--port", "0", "--threads", "1",
                "--ctx-size", "128", "--keep-alive", "30s"], context));
            string? address = null;
            for (int i = 0; i < 600 && address is null && !run.IsCompleted; i++)
            {
                var m = System.Text.RegularExpressions.Regex.Match(log.ToString(), @"serving 3 models \(tiny, one, two; each loads on first use\) on (http://127\.0\.0\.1:\d+); idle models unload after 30 s");
                if (m.Success) address = m.Groups[1].Value;
                else await Task.Delay(50);
            }
            Assert.True(address is not null, log.ToString());
            using var http = new HttpClient { BaseAddress = new Uri(address!) };
            var ids = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString());
            Assert.Equal(["tiny", "one", "two"], ids);
            Assert.DoesNotContain("loading", log.ToString());
            var (status, body) = await Post(http, """{"model":"two","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"ignore_eos":true}""");
            Assert.Equal(200, status);
            Assert.Equal("two", body.GetProperty("model").GetString());
            Assert.Contains("loading " + Path.Combine(dir, "two"), log.ToString());
            Assert.DoesNotContain("loading " + Path.Combine(dir, "one"), log.ToString());
            cancel.Cancel();
            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--keep-alive", "soon", "--keep-alive 'soon': expected a duration")]
    [InlineData("--keep-alive", "-5s", "--keep-alive '-5s'")]
    [InlineData("--models-dir", "/nonexistent/models", "--models-dir '/nonexistent/models' is not a folder")]
    [InlineData("--model", "/nonexistent/model.gguf", "--model '/nonexistent/model.gguf' does not exist")]
    public void BadServeOptionsAreOneLine(string option, string value, string message)
    {
        var r = Jevons.Tests.Cli.CliHarness.Run("serve", option, value, "--port", "0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Error);
    }

    [Fact]
    public void TwoModelsWithOneNameAreRefused()
    {
        var r = Jevons.Tests.Cli.CliHarness.Run("serve", "--model", ServerHarness.ModelPath, "--model", ServerHarness.ModelPath, "--port", "0");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("two models are named 'tiny'", r.Error);
    }

    [Theory]
    [InlineData("30s", 30)]
    [InlineData("5m", 300)]
    [InlineData("1h", 3600)]
    [InlineData("250ms", 0.25)]
    [InlineData("0", 0)]
    [InlineData("12", 12)]
    public void KeepAliveDurations(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Jevons.Cli.Commands.ServeCommand.Duration(text));

    static double Counter(string metrics, string series) => double.Parse(metrics.Split('\n').Single(l => l.StartsWith(series + " ", StringComparison.Ordinal)).Split(' ')[^1],
        System.Globalization.CultureInfo.InvariantCulture);

    static async Task WaitUntil(Func<bool> condition, TimeSpan limit)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < limit, "timed out waiting");
            await Task.Delay(20);
        }
    }

    static async Task<(int Status, JsonElement Body)> Post(HttpClient http, string json, string path = "/v1/chat/completions")
    {
        var response = await http.PostAsync(path, new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }
}
