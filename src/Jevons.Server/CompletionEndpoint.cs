using System.Text;
using System.Text.Json;
using Jevons.Inference;
using Microsoft.AspNetCore.Http;

namespace Jevons.Server;

/// <summary>POST /v1/completions: raw text (or token ids) in, text out; legacy logprobs.</summary>
static class CompletionEndpoint
{
    public static async Task Handle(JevonsServer s, HttpContext c)
    {
        var r = await s.ReadBody(c, ProtocolJson.Default.CompletionRequest);
        var served = s.Find(r.Model);
        using var lease = await served.Acquire(c.RequestAborted);
        var m = lease.Model;
        var tokenizer = m.Tokenizer;
        int[] ids = Prompt(r.Prompt, tokenizer);
        if (!string.IsNullOrEmpty(r.Suffix)) ApiException.BadRequest("suffix is not supported (no fill-in-the-middle)", "suffix");
        int n = RequestMapping.Choices(r.N);
        var sampling = RequestMapping.Sampling(r, tokenizer.VocabSize);
        if (r.Logprobs is int lp && (lp < 0 || lp > 20)) RequestMapping.Range("logprobs", lp, "between 0 and 20");
        // OpenAI's default for completions is 16 tokens.
        int maxTokens = RequestMapping.MaxTokens(r.MaxTokens ?? Math.Min(16, Math.Max(1, m.ContextLength - ids.Length)), "max_tokens",
            ids.Length, m.ContextLength, m.Engine.PoolRequestTokens);
        var request = new GenerationRequest
        {
            Prompt = ids,
            N = n,
            MaxTokens = maxTokens,
            Sampling = sampling,
            StopSequences = RequestMapping.Stop(r.Stop),
            IgnoreEos = r.IgnoreEos ?? false,
            TopLogprobs = r.Logprobs ?? -1,
        };
        var echo = r.Echo == true ? tokenizer.Decode(ids) : "";
        if (s.Options.LogPrompts) s.LogPrompt("prompt", tokenizer.Decode(ids));

        using var flight = s.Start(m, request);

        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string model = m.Id;
        var texts = Enumerable.Range(0, n).Select(_ => new StringBuilder(echo)).ToArray();
        var logs = Enumerable.Range(0, n).Select(_ => new Legacy()).ToArray();
        var finishes = new string?[n];
        Usage usage = default;
        bool stream = r.Stream == true;
        if (stream) await Sse.Start(c);
        var chunkType = ProtocolJson.Default.Completion;
        if (stream && echo.Length > 0)
            for (int i = 0; i < n; i++)
                await Sse.Data(c, new Completion(id, created, model, [new CompletionChoice(i, echo, null, null)]), chunkType);
        await foreach (var e in EngineEvents.Read(flight, s.Options.KeepAlive, stream ? () => Sse.Comment(c) : null, c.RequestAborted))
        {
            usage = e.Usage;
            var log = logs[e.Choice];
            if (request.TopLogprobs >= 0 && e.Finish != FinishReason.EndOfSequence) log.Add(tokenizer, e, texts[e.Choice].Length);
            texts[e.Choice].Append(e.Text);
            string? finish = e.Finish == FinishReason.None ? null : EngineEvents.Reason(e.Finish);
            finishes[e.Choice] = finish;
            if (!stream || (e.Text.Length == 0 && finish is null)) continue;
            await Sse.Data(c, new Completion(id, created, model, [new CompletionChoice(e.Choice, e.Text, request.TopLogprobs >= 0 ? log.Take() : null, finish)]), chunkType);
        }
        var usageInfo = EngineEvents.Usage(usage, 0, false);
        if (stream)
        {
            if (r.StreamOptions?.IncludeUsage == true) await Sse.Data(c, new Completion(id, created, model, []) { Usage = usageInfo }, chunkType);
            await Sse.Finish(c);
            return;
        }
        var choices = Enumerable.Range(0, n).Select(i =>
            new CompletionChoice(i, texts[i].ToString(), request.TopLogprobs >= 0 ? logs[i].All() : null, finishes[i] ?? "stop")).ToArray();
        await JevonsServer.Json(c, 200, new Completion(id, created, model, choices) { Usage = usageInfo }, chunkType);
    }

    /// <summary>prompt: a string, an array of token ids, or an array holding one of those.</summary>
    static int[] Prompt(JsonElement prompt, Tokenization.Tokenizer tokenizer)
    {
        if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() == 1 && prompt[0].ValueKind is JsonValueKind.String or JsonValueKind.Array)
            prompt = prompt[0];
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                var text = prompt.GetString()!;
                if (text.Length == 0) ApiException.BadRequest("prompt is empty", "prompt");
                return tokenizer.Encode(text, addSpecialTokens: true);
            case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                var ids = new List<int>();
                foreach (var e in prompt.EnumerateArray())
                {
                    if (!e.TryGetInt32(out int id) || (uint)id >= (uint)tokenizer.VocabSize)
                        ApiException.BadRequest($"prompt token {e.GetRawText()} is not a token id of this model (0 .. {tokenizer.VocabSize - 1})", "prompt");
                    ids.Add(id);
                }
                return ids.ToArray();
            case JsonValueKind.Array:
                ApiException.BadRequest("prompt must be a string or an array of token ids; several prompts in one request are not supported", "prompt");
                return [];
            case JsonValueKind.Undefined or JsonValueKind.Null:
                ApiException.BadRequest("prompt is required", "prompt");
                return [];
            default:
                ApiException.BadRequest("prompt must be a string or an array of token ids", "prompt");
                return [];
        }
    }

    /// <summary>Legacy logprobs of one choice: tokens, token_logprobs, top_logprobs, text_offset.</summary>
    sealed class Legacy
    {
        readonly List<string> _tokens = [];
        readonly List<float> _logprobs = [];
        readonly List<Dictionary<string, float>> _top = [];
        readonly List<int> _offsets = [];
        int _taken;

        public void Add(Tokenization.Tokenizer tokenizer, TokenEvent e, int offset)
        {
            _tokens.Add(EngineEvents.Piece(tokenizer, e.Id));
            _logprobs.Add(e.Logprob ?? 0);
            var top = new Dictionary<string, float>();
            foreach (var t in e.TopLogprobs ?? []) top.TryAdd(EngineEvents.Piece(tokenizer, t.Id), t.Logprob);
            _top.Add(top);
            _offsets.Add(offset);
        }

        public LegacyLogprobs All() => new(_tokens, _logprobs, _top, _offsets);

        public LegacyLogprobs Take()
        {
            var part = new LegacyLogprobs(_tokens[_taken..], _logprobs[_taken..], _top[_taken..], _offsets[_taken..]);
            _taken = _tokens.Count;
            return part;
        }
    }
}
