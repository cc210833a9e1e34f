using System.Text.Json;
using Jevons.Cli;
using Jevons.Server;
using Xunit;

namespace Jevons.Tests.Server;

/// <summary>`jevons serve` from the CLI, graceful shutdown, /metrics values, streamed completions.</summary>
public sealed class ServeLifecycleTests
{
    const string Msg = """ "messages":[{"role":"user","content":"hi"}] """;

    [Fact]
    public async Task JevonsServeLoadsTheModelServesAndStopsWithExitCodeZero()
    {
        var log = new StringWriter();
        var error = TextWriter.Synchronized(log);
        using var cancel = new CancellationTokenSource();
        var context = new CliContext { Out = TextWriter.Null, Error = error, In = Stream.Null, Cancel = cancel.Token };
        var run = Task.Run(() => JevonsCli.Run(["serve", "--model", ServerHarness.ModelPath, "--port", "0", "--threads", "1", "--ctx-size", "256",
            "--api-key", "k1", "--max-batch-tokens", "64"], context));
        string? address = null;
        for (int i = 0; i < 600 && address is null && !run.IsCompleted; i++)
        {
            var m = System.Text.RegularExpressions.Regex.Match(log.ToString()!, @"serving 'tiny' \(context 256 tokens\) on (http://127\.0\.0\.1:\d+) \(API key required\)");
            if (m.Success) address = m.Groups[1].Value;
            else await Task.Delay(50);
        }
        Assert.True(address is not null, log.ToString());
        using var http = new HttpClient { BaseAddress = new Uri(address!) };
        Assert.Equal("""{"status":"ok"}""", await http.GetStringAsync("/health"));
        http.DefaultRequestHeaders.Authorization = new("Bearer", "k1");
        var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("tiny", models.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.Equal(256, models.GetProperty("data")[0].GetProperty("max_model_len").GetInt32());
        var response = await http.PostAsync("/v1/chat/completions", new StringContent("{" + Msg + ""","max_tokens":3,"ignore_eos":true}"""));
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(3, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        cancel.Cancel();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.EndsWith("server stopped", log.ToString()!.TrimEnd());
        Assert.DoesNotContain("k1", log.ToString());
        Assert.Contains("  serve ", Jevons.Tests.Cli.CliHarness.Run("--help").Out);
    }

    [Fact]
    public async Task SigtermStopsTheServeProcessWithExitCodeZero()
    {
        if (OperatingSystem.IsWindows()) return; // no SIGTERM there
        var cli = Path.Combine(AppContext.BaseDirectory, "Jevons.Cli.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", $"\"{cli}\" serve --model \"{ServerHarness.ModelPath}\" --port 0 --threads 1 --ctx-size 128")
            { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        var address = new TaskCompletionSource<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            var m = System.Text.RegularExpressions.Regex.Match(e.Data, @" on (http://127\.0\.0\.1:\d+);");
            if (m.Success) address.TrySetResult(m.Groups[1].Value);
        };
        process.BeginErrorReadLine();
        try
        {
            var url = await address.Task.WaitAsync(TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            Assert.Equal("""{"status":"ok"}""", await http.GetStringAsync("/health"));
            using var kill = System.Diagnostics.Process.Start("kill", $"-TERM {process.Id}")!;
            await kill.WaitForExitAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, process.ExitCode);
            lock (log) Assert.Contains("server stopped", log.ToString());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task ShutdownLetsAnInFlightStreamFinishAndRefusesNewWork()
    {
        var runner = ServerHarness.Scripted(string.Join(" ", Enumerable.Repeat("word", 60)));
        runner.StepDelay = TimeSpan.FromMilliseconds(5);
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        var stream = t.Stream("/v1/chat/completions", "{" + Msg + ""","stream":true}""");
        Assert.True(await ServerErrorTests.Eventually(async () => { await Task.Yield(); return t.Engine.Metrics.GenerationTokens > 3; }));
        var stop = t.Server.StopAsync();
        var sse = await stream;
        var frames = TestServer.Frames(sse);
        Assert.Equal("stop", frames[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(60, string.Concat(frames.Select(f => f.GetProperty("choices")[0].GetProperty("delta"))
            .Select(d => d.TryGetProperty("content", out var c) ? c.GetString() : "")).Split(' ').Length);
        await stop.WaitAsync(TimeSpan.FromSeconds(20));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => t.Http.GetAsync("/health"));
    }

    [Fact]
    public async Task MetricsCountTokensAndLatenciesUnderVllmNames()
    {
        var runner = ServerHarness.Scripted("one two three");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer));
        var before = await t.MetricsText();
        Assert.Contains("vllm:prompt_tokens_total{model_name=\"tiny\"} 0", before);
        var (_, a, _) = await t.Post("/v1/chat/completions", "{" + Msg + "}");
        var (_, b, _) = await t.Post("/v1/completions", """{"prompt":"one","max_tokens":2}""");
        int prompt = a.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() + b.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        int generated = a.GetProperty("usage").GetProperty("completion_tokens").GetInt32() + b.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        var response = await t.Http.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains($"vllm:prompt_tokens_total{{model_name=\"tiny\"}} {prompt}\n", text);
        Assert.Contains($"vllm:generation_tokens_total{{model_name=\"tiny\"}} {generated}\n", text);
        Assert.Contains("vllm:time_to_first_token_seconds_count{model_name=\"tiny\"} 2\n", text);
        Assert.Contains($"vllm:inter_token_latency_seconds_count{{model_name=\"tiny\"}} {generated - 2}\n", text);
        Assert.Contains("vllm:request_success_total{model_name=\"tiny\",finished_reason=\"stop\"} 1\n", text);
        Assert.Contains("vllm:request_success_total{model_name=\"tiny\",finished_reason=\"length\"} 1\n", text);
        Assert.Contains("vllm:num_requests_running{model_name=\"tiny\"} 0\n", text);
        Assert.Contains("# TYPE vllm:time_to_first_token_seconds histogram", text);
        Assert.Contains("vllm:prefix_cache_queries_total{model_name=\"tiny\"} " + prompt + "\n", text);
        Assert.DoesNotContain("vllm_", text);
    }

    [Fact]
    public async Task CompletionsStreamWithLegacyLogprobsAndCors()
    {
        var runner = ServerHarness.Scripted("red green blue", blocks: 64);
        // Completions have no chat anchor: continue the script after the prompt's last token instead.
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer),
            new ServerOptions { CorsOrigins = ["http://localhost:3000"] });
        var anchor = ServerHarness.Tokenizer.Decode([runner.Anchor]);
        var sse = await t.Stream("/v1/completions", JsonSerializer.Serialize(new { prompt = "colors:" + anchor, stream = true, logprobs = 1, stream_options = new { include_usage = true } }));
        var frames = TestServer.Frames(sse);
        Assert.All(frames, f => Assert.Equal("text_completion", f.GetProperty("object").GetString()));
        var choices = frames.Where(f => f.GetProperty("choices").GetArrayLength() > 0).Select(f => f.GetProperty("choices")[0]).ToList();
        Assert.Equal("red green blue", string.Concat(choices.Select(c => c.GetProperty("text").GetString())));
        Assert.Equal("stop", choices[^1].GetProperty("finish_reason").GetString());
        var tokens = choices.SelectMany(c => c.GetProperty("logprobs").GetProperty("tokens").EnumerateArray().Select(e => e.GetString())).ToArray();
        Assert.Equal("red green blue", string.Concat(tokens));
        Assert.Equal(tokens.Length + 1, frames[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32()); // + EOS

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/completions");
        preflight.Headers.Add("Origin", "http://localhost:3000");
        var response = await t.Http.SendAsync(preflight);
        Assert.Equal(204, (int)response.StatusCode);
        Assert.Equal("http://localhost:3000", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        using var other = new HttpRequestMessage(HttpMethod.Get, "/health");
        other.Headers.Add("Origin", "http://evil.example");
        Assert.False((await t.Http.SendAsync(other)).Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task TheChatPageIsServedAtTheRootWithoutExternalScripts()
    {
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(ServerHarness.Scripted("hi"), ServerHarness.Tokenizer),
            new ServerOptions { ApiKey = "k" });
        var response = await t.Http.GetAsync("/");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("fetch(\"/v1/chat/completions\"", html);
        Assert.Contains("reasoning_content", html);
        Assert.DoesNotContain("<script src", html);
        Assert.DoesNotContain("https://", html);
    }
}

/// <summary>`jevons loadtest` against a server with exact output.</summary>
public sealed class LoadTestCommandTests
{
    [Fact]
    public async Task LoadtestReportsEveryRequestAndTheTokensTheServerCounted()
    {
        var runner = ServerHarness.Scripted("one two three four");
        await using var t = await ServerHarness.Start(ServerHarness.ScriptedEngine(runner, ServerHarness.Tokenizer), new ServerOptions { ApiKey = "lk" });
        var r = await Task.Run(() => Jevons.Tests.Cli.CliHarness.Run("loadtest", "--url", t.Address.ToString(), "--api-key", "lk", "--requests", "12", "--concurrency", "4", "--max-tokens", "32"));
        Assert.True(r.ExitCode == 0, r.Error);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("requests: 12 ok, 0 failed in ", lines[0]);
        Assert.StartsWith("ttft ms: p50 ", lines[1]);
        int perRequest = ServerHarness.Tokenizer.Encode("one two three four", addSpecialTokens: false).Length + 1; // + EOS
        Assert.StartsWith($"generated: {12 * perRequest} tokens, ", lines[3]);
        Assert.StartsWith("loadtest: 12 requests, 4 at once, max_tokens 32, model 'tiny' at ", r.ErrorLines[0]);

        var bad = await Task.Run(() => Jevons.Tests.Cli.CliHarness.Run("loadtest", "--url", t.Address.ToString(), "--api-key", "wrong", "--model", "tiny", "--requests", "2"));
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("requests: 0 ok, 2 failed", bad.Out);
        Assert.Contains("HTTP 401", bad.Error);
    }

    /// <summary>
    /// The acceptance load (64 clients x 4 requests, then 500 with random disconnects; docs/reliability.md) at a
    /// bounded scale over a real (tiny, random-weight) model: every stream equals its non-streamed twin token for
    /// token, and after clients drop mid-stream the KV blocks in use are back at the idle value.
    /// </summary>
    [Fact]
    public async Task LoadtestVerifiesStreamsAgainstTheirTwinsAndDisconnectsLeakNoBlocks()
    {
        await using var t = await ServerHarness.Start(ServerHarness.RealEngine(context: 256, blocks: 128, maxBatchTokens: 64));
        var r = await Task.Run(() => Jevons.Tests.Cli.CliHarness.Run("loadtest", "--url", t.Address.ToString(), "--requests", "16", "--concurrency", "8",
            "--max-tokens", "12", "--verify", "--disconnect", "20", "--seed", "5"));
        Assert.True(r.ExitCode == 0, r.Out + r.Error);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("requests: 16 ok, 0 failed in ", lines[0]);
        Assert.Matches(@"^ttft ms: p50 [\d.]+  p95 [\d.]+  p99 [\d.]+  max [\d.]+$", lines[1]);
        Assert.Matches(@"^latency ms: p50 [\d.]+  p95 [\d.]+  p99 [\d.]+  max [\d.]+$", lines[2]);
        // The random model never picks EOS in 12 tokens (vocab 2048), so every request generates all 12.
        Assert.StartsWith("generated: 192 tokens, ", lines[3]);
        Assert.Equal("verify: 16 of 16 streams equal their non-streamed twins (192 tokens), 0 differ", lines[4]);
        var disconnect = System.Text.RegularExpressions.Regex.Match(lines[5],
            @"^disconnect: 20 requests, (\d+) dropped mid-stream, (\d+) finished first, 0 failed; kv blocks used: idle 0, after 0$");
        Assert.True(disconnect.Success, lines[5]);
        Assert.True(int.Parse(disconnect.Groups[1].Value) >= 10, lines[5]);
        Assert.Equal(0, t.Engine.Metrics.KvBlocksUsed);
        Assert.Contains("jevons:kv_blocks_total{model_name=\"tiny\"} 128", await t.MetricsText());
        // The server counted the drops as aborts.
        Assert.Contains("finished_reason=\"abort\"", await t.MetricsText());
    }
}
