using Jevons.Server;

namespace Jevons.Cli.Commands;

/// <summary>
/// `jevons serve`: the OpenAI- and DeepSeek-compatible HTTP server over one model, or several
/// (--model more than once, --models-dir): each chosen by the request's model field, loaded on first
/// use and, with --keep-alive, unloaded when idle.
/// </summary>
sealed class ServeCommand : ICommand
{
    public CommandSpec Spec { get; } = new("serve", "serve one or more models over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /metrics)",
    [
        Common.Model with { Help = "model: a .gguf file or a Hugging Face directory; repeat to serve several (default: the embedded models/tiny-r1)", Repeatable = true },
        new("--models-dir", "serve every model in this folder: each *.gguf file and each subfolder with a config.json", "DIR"),
        new("--keep-alive", "unload a model after this long without requests (30s, 5m, 1h; 0 = at once); it loads again on the next (default: stay loaded)", "DURATION"),
        new("--host", "address to bind (default 127.0.0.1; 0.0.0.0 for every interface)", "ADDR"),
        new("--port", "port to bind (default 8080; 0 = any free port)", "N"),
        new("--api-key", "require 'Authorization: Bearer KEY' (default: env JEVONS_API_KEY; none = open)", "KEY"),
        new("--max-queue", "most requests waiting for their first token; more get 429 (default 256)", "N"),
        new("--max-sequences", "contexts the default KV budget of each model holds (default 4; --kv-budget overrides); the context defaults to min(model, 4096)", "N"),
        new("--max-body", "largest request body in bytes (default 8388608); larger gets 413", "BYTES"),
        new("--cors", "allow these browser origins, comma-separated ('*' for any)", "ORIGINS"),
        new("--log-prompts", "log prompts and outputs to stderr (never by default)"),
        Common.Threads,
        Common.Context,
        .. Common.Engine,
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        var paths = ModelPaths(a);
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
            ModelKeepAlive = a.Get("--keep-alive") is string keep ? Duration(keep) : null,
            Log = c.Verbose || a.Has("--log-prompts") ? c.Error : null,
        };
        var models = paths.Select(path => new ModelSpec(Id(path), () => Load(a, c, path, sequences))).ToArray();
        foreach (var group in models.GroupBy(m => m.Id).Where(g => g.Count() > 1))
            throw new JevonsException($"jevons serve: two models are named '{group.Key}' (the id is the file or folder name); rename one");
        Task.Run(async () =>
        {
            await using var server = JevonsServer.Create(models, options);
            string what;
            if (models.Length == 1)
            {
                // One model loads now, so a bad file fails at start.
                var (ctx, notice) = await server.LoadAsync(models[0].Id, c.Cancel);
                if (notice is not null) c.Error.WriteLine(notice);
                what = $"'{models[0].Id}' (context {ctx} tokens)";
            }
            else what = $"{models.Length} models ({string.Join(", ", models.Select(m => m.Id))}; each loads on first use)";
            await server.StartAsync(c.Cancel);
            c.Error.WriteLine($"serving {what} on {server.Address}" + (options.ApiKey is null ? "" : " (API key required)") +
                (options.ModelKeepAlive is TimeSpan k ? $"; idle models unload after {k.TotalSeconds:0.###} s" : "") + "; Ctrl-C or SIGTERM stops");
            // Ctrl-C, SIGTERM or the caller's token: stop admitting, let in-flight requests finish, then cancel them.
            await server.WaitForShutdownAsync(c.Cancel);
        }).GetAwaiter().GetResult();
        c.Error.WriteLine("server stopped");
        return 0;
    }

    static LoadedEngine Load(ParsedArgs a, CliContext c, string path, int sequences)
    {
        var loaded = Common.Load(a, c, path: path);
        try
        {
            loaded.RequireTokenizer();
            var model = loaded.Model;
            int ctx = Common.ContextFor(a, model, Math.Min(model.Description.ContextLength > 0 ? model.Description.ContextLength : 4096, 4096));
            return new LoadedEngine(Common.CreateEngine(a, c, loaded, ctx, sequences), loaded);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>A model's id: its file or folder name.</summary>
    static string Id(string path) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));

    /// <summary>Every --model, then the models of --models-dir; neither: the embedded default.</summary>
    static List<string> ModelPaths(ParsedArgs a)
    {
        var paths = new List<string>();
        foreach (var p in a.GetAll("--model"))
        {
            if (!File.Exists(p) && !Directory.Exists(p)) throw new JevonsException($"jevons serve: --model '{p}' does not exist");
            paths.Add(p);
        }
        if (a.Get("--models-dir") is string dir)
        {
            if (!Directory.Exists(dir)) throw new JevonsException($"jevons serve: --models-dir '{dir}' is not a folder");
            var found = Directory.EnumerateFiles(dir, "*.gguf")
                .Concat(Directory.EnumerateDirectories(dir).Where(d => File.Exists(Path.Combine(d, "config.json"))))
                .OrderBy(Path.GetFileName, StringComparer.Ordinal).ToList();
            if (found.Count == 0) throw new JevonsException($"jevons serve: --models-dir '{dir}' holds no model (no *.gguf file, no folder with a config.json)");
            paths.AddRange(found);
        }
        if (paths.Count == 0) paths.Add(Common.ModelPath(a));
        return paths;
    }

    /// <summary>30s, 5m, 1h, 250ms, or plain seconds.</summary>
    internal static TimeSpan Duration(string text)
    {
        var t = text.Trim();
        (string number, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.EndsWith('s') ? (t[..^1], 1) : t.EndsWith('m') ? (t[..^1], 60) : t.EndsWith('h') ? (t[..^1], 3600) : (t, 1);
        if (!double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value)
            || value < 0 || double.IsInfinity(value) || value * scale > TimeSpan.MaxValue.TotalSeconds / 2)
            throw new JevonsException($"jevons serve: --keep-alive '{text}': expected a duration such as 30s, 5m, 1h or 0");
        return TimeSpan.FromSeconds(value * scale);
    }
}
