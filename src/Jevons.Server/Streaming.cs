using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Jevons.Inference;
using Jevons.Tokenization;
using Microsoft.AspNetCore.Http;

namespace Jevons.Server;

/// <summary>Server-sent events as OpenAI frames them: "data: JSON\n\n", ": keep-alive\n\n" comments, "data: [DONE]".</summary>
static class Sse
{
    static readonly byte[] DataPrefix = "data: "u8.ToArray(), End = "\n\n"u8.ToArray(), KeepAlive = ": keep-alive\n\n"u8.ToArray(),
        Done = "data: [DONE]\n\n"u8.ToArray();

    public static async Task Start(HttpContext c)
    {
        c.Response.StatusCode = 200;
        c.Response.ContentType = "text/event-stream; charset=utf-8";
        c.Response.Headers.CacheControl = "no-cache";
        c.Response.Headers["X-Accel-Buffering"] = "no";
        await c.Response.StartAsync(c.RequestAborted);
        await c.Response.Body.FlushAsync(c.RequestAborted);
    }

    public static async Task Data<T>(HttpContext c, T value, JsonTypeInfo<T> type)
    {
        var body = c.Response.Body;
        await body.WriteAsync(DataPrefix, c.RequestAborted);
        await JsonSerializer.SerializeAsync(body, value, type, c.RequestAborted);
        await body.WriteAsync(End, c.RequestAborted);
        await body.FlushAsync(c.RequestAborted);
    }

    public static async Task Comment(HttpContext c)
    {
        await c.Response.Body.WriteAsync(KeepAlive, c.RequestAborted);
        await c.Response.Body.FlushAsync(c.RequestAborted);
    }

    public static async Task Finish(HttpContext c)
    {
        await c.Response.Body.WriteAsync(Done, c.RequestAborted);
        await c.Response.Body.FlushAsync(c.RequestAborted);
    }
}

/// <summary>
/// One submitted request on its way through the HTTP side: the first event takes it out of the
/// queue count; latencies go to the metrics; disposing it (done, failed, or the client went away)
/// cancels what the engine still runs, so its KV blocks are freed at the engine's next step.
/// </summary>
sealed class Flight : IDisposable
{
    readonly EngineRequest _handle;
    readonly JevonsServer.QueueLease _lease;
    readonly ModelMetrics _metrics;
    readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    TimeSpan _last;
    bool _first = true;
    string _finish = "abort";
    int _disposed;

    public Flight(EngineRequest handle, JevonsServer.QueueLease lease, ModelMetrics metrics)
    {
        _handle = handle;
        _lease = lease;
        _metrics = metrics;
        metrics.Started();
    }

    public EngineRequest Handle => _handle;

    public void Saw(TokenEvent e)
    {
        var now = _clock.Elapsed;
        if (_first)
        {
            _first = false;
            _lease.Release();
            _metrics.FirstToken(now.TotalSeconds);
        }
        else _metrics.InterToken((now - _last).TotalSeconds);
        _last = now;
        if (e.Finish != FinishReason.None) _finish = EngineEvents.Reason(e.Finish);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _lease.Release();
        if (!_handle.Completed)
        {
            _handle.Cancel();
            _finish = "abort";
        }
        _metrics.Finished(_finish, _clock.Elapsed.TotalSeconds);
    }
}

/// <summary>One submitted request's events as the HTTP side reads them.</summary>
static class EngineEvents
{
    /// <summary>
    /// The events of the flight's request; <paramref name="idle"/> runs every
    /// <paramref name="keepAlive"/> while none comes (queued, or a long prefill).
    /// </summary>
    public static async IAsyncEnumerable<TokenEvent> Read(Flight flight, TimeSpan keepAlive, Func<Task>? idle,
        [EnumeratorCancellation] CancellationToken cancel)
    {
        var reader = flight.Handle.Events;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            var wait = reader.WaitToReadAsync(cancel).AsTask();
            if (idle is not null)
                while (await Task.WhenAny(wait, Task.Delay(keepAlive, cancel)) != wait)
                {
                    cancel.ThrowIfCancellationRequested();
                    await idle();
                }
            if (!await wait) break;
            while (reader.TryRead(out var e))
            {
                flight.Saw(e);
                yield return e;
            }
        }
    }

    public static string Reason(FinishReason f) => f switch
    {
        FinishReason.Length or FinishReason.ContextFull => "length",
        FinishReason.Cancelled => "abort",
        _ => "stop",
    };

    public static UsageInfo Usage(Usage u, int reasoningTokens, bool reasoning) =>
        new(u.PromptTokens, u.CompletionTokens, u.PromptTokens + u.CompletionTokens, u.CachedPromptTokens, u.PromptTokens - u.CachedPromptTokens,
            new PromptTokensDetails(u.CachedPromptTokens), reasoning ? new CompletionTokensDetails(reasoningTokens) : new CompletionTokensDetails(0));

    public static TokenLogprobOut Logprob(Tokenizer tokenizer, TokenEvent e)
    {
        var top = e.TopLogprobs is null ? [] : e.TopLogprobs.Select(t => new TopLogprobOut(Piece(tokenizer, t.Id), t.Logprob, Bytes(tokenizer, t.Id))).ToArray();
        return new TokenLogprobOut(Piece(tokenizer, e.Id), e.Logprob ?? 0, Bytes(tokenizer, e.Id), top);
    }

    public static string Piece(Tokenizer tokenizer, int id) => Encoding.UTF8.GetString(tokenizer.TokenBytes(id));

    static int[] Bytes(Tokenizer tokenizer, int id)
    {
        var b = tokenizer.TokenBytes(id);
        var a = new int[b.Length];
        for (int i = 0; i < b.Length; i++) a[i] = b[i];
        return a;
    }
}
