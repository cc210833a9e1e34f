using System.Text.Json;
using Jevons.Models;
using Jevons.Numerics;
using Jevons.Tokenization;

namespace Jevons.Cli.Commands;

/// <summary>`jevons inspect`: architecture, parameters, dtypes, weight and KV-cache bytes, context.</summary>
sealed class InspectCommand : ICommand
{
    public CommandSpec Spec { get; } = new("inspect",
        "show a model's architecture, parameters (total and active per token), dtypes, weight bytes, KV-cache bytes per token, context length",
    [
        Common.Model,
        new("--json", "print one JSON object instead of text"),
        new("--check", "scan every weight for NaN / Inf values; list the tensors that hold any and exit 1 if one does"),
    ]);

    public int Run(ParsedArgs a, CliContext c)
    {
        if (a.Has("--check")) return Check(a.Require("--model"), c);
        using var loaded = Common.Load(a, c, tokenizer: true);
        var d = loaded.Model.Description;
        var tok = loaded.Tokenizer;
        if (a.Has("--json"))
        {
            var obj = new Dictionary<string, object?>
            {
                ["path"] = loaded.Source.Path,
                ["format"] = loaded.Source.Format.ToString(),
                ["architecture"] = d.Architecture,
                ["name"] = d.Name,
                ["layers"] = d.Layers,
                ["hidden_size"] = d.HiddenSize,
                ["vocab_size"] = d.VocabSize,
                ["context_length"] = d.ContextLength,
                ["total_parameters"] = d.TotalParameters,
                ["active_parameters"] = d.ActiveParameters,
                ["weight_bytes"] = d.WeightBytes,
                ["weight_bytes_by_type"] = d.WeightBytesByType.ToDictionary(kv => kv.Key.Name(), kv => kv.Value),
                ["kv_bytes_per_token"] = d.KvBytesPerToken,
                ["kv_bytes_per_token_by_type"] = Enum.GetValues<KvType>().ToDictionary(t => t.ToString().ToLowerInvariant(), t => loaded.Model.KvBytesPerToken(t)),
                ["mha_kv_bytes_per_token"] = d.EquivalentMhaKvBytesPerToken,
                ["details"] = d.Details.ToDictionary(kv => kv.Key, kv => kv.Value),
                ["tokenizer"] = tok is null ? null : new { vocab_size = tok.VocabSize, bos = tok.BosId, eos = tok.EosIds },
            };
            c.Out.WriteLine(JsonSerializer.Serialize(obj, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        var w = c.Out;
        if (Terminal.OutIsInteractive(c))
        {
            Terminal.WriteFacts(Facts(loaded, d, tok));
            return 0;
        }
        w.WriteLine($"path:                {loaded.Source.Path}");
        w.WriteLine($"format:              {loaded.Source.Format}");
        w.WriteLine($"architecture:        {d.Architecture}{(d.Name.Length > 0 ? $" ({d.Name})" : "")}");
        w.WriteLine($"layers:              {d.Layers}");
        w.WriteLine($"hidden size:         {d.HiddenSize}");
        w.WriteLine($"vocabulary:          {d.VocabSize}");
        w.WriteLine($"context length:      {d.ContextLength}");
        w.WriteLine($"parameters:          {d.TotalParameters:N0} total ({Format.Count(d.TotalParameters)})");
        w.WriteLine($"active per token:    {d.ActiveParameters:N0} ({100.0 * d.ActiveParameters / Math.Max(1, d.TotalParameters):F1}%)");
        w.WriteLine($"weight bytes:        {d.WeightBytes:N0} ({Format.Bytes(d.WeightBytes)})");
        foreach (var (type, bytes) in d.WeightBytesByType.OrderByDescending(kv => kv.Value))
            w.WriteLine($"  {type.Name(),-8}           {bytes:N0} ({Format.Bytes(bytes)})");
        w.WriteLine($"KV cache per token:  {d.KvBytesPerToken:N0} bytes{Halves(loaded.Model)}" + (d.EquivalentMhaKvBytesPerToken > 0
            ? $" (a plain multi-head cache would take {d.EquivalentMhaKvBytesPerToken:N0}: {(double)d.EquivalentMhaKvBytesPerToken / Math.Max(1, d.KvBytesPerToken):F1}x more)"
            : ""));
        foreach (var (key, value) in d.Details)
            w.WriteLine($"{key + ":",-20} {value}");
        if (tok is not null)
            w.WriteLine($"tokenizer:           {tok.VocabSize} tokens, BOS {tok.BosId?.ToString() ?? "none"}, EOS [{string.Join(", ", tok.EosIds)}]");
        else
            w.WriteLine("tokenizer:           none in these files");
        return 0;
    }

    /// <summary>`inspect --check`: per-tensor NaN / Inf counts, decoded chunk by chunk (bounded memory).</summary>
    static int Check(string path, CliContext c)
    {
        using var source = Jevons.Models.ModelLoader.Open(path);
        var buffer = new float[Jevons.Formats.NonFiniteScan.ChunkElements];
        int tensors = 0, bad = 0;
        long values = 0;
        foreach (var name in source.Weights.TensorNames)
        {
            c.Cancel.ThrowIfCancellationRequested();
            var t = source.Weights.Get(name);
            var n = Jevons.Formats.NonFiniteScan.Count(t, buffer);
            tensors++;
            values += t.ElementCount;
            if (!n.Any) continue;
            bad++;
            c.Out.WriteLine($"{Jevons.JevonsException.Printable(name)}: {n.NaN} NaN, {n.Infinity} Inf ({t.Type.Name()} {t.ShapeText})");
        }
        c.Out.WriteLine(bad == 0
            ? $"checked {tensors} tensors ({values:N0} values): all finite"
            : $"checked {tensors} tensors ({values:N0} values): {bad} hold non-finite values");
        return bad == 0 ? 0 : 1;
    }

    /// <summary>What the plain listing says, as rows for a terminal table.</summary>
    /// <summary>The per-token KV bytes at --kv-type f16 / bf16, beside the f32 figure.</summary>
    static string Halves(Model model) => $" at f32, {model.KvBytesPerToken(KvType.F16):N0} at f16 or bf16 (--kv-type)";

    static IEnumerable<(string, string)> Facts(LoadedModel loaded, ModelDescription d, Tokenizer? tok)
    {
        yield return ("path", loaded.Source.Path);
        yield return ("format", loaded.Source.Format.ToString());
        yield return ("architecture", $"{d.Architecture}{(d.Name.Length > 0 ? $" ({d.Name})" : "")}");
        yield return ("layers", d.Layers.ToString());
        yield return ("hidden size", d.HiddenSize.ToString());
        yield return ("vocabulary", d.VocabSize.ToString());
        yield return ("context length", d.ContextLength.ToString());
        yield return ("parameters", $"{d.TotalParameters:N0} total ({Format.Count(d.TotalParameters)})");
        yield return ("active per token", $"{d.ActiveParameters:N0} ({100.0 * d.ActiveParameters / Math.Max(1, d.TotalParameters):F1}%)");
        yield return ("weight bytes", $"{d.WeightBytes:N0} ({Format.Bytes(d.WeightBytes)})");
        foreach (var (type, bytes) in d.WeightBytesByType.OrderByDescending(kv => kv.Value))
            yield return ("  " + type.Name(), $"{bytes:N0} ({Format.Bytes(bytes)})");
        yield return ("KV cache per token", $"{d.KvBytesPerToken:N0} bytes{Halves(loaded.Model)}" + (d.EquivalentMhaKvBytesPerToken > 0
            ? $" (a plain multi-head cache would take {d.EquivalentMhaKvBytesPerToken:N0}: {(double)d.EquivalentMhaKvBytesPerToken / Math.Max(1, d.KvBytesPerToken):F1}x more)"
            : ""));
        foreach (var (key, value) in d.Details) yield return (key, value);
        yield return ("tokenizer", tok is not null ? $"{tok.VocabSize} tokens, BOS {tok.BosId?.ToString() ?? "none"}, EOS [{string.Join(", ", tok.EosIds)}]" : "none in these files");
    }
}
