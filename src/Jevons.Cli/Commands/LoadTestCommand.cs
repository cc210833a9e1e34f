using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Jevons.Cli.Commands;

/// <summary>`jevons loadtest`: concurrent streaming chat requests against an OpenAI-compatible server; TTFT, latency, tokens/s.</summary>
sealed class LoadTestCommand : ICommand
{
    public CommandSpec Spec { get; } = new("loadtest", "fire concurrent streaming chat requests at an OpenAI-compatible server and report TTFT and tokens/s",
    [
        new("--url", "the server (default http://127.0.0.1:8080)", "URL"),
        new("--model", "model id to send (default: the first of /v1/models)", "ID"),
        new("--api-key", "bearer key (default: env JEVONS_API_KEY)", "KEY"),
        new("--requests", "requests in all (default 32)", "N"),
        new("--concurrency", "requests in flight at once (default 8)", "N"),
        new("--max-tokens", "max_tokens per request (default 64)", "N"),
        new("--prompt", "the user message (default: a short question; request i appends ' #i')", "TEXT"),
    ]);

    sealed record Result(bool Ok, double Ttft, double Seconds, int Tokens, string? Error);

    public int Run(ParsedArgs a, CliContext c)
    {
        var url = (a.Get("--url") ?? "http://127.0.0.1:8080").TrimEnd('/');
        int requests = a.GetInt("--requests", 32, 1), concurrency = a.GetInt("--concurrency", 8, 1, 4096), maxTokens = a.GetInt("--max-tokens", 64, 1);
        var prompt = a.Get("--prompt") ?? "Explain in one paragraph why the sky is blue.";
        var key = a.Get("--api-key") ?? Environment.GetEnvironmentVariable("JEVONS_API_KEY");
        using var http = new HttpClient { BaseAddress = new Uri(url + "/"), Timeout = TimeSpan.FromMinutes(30) };
        if (!string.IsNullOrEmpty(key)) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return Task.Run(async () =>
        {
            string model;
            try
            {
                model = a.Get("--model") ?? JsonDocument.Parse(await http.GetStringAsync("v1/models", c.Cancel)).RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
            }
            catch (HttpRequestException e)
            {
                throw new JevonsException($"jevons loadtest: cannot reach {url}/v1/models: {e.Message}");
            }
            c.Error.WriteLine($"loadtest: {requests} requests, {concurrency} at once, max_tokens {maxTokens}, model '{model}' at {url}");
            var results = new Result[requests];
            int next = -1;
            var wall = Stopwatch.StartNew();
            var workers = Enumerable.Range(0, Math.Min(concurrency, requests)).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < requests) results[i] = await One(http, model, $"{prompt} #{i}", maxTokens, c.Cancel);
            })).ToArray();
            await Task.WhenAll(workers);
            double seconds = wall.Elapsed.TotalSeconds;
            var ok = results.Where(r => r.Ok).ToArray();
            int tokens = ok.Sum(r => r.Tokens);
            c.Out.WriteLine($"requests: {ok.Length} ok, {requests - ok.Length} failed in {seconds:F2} s");
            if (ok.Length > 0)
            {
                var ttft = ok.Select(r => r.Ttft * 1000).Order().ToArray();
                var latency = ok.Select(r => r.Seconds * 1000).Order().ToArray();
                c.Out.WriteLine($"ttft ms: p50 {Pct(ttft, 50):F1}  p95 {Pct(ttft, 95):F1}  max {ttft[^1]:F1}");
                c.Out.WriteLine($"latency ms: p50 {Pct(latency, 50):F1}  p95 {Pct(latency, 95):F1}  max {latency[^1]:F1}");
                c.Out.WriteLine($"generated: {tokens} tokens, {tokens / seconds:F1} tok/s in all, {ok.Average(r => r.Tokens / Math.Max(r.Seconds - r.Ttft, 1e-9)):F1} tok/s per stream");
            }
            foreach (var e in results.Where(r => !r.Ok).Select(r => r.Error).Distinct().Take(5)) c.Error.WriteLine("loadtest: error: " + e);
            return ok.Length == requests ? 0 : 1;
        }).GetAwaiter().GetResult();
    }

    static double Pct(double[] sorted, int p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1)];

    static async Task<Result> One(HttpClient http, string model, string prompt, int maxTokens, CancellationToken cancel)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } },
            ["max_tokens"] = maxTokens,
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
        }, CliJson.Default.DictionaryStringObject);
        var watch = Stopwatch.StartNew();
        double ttft = -1;
        int tokens = 0;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            if (!response.IsSuccessStatusCode) return new Result(false, 0, 0, 0, $"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancel)}");
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
            while (await reader.ReadLineAsync(cancel) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
                using var doc = JsonDocument.Parse(line.AsMemory(6));
                var root = doc.RootElement;
                if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) tokens = u.GetProperty("completion_tokens").GetInt32();
                if (ttft < 0 && root.TryGetProperty("choices", out var ch) && ch.GetArrayLength() > 0 && ch[0].TryGetProperty("delta", out var d)
                    && ((d.TryGetProperty("content", out var t) && t.GetString() is { Length: > 0 }) || (d.TryGetProperty("reasoning_content", out var rc) && rc.GetString() is { Length: > 0 })))
                    ttft = watch.Elapsed.TotalSeconds;
            }
            return new Result(true, ttft < 0 ? watch.Elapsed.TotalSeconds : ttft, watch.Elapsed.TotalSeconds, tokens, null);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException)
        {
            return new Result(false, 0, 0, 0, e.Message);
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, bool>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
[System.Text.Json.Serialization.JsonSerializable(typeof(bool))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;
