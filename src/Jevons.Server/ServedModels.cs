using System.Diagnostics;
using Jevons.Inference;
using Jevons.Tokenization;

namespace Jevons.Server;

/// <summary>A loaded model as the server holds it: the engine, and what owns its weights (disposed on unload).</summary>
public sealed record LoadedEngine(InferenceEngine Engine, IDisposable? Owner = null);

/// <summary>A model `jevons serve` lists under <paramref name="Id"/>, loaded by <paramref name="Load"/> on first use.</summary>
public sealed record ModelSpec(string Id, Func<LoadedEngine> Load);

/// <summary>What one load of a model gives the endpoints: engine, tokenizer, chat template, the JSON-constraint vocabulary.</summary>
sealed class ModelInstance(string id, InferenceEngine engine, ModelMetrics metrics)
{
    JsonVocabulary? _vocabulary;

    public string Id { get; } = id;
    public InferenceEngine Engine { get; } = engine;
    public Tokenizer Tokenizer { get; } = engine.Tokenizer ?? throw new ArgumentException($"the model '{id}' has no tokenizer", nameof(engine));
    public ChatPrompt Chat { get; } = ChatPrompt.For(engine.Tokenizer!);
    public ModelMetrics Metrics { get; } = metrics;
    public int ContextLength => Engine.Runner.ContextLength;

    /// <summary>response_format json_object / json_schema: one <see cref="JsonConstraint"/> per choice.</summary>
    public LogitsProcessor Constrain(int n, SchemaNode schema, bool promptOpensReasoning, int maxTokens)
    {
        var vocab = _vocabulary ??= JsonVocabulary.For(Tokenizer);
        var constraints = Enumerable.Range(0, n).Select(_ => new JsonConstraint(vocab, schema, Tokenizer.EosIds, promptOpensReasoning, maxTokens)).ToArray();
        return (choice, generated, logits) => constraints[choice].Apply(generated, logits);
    }
}

/// <summary>
/// One served model, Ollama-style: loaded on the first request that names it (requests wait for the
/// load), unloaded by <see cref="UnloadIfIdle"/> once no request has used it for the keep-alive time.
/// A lease per request keeps it loaded; loading, unloading and taking a lease are serialised by one
/// gate, so a lease never sees a model being unloaded. A model given as an engine is never unloaded.
/// </summary>
sealed class ServedModel : IDisposable
{
    readonly Func<LoadedEngine>? _load;
    readonly SemaphoreSlim _gate = new(1, 1);
    readonly TextWriter? _log;
    ModelInstance? _instance;
    IDisposable? _owner;
    int _inFlight;
    long _lastUsed = Stopwatch.GetTimestamp();

    public ServedModel(string id, Func<LoadedEngine> load, ModelMetrics metrics, TextWriter? log)
    {
        Id = id;
        _load = load;
        Metrics = metrics;
        _log = log;
    }

    public ServedModel(string id, InferenceEngine engine, ModelMetrics metrics)
    {
        Id = id;
        Metrics = metrics;
        _instance = new ModelInstance(id, engine, metrics);
        metrics.Attach(engine);
        ContextLength = engine.Runner.ContextLength;
    }

    public string Id { get; }
    public ModelMetrics Metrics { get; }
    public bool Loaded => Volatile.Read(ref _instance) is not null;
    /// <summary>The context of the last load (null before the first).</summary>
    public int? ContextLength { get; private set; }

    /// <summary>The loaded model for one request (loading it first if need be); dispose to end the use.</summary>
    public async Task<ModelLease> Acquire(CancellationToken cancel)
    {
        await _gate.WaitAsync(cancel);
        try
        {
            if (_instance is null)
            {
                var watch = Stopwatch.StartNew();
                LoadedEngine loaded;
                try
                {
                    loaded = await Task.Run(_load!, CancellationToken.None);
                }
                catch (Exception e) when (e is JevonsException or IOException or InvalidDataException or ArgumentException)
                {
                    throw new ApiException(500, $"the model '{Id}' failed to load: {e.Message}", "server_error", "model", "model_load_failed");
                }
                _owner = loaded.Owner;
                _instance = new ModelInstance(Id, loaded.Engine, Metrics);
                Metrics.Attach(loaded.Engine);
                ContextLength = loaded.Engine.Runner.ContextLength;
                _log?.WriteLine($"loaded model '{Id}' in {watch.Elapsed.TotalSeconds:F1} s");
            }
            _inFlight++;
            return new ModelLease(this, _instance);
        }
        finally
        {
            _gate.Release();
        }
    }

    void Release()
    {
        Volatile.Write(ref _lastUsed, Stopwatch.GetTimestamp());
        Interlocked.Decrement(ref _inFlight);
    }

    /// <summary>Unloads the model when no request holds it and the last one ended at least <paramref name="keepAlive"/> ago.</summary>
    public void UnloadIfIdle(TimeSpan keepAlive)
    {
        if (_load is null || !Loaded || Volatile.Read(ref _inFlight) > 0
            || Stopwatch.GetElapsedTime(Volatile.Read(ref _lastUsed)) < keepAlive) return;
        // Busy (a load or a lease being taken): not idle; the next tick looks again.
        if (!_gate.Wait(0)) return;
        try
        {
            if (_instance is null || _inFlight > 0 || Stopwatch.GetElapsedTime(_lastUsed) < keepAlive) return;
            Unload();
            _log?.WriteLine($"unloaded model '{Id}' after {keepAlive.TotalSeconds:F1} s idle (--keep-alive)");
        }
        finally
        {
            _gate.Release();
        }
    }

    void Unload()
    {
        var instance = _instance!;
        Metrics.Detach();
        _instance = null;
        if (_load is null) return; // a given engine belongs to its caller
        instance.Engine.Dispose();
        _owner?.Dispose();
        _owner = null;
    }

    public void Dispose()
    {
        if (_instance is not null && _load is not null) Unload();
    }

    /// <summary>One request's hold on a loaded model.</summary>
    public sealed class ModelLease(ServedModel model, ModelInstance instance) : IDisposable
    {
        int _done;
        public ModelInstance Model { get; } = instance;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) model.Release();
        }
    }
}
