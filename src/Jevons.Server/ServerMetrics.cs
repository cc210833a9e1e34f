using Jevons.Inference;
using Microsoft.AspNetCore.Http;
using System.Text;
using Prometheus;

namespace Jevons.Server;

/// <summary>
/// GET /metrics in Prometheus text format, under vLLM's metric names (so vLLM dashboards work
/// unchanged), each labelled model_name. prometheus-net does not accept ':' in names, so metrics
/// are registered as vllm_x / jevons_x and the namespace separator is restored on export. Engine gauges and totals are read from the engine's
/// snapshot at scrape time; latencies are observed by the HTTP side as events arrive.
/// </summary>
public sealed class ServerMetrics
{
    static readonly double[] LatencyBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

    readonly InferenceEngine _engine;
    readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    readonly Gauge.Child _running, _waiting, _kvUsage;
    readonly Counter.Child _promptTokens, _generationTokens, _prefixQueries, _prefixHits, _preemptions;
    readonly Histogram.Child _ttft, _itl, _e2e;
    readonly Counter _success;
    readonly Gauge.Child _httpInFlight;
    readonly string _model;

    public ServerMetrics(InferenceEngine engine, string model)
    {
        _engine = engine;
        _model = model;
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        string[] labels = ["model_name"];
        _running = f.CreateGauge("vllm_num_requests_running", "Sequences running in the engine (holding KV blocks).", labels).WithLabels(model);
        _waiting = f.CreateGauge("vllm_num_requests_waiting", "Sequences waiting for admission.", labels).WithLabels(model);
        _kvUsage = f.CreateGauge("vllm_kv_cache_usage_perc", "KV-cache usage: 1 means every block is used.", labels).WithLabels(model);
        _promptTokens = f.CreateCounter("vllm_prompt_tokens_total", "Prompt tokens of admitted requests.", labels).WithLabels(model);
        _generationTokens = f.CreateCounter("vllm_generation_tokens_total", "Generated tokens.", labels).WithLabels(model);
        _prefixQueries = f.CreateCounter("vllm_prefix_cache_queries_total", "Tokens looked up in the prefix cache.", labels).WithLabels(model);
        _prefixHits = f.CreateCounter("vllm_prefix_cache_hits_total", "Tokens the prefix cache supplied.", labels).WithLabels(model);
        _preemptions = f.CreateCounter("vllm_num_preemptions_total", "Preemptions (a sequence's blocks freed and its KV recomputed later).", labels).WithLabels(model);
        var buckets = new HistogramConfiguration { Buckets = LatencyBuckets, LabelNames = labels };
        _ttft = f.CreateHistogram("vllm_time_to_first_token_seconds", "Time to the first token of a request.", buckets).WithLabels(model);
        _itl = f.CreateHistogram("vllm_inter_token_latency_seconds", "Time between two tokens of a request.", buckets).WithLabels(model);
        _e2e = f.CreateHistogram("vllm_e2e_request_latency_seconds", "Time from submission to the last token.", buckets).WithLabels(model);
        _success = f.CreateCounter("vllm_request_success_total", "Finished requests by finish reason (abort: the client went away or was cancelled).",
            ["model_name", "finished_reason"]);
        _httpInFlight = f.CreateGauge("jevons_http_requests_generating", "HTTP generation requests in flight.", labels).WithLabels(model);
        _registry.AddBeforeCollectCallback(Update);
    }

    void Update()
    {
        var m = _engine.Metrics;
        _running.Set(m.Running);
        _waiting.Set(m.Waiting);
        _kvUsage.Set(m.KvBlocksTotal == 0 ? 0 : (double)m.KvBlocksUsed / m.KvBlocksTotal);
        _promptTokens.IncTo(m.PromptTokens);
        _generationTokens.IncTo(m.GenerationTokens);
        _prefixQueries.IncTo(m.PrefixQueryTokens);
        _prefixHits.IncTo(m.PrefixHitTokens);
        _preemptions.IncTo(m.Preemptions);
    }

    internal void Started() => _httpInFlight.Inc();
    internal void FirstToken(double seconds) => _ttft.Observe(seconds);
    internal void InterToken(double seconds) => _itl.Observe(seconds);

    internal void Finished(string reason, double seconds)
    {
        _httpInFlight.Dec();
        _success.WithLabels(_model, reason).Inc();
        if (reason != "abort") _e2e.Observe(seconds);
    }

    internal async Task Scrape(HttpContext c)
    {
        c.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        using var buffer = new MemoryStream();
        await _registry.CollectAndExportAsTextAsync(buffer, c.RequestAborted);
        var text = new StringBuilder();
        foreach (var line in Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length).Split('\n'))
        {
            if (line.Length == 0) continue;
            int at = line.StartsWith("# HELP ", StringComparison.Ordinal) || line.StartsWith("# TYPE ", StringComparison.Ordinal) ? 7 : 0;
            text.Append(line, 0, at);
            var name = line.AsSpan(at);
            if (name.StartsWith("vllm_")) text.Append("vllm:").Append(name[5..]);
            else if (name.StartsWith("jevons_")) text.Append("jevons:").Append(name[7..]);
            else text.Append(name);
            text.Append('\n');
        }
        await c.Response.WriteAsync(text.ToString(), c.RequestAborted);
    }
}
