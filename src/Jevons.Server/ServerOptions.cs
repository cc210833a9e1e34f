namespace Jevons.Server;

/// <summary>How `jevons serve` listens and what it admits.</summary>
public sealed record ServerOptions
{
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 = any free port (tests); the bound address is <see cref="JevonsServer.Address"/>.</summary>
    public int Port { get; init; } = 8080;
    /// <summary>When set, every /v1, /tokenize and /detokenize request needs "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }
    /// <summary>Most requests waiting for their first token; one more gets 429 with Retry-After.</summary>
    public int MaxQueue { get; init; } = 256;
    /// <summary>Origins allowed by CORS ("*" for any); empty = no CORS headers.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];
    /// <summary>Log prompts and outputs (never by default).</summary>
    public bool LogPrompts { get; init; }
    /// <summary>Largest request body in bytes; larger gets 413.</summary>
    public long MaxBodyBytes { get; init; } = 8L << 20;
    /// <summary>How often a stream that waits for its next token sends an SSE comment.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>How long shutdown lets in-flight requests finish before they are cancelled.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>The id of the model given as an engine, in /v1/models and responses (the file or directory name).</summary>
    public string ModelId { get; init; } = "model";
    /// <summary>--keep-alive: unload a model after this long without requests (it loads again on the next); null = stay loaded.</summary>
    public TimeSpan? ModelKeepAlive { get; init; }
    /// <summary>Where request lines and warnings go; null = nowhere.</summary>
    public TextWriter? Log { get; init; }
}
