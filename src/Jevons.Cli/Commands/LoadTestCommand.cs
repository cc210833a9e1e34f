using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons loadtest`: concurrent streaming chat requests against an OpenAI-compatible server; TTFT, latency, tokens/s.
/// With --verify each stream is checked against its non-streamed twin (same seed); with --disconnect N more streams
/// are dropped at random points, and the server's KV blocks in use (GET /metrics) must return to their idle value.
/// </summary>
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
        new("--seed", "request i sends seed S + i; --disconnect draws its drop points from S (default 1)", "S"),
        new("--verify", "also send each request non-streamed with the same seed and check the stream gave the same reasoning, content and tokens (logprobs)"),
        new("--disconnect", "then N more streaming requests, each dropped after a random number of chunks; check the server's KV blocks in use (jevons:kv_blocks_used) return to their idle value", "N"),
    ]);

    sealed record Result(bool Ok, double Ttft, double Seconds, int Tokens, string? Error)
    {
        public string Reasoning { get; init; } = "";
        public string Content { get; init; } = "";
        /// <summary>The logprobs entries' tokens, in order (only with --verify).</summary>
        public List<string> TokenTexts { get; init; } = [];
        /// <summary>The client dropped the connection before the stream ended (--disconnect).</summary>
        public bool Dropped { get; init; }
    }

    public int Run(ParsedArgs a, CliContext c)
    {
        var url = (a.Get("--url") ?? "http://127.0.0.1:8080").TrimEnd('/');
        int requests = a.GetInt("--requests", 32, 1), concurrency = a.GetInt("--concurrency", 8, 1, 4096), maxTokens = a.GetInt("--max-tokens", 64, 1);
        int disconnects = a.GetInt("--disconnect", 0, 0);
        ulong seed = a.GetSeed("--seed") ?? 1;
        bool verify = a.Has("--verify");
        var prompt = a.Get("--prompt") ?? "Explain in one paragraph why the sky is blue.";
        var key = a.Get("--api-key") ?? Environment.GetEnvironmentVariable("JEVONS_API_KEY");
        using var http = new HttpClient { BaseAddress = new Uri(url + "/"), Timeout = TimeSpan.FromMinutes(30) };
        // Dropping a response must close its connection (not drain it for reuse), so the server sees the client go.
        using var dropper = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = http.BaseAddress, Timeout = http.Timeout };
        foreach (var client in new[] { http, dropper })
            if (!string.IsNullOrEmpty(key)) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
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
            c.Error.WriteLine($"loadtest: {requests} requests, {concurrency} at once, max_tokens {maxTokens}, model '{model}' at {url}"
                + (verify ? ", each checked against its non-streamed twin" : "") + (disconnects > 0 ? $", then {disconnects} with random disconnects" : ""));
            int? idle = disconnects > 0 ? await BlocksUsed(http, model, c.Cancel) : null;
            string Body(int i, bool stream) => RequestBody(model, $"{prompt} #{i}", maxTokens, seed + (ulong)i, stream, verify);

            var results = new Result[requests];
            var twins = verify ? new Result[requests] : null;
            var wall = Stopwatch.StartNew();
            await ForEach(requests, concurrency, async i =>
            {
                results[i] = await Stream(http, Body(i, true), -1, verify, c.Cancel);
                if (twins is not null) twins[i] = await NonStreamed(http, Body(i, false), c.Cancel);
            });
            double seconds = wall.Elapsed.TotalSeconds;
            var ok = results.Where(r => r.Ok).ToArray();
            int tokens = ok.Sum(r => r.Tokens);
            bool passed = ok.Length == requests;
            c.Out.WriteLine($"requests: {ok.Length} ok, {requests - ok.Length} failed in {seconds:F2} s");
            if (ok.Length > 0)
            {
                var ttft = ok.Select(r => r.Ttft * 1000).Order().ToArray();
                var latency = ok.Select(r => r.Seconds * 1000).Order().ToArray();
                c.Out.WriteLine($"ttft ms: p50 {Pct(ttft, 50):F1}  p95 {Pct(ttft, 95):F1}  p99 {Pct(ttft, 99):F1}  max {ttft[^1]:F1}");
                c.Out.WriteLine($"latency ms: p50 {Pct(latency, 50):F1}  p95 {Pct(latency, 95):F1}  p99 {Pct(latency, 99):F1}  max {latency[^1]:F1}");
                c.Out.WriteLine($"generated: {tokens} tokens, {tokens / seconds:F1} tok/s in all, {ok.Average(r => r.Tokens / Math.Max(r.Seconds - r.Ttft, 1e-9)):F1} tok/s per stream");
            }
            if (twins is not null) passed &= Verify(results, twins, c);
            foreach (var e in results.Concat(twins ?? []).Where(r => !r.Ok).Select(r => r.Error).Distinct().Take(5)) c.Error.WriteLine("loadtest: error: " + e);

            if (disconnects > 0)
            {
                var rng = new Random(unchecked((int)seed));
                // Drop after 0 .. max_tokens + 1 data chunks: before the first token, mid-stream, or (past the end) not at all.
                var cuts = Enumerable.Range(0, disconnects).Select(_ => rng.Next(0, maxTokens + 2)).ToArray();
                var dropped = new Result[disconnects];
                await ForEach(disconnects, concurrency, async i => dropped[i] = await Stream(dropper, Body(requests + i, true), cuts[i], false, c.Cancel));
                int drops = dropped.Count(r => r.Dropped), failed = dropped.Count(r => !r.Ok);
                // The server notices a gone client at its next write and frees the blocks at the engine's next step.
                int after = -1;
                var deadline = Stopwatch.StartNew();
                while (deadline.Elapsed < TimeSpan.FromSeconds(30) && (after = await BlocksUsed(http, model, c.Cancel)) != idle)
                    await Task.Delay(100, c.Cancel);
                c.Out.WriteLine($"disconnect: {disconnects} requests, {drops} dropped mid-stream, {disconnects - drops - failed} finished first, {failed} failed; " +
                    $"kv blocks used: idle {idle}, after {after}{(after == idle ? "" : " (not back after 30 s)")}");
                foreach (var e in dropped.Where(r => !r.Ok).Select(r => r.Error).Distinct().Take(5)) c.Error.WriteLine("loadtest: error: " + e);
                passed &= failed == 0 && after == idle;
            }
            return passed ? 0 : 1;
        }).GetAwaiter().GetResult();
    }

    static async Task ForEach(int count, int concurrency, Func<int, Task> body)
    {
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, count)).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count) await body(i);
        })));
    }

    /// <summary>Prints one line: how many streams matched their twins; each mismatch as an error line (the first 5).</summary>
    static bool Verify(Result[] streams, Result[] twins, CliContext c)
    {
        int same = 0, tokens = 0;
        var problems = new List<string>();
        for (int i = 0; i < streams.Length; i++)
        {
            var (s, t) = (streams[i], twins[i]);
            if (!s.Ok || !t.Ok) continue;
            string? why = s.Reasoning != t.Reasoning ? $"reasoning differs at char {Diverge(s.Reasoning, t.Reasoning)}"
                : s.Content != t.Content ? $"content differs at char {Diverge(s.Content, t.Content)}"
                : s.Tokens != t.Tokens ? $"{s.Tokens} completion tokens streamed, {t.Tokens} not streamed"
                : !s.TokenTexts.SequenceEqual(t.TokenTexts) ? $"{s.TokenTexts.Count} logprobs tokens streamed, {t.TokenTexts.Count} not streamed, first difference at {Diverge(s.TokenTexts, t.TokenTexts)}"
                : null;
            if (why is null)
            {
                same++;
                tokens += s.Tokens;
            }
            else problems.Add($"request {i}: stream and twin differ: {why}");
        }
        int compared = streams.Zip(twins).Count(p => p.First.Ok && p.Second.Ok);
        c.Out.WriteLine($"verify: {same} of {compared} streams equal their non-streamed twins ({tokens} tokens), {compared - same} differ");
        foreach (var p in problems.Take(5)) c.Error.WriteLine("loadtest: " + p);
        return same == streams.Length;
    }

    static int Diverge(string a, string b)
    {
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        return i;
    }

    static int Diverge(List<string> a, List<string> b)
    {
        int i = 0;
        while (i < a.Count && i < b.Count && a[i] == b[i]) i++;
        return i;
    }

    static double Pct(double[] sorted, int p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1)];

    static string RequestBody(string model, string prompt, int maxTokens, ulong seed, bool stream, bool logprobs)
    {
        var body = new Dictionary<string, object>
        {
            ["model"] = model,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } },
            ["max_tokens"] = maxTokens,
            ["seed"] = (long)(seed & long.MaxValue),
        };
        if (logprobs) body["logprobs"] = true;
        if (stream)
        {
            body["stream"] = true;
            body["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true };
        }
        return JsonSerializer.Serialize(body, CliJson.Default.DictionaryStringObject);
    }

    /// <summary>One streaming request, read to its end; with <paramref name="dropAfter"/> ≥ 0 the connection is dropped after that many data chunks.</summary>
    static async Task<Result> Stream(HttpClient http, string body, int dropAfter, bool collectTokens, CancellationToken cancel)
    {
        var watch = Stopwatch.StartNew();
        double ttft = -1;
        int tokens = 0, chunks = 0;
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        var tokenTexts = new List<string>();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            if (!response.IsSuccessStatusCode) return new Result(false, 0, 0, 0, $"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancel)}");
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
            bool done = false;
            while (true)
            {
                if (dropAfter >= 0 && chunks >= dropAfter) break;
                if (await reader.ReadLineAsync(cancel) is not { } line) break;
                if (line == "data: [DONE]")
                {
                    done = true;
                    continue;
                }
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                chunks++;
                using var doc = JsonDocument.Parse(line.AsMemory(6));
                var root = doc.RootElement;
                if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) tokens = u.GetProperty("completion_tokens").GetInt32();
                if (!root.TryGetProperty("choices", out var ch) || ch.GetArrayLength() == 0) continue;
                var choice = ch[0];
                if (choice.TryGetProperty("delta", out var d))
                {
                    string? r = d.TryGetProperty("reasoning_content", out var rc) ? rc.GetString() : null, t = d.TryGetProperty("content", out var tc) ? tc.GetString() : null;
                    reasoning.Append(r);
                    content.Append(t);
                    if (ttft < 0 && (r is { Length: > 0 } || t is { Length: > 0 })) ttft = watch.Elapsed.TotalSeconds;
                }
                if (collectTokens) AddTokens(choice, tokenTexts);
            }
            if (dropAfter >= 0 && !done) return new Result(true, 0, 0, 0, null) { Dropped = true };
            if (!done) return new Result(false, 0, 0, 0, "the stream ended without data: [DONE]");
            return new Result(true, ttft < 0 ? watch.Elapsed.TotalSeconds : ttft, watch.Elapsed.TotalSeconds, tokens, null)
                { Reasoning = reasoning.ToString(), Content = content.ToString(), TokenTexts = tokenTexts };
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return new Result(false, 0, 0, 0, e.Message);
        }
    }

    static async Task<Result> NonStreamed(HttpClient http, string body, CancellationToken cancel)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            using var response = await http.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"), cancel);
            var text = await response.Content.ReadAsStringAsync(cancel);
            if (!response.IsSuccessStatusCode) return new Result(false, 0, 0, 0, $"HTTP {(int)response.StatusCode} (non-streamed twin): {text}");
            using var doc = JsonDocument.Parse(text);
            var choice = doc.RootElement.GetProperty("choices")[0];
            var message = choice.GetProperty("message");
            var tokens = new List<string>();
            AddTokens(choice, tokens);
            return new Result(true, 0, watch.Elapsed.TotalSeconds, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), null)
            {
                Reasoning = message.TryGetProperty("reasoning_content", out var r) ? r.GetString() ?? "" : "",
                Content = message.TryGetProperty("content", out var t) ? t.GetString() ?? "" : "",
                TokenTexts = tokens,
            };
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return new Result(false, 0, 0, 0, "non-streamed twin: " + e.Message);
        }
    }

    static void AddTokens(JsonElement choice, List<string> tokens)
    {
        if (choice.TryGetProperty("logprobs", out var lp) && lp.ValueKind == JsonValueKind.Object
            && lp.TryGetProperty("content", out var entries) && entries.ValueKind == JsonValueKind.Array)
            foreach (var e in entries.EnumerateArray()) tokens.Add(e.GetProperty("token").GetString() ?? "");
    }

    /// <summary>jevons:kv_blocks_used{model_name="<paramref name="model"/>"} from GET /metrics.</summary>
    static async Task<int> BlocksUsed(HttpClient http, string model, CancellationToken cancel)
    {
        string text;
        try
        {
            text = await http.GetStringAsync("metrics", cancel);
        }
        catch (HttpRequestException e)
        {
            throw new JevonsException($"jevons loadtest: --disconnect reads GET /metrics: {e.Message}");
        }
        var prefix = $"jevons:kv_blocks_used{{model_name=\"{model}\"}} ";
        foreach (var line in text.Split('\n'))
            if (line.StartsWith(prefix, StringComparison.Ordinal)
                && double.TryParse(line.AsSpan(prefix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                return (int)v;
        throw new JevonsException($"jevons loadtest: --disconnect needs the server's jevons:kv_blocks_used metric for model '{model}' (GET /metrics has none)");
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, bool>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
[System.Text.Json.Serialization.JsonSerializable(typeof(long))]
[System.Text.Json.Serialization.JsonSerializable(typeof(bool))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;
