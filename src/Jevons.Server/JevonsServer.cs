using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Jevons.Inference;
using Jevons.Tokenization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Jevons.Server;

/// <summary>
/// `jevons serve`: an OpenAI- and DeepSeek-compatible HTTP face of one or more models, each an
/// <see cref="InferenceEngine"/> (ASP.NET Core minimal APIs on Kestrel). POST /v1/chat/completions, /v1/completions, GET
/// /v1/models, /health, /metrics (Prometheus, vLLM's names), POST /tokenize, /detokenize.
/// </summary>
public sealed class JevonsServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ServerOptions _options;
    readonly byte[]? _keyHash;
    readonly ServedModel[] _models;
    readonly Timer? _reaper;
    int _queued;
    volatile bool _stopping;

    JevonsServer(ServerOptions options, Func<ServerMetrics, IEnumerable<ServedModel>> models)
    {
        _options = options;
        Metrics = new ServerMetrics();
        _models = [.. models(Metrics)];
        if (_models.Length == 0) throw new ArgumentException("the server needs at least one model", nameof(models));
        foreach (var group in _models.GroupBy(m => m.Id).Where(g => g.Count() > 1))
            throw new JevonsException($"two models have the id '{group.Key}'; model ids must be unique");
        _keyHash = string.IsNullOrEmpty(options.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (options.ModelKeepAlive is TimeSpan keep)
        {
            var period = TimeSpan.FromMilliseconds(Math.Clamp(keep.TotalMilliseconds / 4, 20, 5000));
            _reaper = new Timer(_ => { foreach (var m in _models) m.UnloadIfIdle(keep); }, null, period, period);
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout);
        builder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null; // checked per request, to answer with OpenAI error JSON
            if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else throw new JevonsException($"--host '{options.Host}' is not an IP address or localhost");
        });
        _app = builder.Build();
        _app.Lifetime.ApplicationStopping.Register(() => _stopping = true);
        _app.Use(Gate);
        _app.MapGet("/", ChatPage);
        _app.MapGet("/health", (HttpContext c) => Json(c, 200, new HealthResponse(_stopping ? "stopping" : "ok"), ProtocolJson.Default.HealthResponse));
        _app.MapGet("/metrics", Metrics.Scrape);
        _app.MapGet("/v1/models", (HttpContext c) => Json(c, 200, new ModelList([.. _models.Select(Card)]), ProtocolJson.Default.ModelList));
        _app.MapGet("/v1/models/{id}", (HttpContext c, string id) => Json(c, 200, Card(Find(id)), ProtocolJson.Default.ModelCard));
        _app.MapPost("/v1/chat/completions", (HttpContext c) => Generate(c, ChatEndpoint.Handle));
        _app.MapPost("/v1/completions", (HttpContext c) => Generate(c, CompletionEndpoint.Handle));
        _app.MapPost("/tokenize", Tokenize);
        _app.MapPost("/detokenize", Detokenize);
        _app.MapFallback((HttpContext c) => throw new ApiException(404, $"no route for {c.Request.Method} {c.Request.Path}", "invalid_request_error", null, "not_found"));
    }

    /// <summary>A server over one engine that the caller owns (it is never unloaded), listed as <see cref="ServerOptions.ModelId"/>.</summary>
    public static JevonsServer Create(InferenceEngine engine, ServerOptions options) =>
        new(options, m => [new ServedModel(options.ModelId, engine, m.For(options.ModelId))]);

    /// <summary>
    /// A server over several models, Ollama-style: each listed by /v1/models, chosen by the request's
    /// model field (none: the first), loaded on first use, unloaded after <see cref="ServerOptions.ModelKeepAlive"/> idle.
    /// </summary>
    public static JevonsServer Create(IReadOnlyList<ModelSpec> models, ServerOptions options) =>
        new(options, m => models.Select(spec => new ServedModel(spec.Id, spec.Load, m.For(spec.Id), options.Log)));

    /// <summary>The served models' ids, in order (the first is the default).</summary>
    public IReadOnlyList<string> ModelIds => [.. _models.Select(m => m.Id)];

    /// <summary>Whether the model is loaded now.</summary>
    public bool IsLoaded(string id) => Find(id).Loaded;

    /// <summary>Loads a model now (as its first request would); returns its context length and the chat template's notice, if any.</summary>
    public async Task<(int ContextLength, string? Notice)> LoadAsync(string id, CancellationToken cancel = default)
    {
        using var lease = await Find(id).Acquire(cancel);
        return (lease.Model.ContextLength, lease.Model.Chat.Notice);
    }

    public ServerMetrics Metrics { get; }
    internal ServerOptions Options => _options;
    internal long Created { get; }
    ModelCard Card(ServedModel m) => new(m.Id, Created, "jevons", m.ContextLength);

    /// <summary>The model a request names (none: the first); 404 model_not_found for an unknown one.</summary>
    internal ServedModel Find(string? model)
    {
        if (string.IsNullOrEmpty(model)) return _models[0];
        foreach (var m in _models) if (m.Id == model) return m;
        throw new ApiException(404, $"the model '{model}' does not exist (this server serves {string.Join(", ", _models.Select(m => "'" + m.Id + "'"))})",
            "invalid_request_error", "model", "model_not_found");
    }

    /// <summary>The named model, loaded, for the length of one request.</summary>
    internal Task<ServedModel.ModelLease> Acquire(string? model, HttpContext c) => Find(model).Acquire(c.RequestAborted);

    /// <summary>The bound address, e.g. http://127.0.0.1:8080 (valid after <see cref="StartAsync"/>).</summary>
    public string Address => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    public Task StartAsync(CancellationToken cancel = default) => _app.StartAsync(cancel);

    /// <summary>Stops admitting, lets in-flight requests finish for ShutdownTimeout, then cancels them.</summary>
    public Task StopAsync(CancellationToken cancel = default) => _app.StopAsync(cancel);

    public Task WaitForShutdownAsync(CancellationToken cancel = default) => _app.WaitForShutdownAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        if (_reaper is not null) await _reaper.DisposeAsync();
        await _app.DisposeAsync();
        foreach (var m in _models) m.Dispose();
    }

    /// <summary>Errors as OpenAI JSON, CORS, the API key, the request log. Never logs a key; prompts only with --log-prompts.</summary>
    async Task Gate(HttpContext c, RequestDelegate next)
    {
        var watch = Stopwatch.StartNew();
        if (_options.CorsOrigins.Count > 0 && c.Request.Headers.Origin.ToString() is { Length: > 0 } origin
            && (_options.CorsOrigins.Contains("*") || _options.CorsOrigins.Contains(origin)))
        {
            c.Response.Headers.AccessControlAllowOrigin = _options.CorsOrigins.Contains("*") ? "*" : origin;
            c.Response.Headers.AccessControlAllowHeaders = "Authorization, Content-Type";
            c.Response.Headers.AccessControlAllowMethods = "GET, POST, OPTIONS";
            c.Response.Headers.Vary = "Origin";
            if (HttpMethods.IsOptions(c.Request.Method))
            {
                c.Response.StatusCode = 204;
                return;
            }
        }
        try
        {
            var path = c.Request.Path.Value ?? "";
            if (_keyHash is not null && path is not ("/" or "/health" or "/metrics") && !Authorized(c))
                throw new ApiException(401, "invalid or missing API key (send Authorization: Bearer KEY)", "authentication_error", null, "invalid_api_key");
            await next(c);
        }
        catch (ApiException e) when (!c.Response.HasStarted)
        {
            if (e.RetryAfter is int s) c.Response.Headers.RetryAfter = s.ToString();
            await Json(c, e.Status, e.ToBody(), ProtocolJson.Default.ErrorResponse);
        }
        catch (OperationCanceledException) when (c.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its sequence was cancelled.
        }
        catch (Exception e) when (!c.Response.HasStarted && e is not OperationCanceledException)
        {
            _options.Log?.WriteLine($"error: {e.GetType().Name}: {e.Message}");
            await Json(c, 500, new ApiException(500, "internal error: " + e.Message, "server_error").ToBody(), ProtocolJson.Default.ErrorResponse);
        }
        _options.Log?.WriteLine($"{c.Request.Method} {c.Request.Path} {c.Response.StatusCode} {watch.Elapsed.TotalMilliseconds:F0} ms");
    }

    bool Authorized(HttpContext c)
    {
        var header = c.Request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        if (!header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)) return false;
        // Hashes have one length, so the comparison takes the same time whatever the key sent.
        var sent = SHA256.HashData(Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(sent, _keyHash);
    }

    /// <summary>Reads the body (413 past the limit) and parses it (400 naming the path of a wrong field).</summary>
    internal async Task<T> ReadBody<T>(HttpContext c, JsonTypeInfo<T> type) where T : class
    {
        long limit = _options.MaxBodyBytes;
        if (c.Request.ContentLength > limit) TooLarge(c.Request.ContentLength.Value);
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await c.Request.Body.ReadAsync(chunk, c.RequestAborted)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > limit) TooLarge(buffer.Length);
        }
        if (buffer.Length == 0) ApiException.BadRequest("the request body is empty; send a JSON object");
        try
        {
            var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
            using (var doc = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length)))
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    ApiException.BadRequest("the request body must be a JSON object");
            return JsonSerializer.Deserialize(bytes, type) ?? throw new ApiException(400, "the request body must be a JSON object");
        }
        catch (JsonException e)
        {
            var param = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? null : e.Path.TrimStart('$', '.');
            var what = param is null ? "the request body is not valid JSON" : $"'{param}' has the wrong type";
            throw new ApiException(400, $"{what}: {e.Message.Split(" Path:")[0]}", "invalid_request_error", param);
        }

        void TooLarge(long size) => throw new ApiException(413,
            $"the request body is {(size > limit ? "over " : "")}{size} bytes; the limit is {limit} (--max-body)", "invalid_request_error", null, "request_too_large");
    }

    /// <summary>Admission: 503 while stopping, 429 past --max-queue; the returned lease ends the wait in the queue.</summary>
    internal QueueLease Admit()
    {
        if (_stopping) throw new ApiException(503, "the server is shutting down", "server_error", null, "shutting_down");
        if (Interlocked.Increment(ref _queued) > _options.MaxQueue)
        {
            Interlocked.Decrement(ref _queued);
            throw new ApiException(429, $"{_options.MaxQueue} requests are already waiting (--max-queue); retry shortly", "rate_limit_error", null, "queue_full")
                { RetryAfter = 1 };
        }
        return new QueueLease(this);
    }

    internal sealed class QueueLease(JevonsServer server)
    {
        int _done;
        public void Release()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Interlocked.Decrement(ref server._queued);
        }
    }

    Task Generate(HttpContext c, Func<JevonsServer, HttpContext, Task> handler) => handler(this, c);

    /// <summary>Admits and submits to the engine: its one-line refusals (context, vocabulary, KV pool) are 400s.</summary>
    internal Flight Start(ModelInstance model, GenerationRequest request)
    {
        var lease = Admit();
        try
        {
            return new Flight(model.Engine.Submit(request), lease, model.Metrics);
        }
        catch (JevonsException e)
        {
            lease.Release();
            throw new ApiException(400, e.Message, "invalid_request_error", null, e.Message.Contains("context length") ? "context_length_exceeded" : null);
        }
        catch
        {
            lease.Release();
            throw;
        }
    }

    /// <summary>GET /: a small chat page (one embedded HTML file, no CDN) that streams from /v1/chat/completions.</summary>
    static async Task ChatPage(HttpContext c)
    {
        using var page = typeof(JevonsServer).Assembly.GetManifestResourceStream("Jevons.Server.index.html")!;
        c.Response.ContentType = "text/html; charset=utf-8";
        await page.CopyToAsync(c.Response.Body, c.RequestAborted);
    }

    async Task Tokenize(HttpContext c)
    {
        var r = await ReadBody(c, ProtocolJson.Default.TokenizeRequest);
        var text = r.Content ?? r.Prompt;
        if (text is null) ApiException.BadRequest("content (or prompt) is required", "content");
        using var lease = await Acquire(r.Model, c);
        var ids = lease.Model.Tokenizer.Encode(text, addSpecialTokens: r.AddSpecial ?? true);
        await Json(c, 200, new TokenizeResponse(ids, ids.Length, lease.Model.ContextLength), ProtocolJson.Default.TokenizeResponse);
    }

    async Task Detokenize(HttpContext c)
    {
        var r = await ReadBody(c, ProtocolJson.Default.DetokenizeRequest);
        if (r.Tokens is null) ApiException.BadRequest("tokens is required", "tokens");
        using var lease = await Acquire(r.Model, c);
        var tokenizer = lease.Model.Tokenizer;
        foreach (var id in r.Tokens)
            if ((uint)id >= (uint)tokenizer.VocabSize)
                ApiException.BadRequest($"token id {id} is out of vocabulary (the model has {tokenizer.VocabSize} tokens)", "tokens");
        await Json(c, 200, new DetokenizeResponse(tokenizer.Decode(r.Tokens)), ProtocolJson.Default.DetokenizeResponse);
    }

    internal static async Task Json<T>(HttpContext c, int status, T value, JsonTypeInfo<T> type)
    {
        c.Response.StatusCode = status;
        c.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(c.Response.Body, value, type, c.RequestAborted);
    }

    internal void LogPrompt(string kind, string prompt)
    {
        if (_options.LogPrompts) _options.Log?.WriteLine($"{kind}: {JsonSerializer.Serialize(prompt, ProtocolJson.Default.String)}");
    }
}
