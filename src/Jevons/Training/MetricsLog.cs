using System.Text.Json.Nodes;

namespace Jevons.Training;

/// <summary>
/// metrics.jsonl in a training output directory: one JSON object per line ({"kind": "step" | "eval", "step": n, ...}),
/// appended as training goes (one open per line: a few microseconds against a step of a second), read back by the plots.
/// </summary>
public sealed class MetricsLog
{
    public MetricsLog(string directory, bool append)
    {
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.Combine(directory, FileName);
        if (!append) File.WriteAllText(Path, "");
    }

    public const string FileName = "metrics.jsonl";

    public string Path { get; }

    public void Write(JsonObject line) => File.AppendAllText(Path, line.ToJsonString() + "\n");

    /// <summary>Every line of a metrics file (blank and malformed lines skipped: a run killed mid-line leaves one).</summary>
    public static List<JsonObject> Read(string path)
    {
        var lines = new List<JsonObject>();
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { if (JsonNode.Parse(line) is JsonObject o) lines.Add(o); }
            catch (System.Text.Json.JsonException) { }
        }
        return lines;
    }

    /// <summary>Max/mean tokens per expert for each MoE layer, by layer.</summary>
    public static JsonObject LoadBalance(IReadOnlyDictionary<int, long[]> load)
    {
        var o = new JsonObject();
        foreach (var (layer, counts) in load.OrderBy(kv => kv.Key))
            o[layer.ToString(System.Globalization.CultureInfo.InvariantCulture)] = MaxOverMean(counts);
        return o;
    }

    /// <summary>The busiest expert's tokens over the mean (1 = perfect balance; experts / top-k = all on one).</summary>
    public static double MaxOverMean(long[] counts) => counts.Max() / Math.Max(1e-9, counts.Average());
}
