using Jevons.Server;

namespace Jevons.Cli.Commands;

/// <summary>`jevons serve`: the OpenAI- and DeepSeek-compatible HTTP server over one model.</summary>
sealed class ServeCommand : ICommand
{
    public CommandSpec Spec { get; } = new("serve", "serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /metrics)",
    [
        Common.Model,
        new("--host", "address to bind (default 127.0.0.1; 0.0.0.0 for every interface)", "ADDR"),
        new("--port", "port to bind (default 8080; 0 = any free port)", "N"),
        new("--api-key", "require 'Authorization: Bearer KEY' (default: env JEVONS_API_KEY; none = open)", "KEY"),
        new("--max-queue", "most requests waiting for their first token; more get 429 (default 256)", "N"),
        new("--max-sequences", "contexts the default KV budget holds (default 4; --kv-budget overrides); the context defaults to min(model, 4096)", "N"),
        new("--max-body", "largest request body in bytes (default 8388608); larger gets 413", "BYTES"),
        new("--cors", "allow these browser origins, comma-separated ('*' for any)", "ORIGINS"),
        new("--log-prompts", "log prompts and outputs to stderr (never by default)"),
        Common.Threads,
        Common.Context,
        .. Common.Engine,
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        var path = Common.ModelPath(a);
        int sequences = a.GetInt("--max-sequences", 4, 1, 4096);
        var options = new ServerOptions
        {
            Host = a.Get("--host") ?? "127.0.0.1",
            Port = a.GetInt("--port", 8080, 0, 65535),
            ApiKey = a.Get("--api-key") ?? Environment.GetEnvironmentVariable("JEVONS_API_KEY"),
            MaxQueue = a.GetInt("--max-queue", 256, 0),
            MaxBodyBytes = a.GetInt("--max-body", 8 << 20, 1024),
            CorsOrigins = (a.Get("--cors") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            LogPrompts = a.Has("--log-prompts"),
            ModelId = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path))),
            Log = c.Verbose || a.Has("--log-prompts") ? c.Error : null,
        };
        using var loaded = Common.Load(a, c);
        loaded.RequireTokenizer();
        var model = loaded.Model;
        int ctx = Common.ContextFor(a, model, Math.Min(model.Description.ContextLength > 0 ? model.Description.ContextLength : 4096, 4096));
        using var engine = Common.CreateEngine(a, c, loaded, ctx, sequences);
        Task.Run(async () =>
        {
            await using var server = JevonsServer.Create(engine, options);
            if (server.Chat.Notice is not null) c.Error.WriteLine(server.Chat.Notice);
            await server.StartAsync(c.Cancel);
            c.Error.WriteLine($"serving '{options.ModelId}' (context {ctx} tokens) on {server.Address}" +
                (options.ApiKey is null ? "" : " (API key required)") + "; Ctrl-C or SIGTERM stops");
            // Ctrl-C, SIGTERM or the caller's token: stop admitting, let in-flight requests finish, then cancel them.
            await server.WaitForShutdownAsync(c.Cancel);
        }).GetAwaiter().GetResult();
        c.Error.WriteLine("server stopped");
        return 0;
    }
}
