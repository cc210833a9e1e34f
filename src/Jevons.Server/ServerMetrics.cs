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

    readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    readonly List<ModelMetrics> _models = [];
    internal readonly Gauge Running, Waiting, KvUsage, KvBlocksUsed, KvBlocksTotal, HttpInFlight, Loaded;
    internal readonly Counter PromptTokens, GenerationTokens, PrefixQueries, PrefixHits, Preemptions, Success;
    internal readonly Histogram Ttft, Itl, E2e;

    public ServerMetrics()
    {
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        string[] labels = ["model_name"];
        Running = f.CreateGauge("vllm_num_requests_running", "Sequences running in the engine (holding KV blocks).", labels);
        Waiting = f.CreateGauge("vllm_num_requests_waiting", "Sequences waiting for admission.", labels);
        KvUsage = f.CreateGauge("vllm_kv_cache_usage_perc", "KV-cache usage: 1 means every block is used.", labels);
        KvBlocksUsed = f.CreateGauge("jevons_kv_blocks_used", "KV blocks held by sequences (cached blocks no sequence holds are free).", labels);
        KvBlocksTotal = f.CreateGauge("jevons_kv_blocks_total", "KV blocks in the pool.", labels);
        PromptTokens = f.CreateCounter("vllm_prompt_tokens_total", "Prompt tokens of admitted requests.", labels);
        GenerationTokens = f.CreateCounter("vllm_generation_tokens_total", "Generated tokens.", labels);
        PrefixQueries = f.CreateCounter("vllm_prefix_cache_queries_total", "Tokens looked up in the prefix cache.", labels);
        PrefixHits = f.CreateCounter("vllm_prefix_cache_hits_total", "Tokens the prefix cache supplied.", labels);
        Preemptions = f.CreateCounter("vllm_num_preemptions_total", "Preemptions (a sequence's blocks freed and its KV recomputed later).", labels);
        var buckets = new HistogramConfiguration { Buckets = LatencyBuckets, LabelNames = labels };
        Ttft = f.CreateHistogram("vllm_time_to_first_token_seconds", "Time to the first token of a request.", buckets);
        Itl = f.CreateHistogram("vllm_inter_token_latency_seconds", "Time between two tokens of a request.", buckets);
        E2e = f.CreateHistogram("vllm_e2e_request_latency_seconds", "Time from submission to the last token.", buckets);
        Success = f.CreateCounter("vllm_request_success_total", "Finished requests by finish reason (abort: the client went away or was cancelled).",
            ["model_name", "finished_reason"]);
        HttpInFlight = f.CreateGauge("jevons_http_requests_generating", "HTTP generation requests in flight.", labels);
        Loaded = f.CreateGauge("jevons_model_loaded", "1 while the model is loaded (models load on first use and unload after --keep-alive idle).", labels);
        _registry.AddBeforeCollectCallback(() =>
        {
            lock (_models) foreach (var m in _models) m.Update();
        });
    }

    /// <summary>The metrics of one served model (label model_name).</summary>
    public ModelMetrics For(string model)
    {
        var m = new ModelMetrics(this, model);
        lock (_models) _models.Add(m);
        return m;
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

/// <summary>
/// One model's series. Engine totals are read from the attached engine's snapshot at scrape time and
/// added as deltas, so a model that is unloaded and loaded again (a new engine counting from zero)
/// keeps its counters rising.
/// </summary>
public sealed class ModelMetrics
{
    readonly string _model;
    readonly Gauge.Child _running, _waiting, _kvUsage, _kvBlocksUsed, _kvBlocksTotal, _httpInFlight, _loaded;
    readonly Counter.Child _promptTokens, _generationTokens, _prefixQueries, _prefixHits, _preemptions;
    readonly Histogram.Child _ttft, _itl, _e2e;
    readonly Counter _success;
    readonly object _lock = new();
    InferenceEngine? _engine;
    EngineMetrics _seen = new();

    internal ModelMetrics(ServerMetrics m, string model)
    {
        _model = model;
        _running = m.Running.WithLabels(model);
        _waiting = m.Waiting.WithLabels(model);
        _kvUsage = m.KvUsage.WithLabels(model);
        _kvBlocksUsed = m.KvBlocksUsed.WithLabels(model);
        _kvBlocksTotal = m.KvBlocksTotal.WithLabels(model);
        _promptTokens = m.PromptTokens.WithLabels(model);
        _generationTokens = m.GenerationTokens.WithLabels(model);
        _prefixQueries = m.PrefixQueries.WithLabels(model);
        _prefixHits = m.PrefixHits.WithLabels(model);
        _preemptions = m.Preemptions.WithLabels(model);
        _ttft = m.Ttft.WithLabels(model);
        _itl = m.Itl.WithLabels(model);
        _e2e = m.E2e.WithLabels(model);
        _success = m.Success;
        _httpInFlight = m.HttpInFlight.WithLabels(model);
        _loaded = m.Loaded.WithLabels(model);
        _loaded.Set(0);
    }

    internal void Attach(InferenceEngine engine)
    {
        lock (_lock)
        {
            _engine = engine;
            _seen = new EngineMetrics();
            _loaded.Set(1);
        }
    }

    /// <summary>Takes the engine's last totals, then reads nothing more from it (it is about to be disposed).</summary>
    internal void Detach()
    {
        lock (_lock)
        {
            Update();
            _engine = null;
            _running.Set(0);
            _waiting.Set(0);
            _kvUsage.Set(0);
            _kvBlocksUsed.Set(0);
            _kvBlocksTotal.Set(0);
            _loaded.Set(0);
        }
    }

    internal void Update()
    {
        lock (_lock)
        {
            if (_engine is null) return;
            var m = _engine.Metrics;
            _running.Set(m.Running);
            _waiting.Set(m.Waiting);
            _kvUsage.Set(m.KvBlocksTotal == 0 ? 0 : (double)m.KvBlocksUsed / m.KvBlocksTotal);
            _kvBlocksUsed.Set(m.KvBlocksUsed);
            _kvBlocksTotal.Set(m.KvBlocksTotal);
            _promptTokens.Inc(Math.Max(0, m.PromptTokens - _seen.PromptTokens));
            _generationTokens.Inc(Math.Max(0, m.GenerationTokens - _seen.GenerationTokens));
            _prefixQueries.Inc(Math.Max(0, m.PrefixQueryTokens - _seen.PrefixQueryTokens));
            _prefixHits.Inc(Math.Max(0, m.PrefixHitTokens - _seen.PrefixHitTokens));
            _preemptions.Inc(Math.Max(0, m.Preemptions - _seen.Preemptions));
            _seen = m;
        }
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
}
