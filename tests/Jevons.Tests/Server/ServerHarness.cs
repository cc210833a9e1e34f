using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Models.Synthesis;
using Jevons.Numerics;
using Jevons.Server;
using Jevons.Tokenization;

namespace Jevons.Tests.Server;

/// <summary>
/// What the server tests share: a tiny random-weight model (synthesized once, with an R1-style chat
/// template that pre-fills "&lt;think&gt;\n"), a scripted runner for exact text, and servers on
/// 127.0.0.1 at a free port.
/// </summary>
static class ServerHarness
{
    /// <summary>R1's shape: BOS, system text, &lt;｜User｜&gt;/&lt;｜Assistant｜&gt; turns, tool results, then "&lt;｜Assistant｜&gt;&lt;think&gt;\n".</summary>
    public const string Template =
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}" +
        "{% elif m['role'] == 'user' %}<｜User｜>{{ m['content'] }}" +
        "{% elif m['role'] == 'assistant' %}<｜Assistant｜>{% if m['content'] %}{{ m['content'] }}{% endif %}" +
        "{% if m['tool_calls'] %}{% for tc in m['tool_calls'] %}<tool_call>{{ tc['function']['name'] }} {{ tc['function']['arguments'] }}</tool_call>{% endfor %}{% endif %}<｜end▁of▁sentence｜>" +
        "{% elif m['role'] == 'tool' %}<tool_response>{{ m['tool_call_id'] }}={{ m['content'] }}</tool_response>{% endif %}{% endfor %}" +
        "{% if tools %}<tools>{% for t in tools %}{{ t['function']['name'] }};{% endfor %}</tools>{% endif %}" +
        "{% if add_generation_prompt %}<｜Assistant｜>{% if think %}<think>\n{% endif %}{% endif %}";

    /// <summary>The same template with the think block opened by the prompt (R1 since 2025-01).</summary>
    public static readonly string ThinkTemplate = "{% set think = true %}" + Template;

    static readonly Lazy<string> ModelDir = new(() =>
    {
        var root = Path.Combine(Path.GetTempPath(), "jevons-server-tests-" + Environment.ProcessId);
        var dir = Path.Combine(root, "tiny");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        if (!File.Exists(Path.Combine(dir, "config.json")))
        {
            Synthesis.Create("tiny", seed: 11).WriteHuggingFace(dir, DType.F32);
            var config = Path.Combine(dir, "tokenizer_config.json");
            var json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
            json["chat_template"] = Template;
            File.WriteAllText(config, json.ToJsonString());
            var think = Path.Combine(dir, "..", "think");
            Directory.CreateDirectory(think);
            File.Copy(Path.Combine(dir, "tokenizer.json"), Path.Combine(think, "tokenizer.json"), overwrite: true);
            json["chat_template"] = ThinkTemplate;
            File.WriteAllText(Path.Combine(think, "tokenizer_config.json"), json.ToJsonString());
        }
        return dir;
    });

    static readonly Lazy<Tokenizer> Think = new(() => Tokenizer.Load(Path.Combine(ModelDir.Value, "..", "think")));

    /// <summary>The tiny model's vocabulary with <see cref="ThinkTemplate"/>.</summary>
    public static Tokenizer ThinkTokenizer => Think.Value;

    /// <summary>The synthesized model's directory (its name, "tiny", is the served model id).</summary>
    public static string ModelPath => ModelDir.Value;

    static readonly Lazy<LoadedModel> Tiny = new(() => LoadedModel.Load(ModelDir.Value, new ModelOptions { Threads = 2 }));

    public static Tokenizer Tokenizer => Tiny.Value.RequireTokenizer();

    public static InferenceEngine RealEngine(int context = 512, int blocks = 256, int maxBatchTokens = 256) =>
        new(new ModelRunner(Tiny.Value.Model, KvBudget.FromBlocks(blocks), KvType.F32, ModelRunner.DefaultBlockSize, context), Tokenizer,
            new EngineOptions { Scheduler = new SchedulerOptions { MaxBatchTokens = maxBatchTokens } });

    public static InferenceEngine ScriptedEngine(ScriptedRunner runner, Tokenizer? tokenizer = null) => new(runner, tokenizer ?? ThinkTokenizer);

    public static ScriptedRunner Scripted(string script, int blocks = 256) => new(ThinkTokenizer, script, blocks);

    public static async Task<TestServer> Start(InferenceEngine engine, ServerOptions? options = null)
    {
        options ??= new ServerOptions();
        var server = JevonsServer.Create(engine, options with { Port = 0, ModelId = options.ModelId == "model" ? "tiny" : options.ModelId });
        await server.StartAsync();
        return new TestServer(server, engine);
    }
}

sealed class TestServer(JevonsServer server, InferenceEngine engine) : IAsyncDisposable
{
    public JevonsServer Server { get; } = server;
    public InferenceEngine Engine { get; } = engine;
    public Uri Address { get; } = new(server.Address);
    public HttpClient Http { get; } = new() { BaseAddress = new Uri(server.Address), Timeout = TimeSpan.FromSeconds(60) };

    public OpenAI.OpenAIClient OpenAI(string key = "unused") =>
        new(new System.ClientModel.ApiKeyCredential(key), new global::OpenAI.OpenAIClientOptions { Endpoint = new Uri(Address, "/v1") });

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> Post(string path, string json, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonElement body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return ((int)response.StatusCode, body, response);
    }

    /// <summary>POSTs a streaming request and returns the raw SSE body.</summary>
    public async Task<string> Stream(string path, string json)
    {
        using var response = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        Xunit.Assert.Equal(200, (int)response.StatusCode);
        Xunit.Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The JSON payloads of an SSE body, checking the framing: only "data: " lines and ": " comments, blank-line separated, ending in [DONE].</summary>
    public static List<JsonElement> Frames(string sse)
    {
        Xunit.Assert.EndsWith("data: [DONE]\n\n", sse);
        var frames = new List<JsonElement>();
        foreach (var block in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            if (block.StartsWith(": ", StringComparison.Ordinal)) continue;
            Xunit.Assert.StartsWith("data: ", block);
            Xunit.Assert.DoesNotContain('\n', block);
            var payload = block["data: ".Length..];
            if (payload == "[DONE]") continue;
            frames.Add(JsonDocument.Parse(payload).RootElement.Clone());
        }
        return frames;
    }

    public async Task<string> MetricsText() => await Http.GetStringAsync("/metrics");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.StopAsync();
        await Server.DisposeAsync();
        Engine.Dispose();
    }
}

/// <summary>
/// A model stand-in that writes a fixed answer: after the last <see cref="Anchor"/> token of its
/// history it continues <see cref="Script"/> (one-hot logits, margin 30), then EOS. When the
/// history after the anchor holds a &lt;/think&gt; that came early (a forced one), it goes on with
/// the script's part after its own &lt;/think&gt; — a model that stops thinking and answers. KV
/// bookkeeping is real: tokens are read back through the block table. <see cref="Gate"/> can hold steps.
/// </summary>
sealed class ScriptedRunner : IModelRunner
{
    readonly int[] _slots;
    readonly int _eos, _close;

    public ScriptedRunner(Tokenizer tokenizer, string script, int blocks = 256, int context = 1024, int anchor = -1)
    {
        VocabSize = tokenizer.VocabSize;
        Blocks = blocks;
        ContextLength = context;
        _slots = new int[blocks * BlockSize];
        Anchor = anchor >= 0 ? anchor : tokenizer.TokenId("<｜Assistant｜>")!.Value;
        _eos = tokenizer.EosIds[0];
        _close = tokenizer.TokenId("</think>")!.Value;
        Script = tokenizer.Encode(script, addSpecialTokens: false);
    }

    public int Anchor { get; }
    public int[] Script { get; set; }
    public int VocabSize { get; }
    public int ContextLength { get; }
    public int BlockSize => 16;
    public int Blocks { get; }
    public string Fingerprint => "scripted";
    public long BytesPerBlock => BlockSize * 4;
    /// <summary>Steps wait on this (set = run).</summary>
    public ManualResetEventSlim Gate { get; } = new(true);
    public TimeSpan StepDelay { get; set; }
    /// <summary>Whole prompts (read back through the block table) at the end of each prefill.</summary>
    public List<int[]> Prompts { get; } = [];

    /// <summary>Steps begun (counted before the gate).</summary>
    public int Entered => Volatile.Read(ref _entered);
    int _entered;

    public void Forward(ForwardBatch batch, Span<float> logits)
    {
        Interlocked.Increment(ref _entered);
        Gate.Wait();
        if (StepDelay > TimeSpan.Zero) Thread.Sleep(StepDelay);
        int row = 0;
        foreach (var e in batch.Entries)
        {
            var table = e.BlockTable.Span;
            for (int i = 0; i < e.Tokens.Length; i++)
            {
                int p = e.StartPosition + i;
                _slots[table[p / BlockSize] * BlockSize + p % BlockSize] = e.Tokens.Span[i];
            }
            int last = e.StartPosition + e.Tokens.Length - 1;
            if (e.Logits == LogitsWanted.None) continue;
            var history = new int[last + 1];
            for (int q = 0; q <= last; q++) history[q] = _slots[table[q / BlockSize] * BlockSize + q % BlockSize];
            if (e.Tokens.Length > 1) lock (Prompts) Prompts.Add(history);
            var row_ = logits.Slice(row++ * VocabSize, VocabSize);
            row_.Clear();
            row_[Next(history)] = 30;
        }
    }

    int Next(int[] history)
    {
        int a = Array.LastIndexOf(history, Anchor);
        int k = history.Length - a - 1;
        int close = Array.IndexOf(Script, _close);
        int seen = Array.IndexOf(history, _close, a + 1);
        if (close >= 0 && seen >= 0 && seen - a - 1 < close)
        {
            int j = close + 1 + (history.Length - seen - 1);
            return j < Script.Length ? Script[j] : _eos;
        }
        return k < Script.Length ? Script[k] : _eos;
    }

    public void CopyBlock(int source, int destination) => Array.Copy(_slots, source * BlockSize, _slots, destination * BlockSize, BlockSize);
    public void ExportBlock(int block, Span<byte> destination) => throw new NotSupportedException();
    public void ImportBlock(int block, ReadOnlySpan<byte> source) => throw new NotSupportedException();
}
