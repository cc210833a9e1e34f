using System.Text.Json.Nodes;
using Jevons.Training;

namespace Jevons.Cli.Commands;

/// <summary>
/// PNG line charts with ScottPlot (the CLI's only plotting dependency; the engine has none): training curves
/// from a run's metrics.jsonl, and the Jevons curve of `jevons eval`.
/// </summary>
static class Plots
{
    /// <summary>One line; <paramref name="Labels"/> (optional) annotate its points.</summary>
    public sealed record Series(string Name, double[] X, double[] Y, string[]? Labels = null);

    public static void Lines(string path, string title, string xLabel, string yLabel, IEnumerable<Series> series, bool markers = false)
    {
        var plot = new ScottPlot.Plot();
        int n = 0;
        foreach (var s in series)
        {
            if (s.X.Length == 0) continue;
            var line = plot.Add.Scatter(s.X, s.Y);
            line.LegendText = s.Name;
            line.MarkerSize = markers || s.X.Length == 1 ? 7 : 0;
            if (s.Labels is { } labels)
                for (int i = 0; i < labels.Length && i < s.X.Length; i++)
                {
                    var text = plot.Add.Text(labels[i], s.X[i], s.Y[i]);
                    text.LabelFontSize = 11;
                    text.LabelOffsetY = -6;
                }
            n++;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (n > 1) plot.ShowLegend();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 900, 520);
    }

    /// <summary>
    /// The training curves of a run directory's metrics.jsonl into DIR/plots/: SFT (loss.png, expert-load.png, throughput.png,
    /// accuracy.png) or GRPO (reward.png, length.png, kl.png, expert-load.png, throughput.png, accuracy.png). Returns the files written.
    /// </summary>
    public static List<string> Training(string runDirectory)
    {
        var lines = MetricsLog.Read(Path.Combine(runDirectory, MetricsLog.FileName));
        var steps = lines.Where(l => (string?)l["kind"] == "step").ToList();
        var evals = lines.Where(l => (string?)l["kind"] == "eval").ToList();
        var dir = Path.Combine(runDirectory, "plots");
        var written = new List<string>();
        if (steps.Count == 0) return written;
        double[] X(List<JsonObject> rows) => rows.Select(r => (double)r["step"]!).ToArray();
        Series S(string name, string key) =>
            new(name, X(steps.Where(r => r[key] is not null).ToList()), steps.Where(r => r[key] is not null).Select(r => (double)r[key]!).ToArray());
        void Write(string file, string title, string y, params Series[] series)
        {
            var path = Path.Combine(dir, file);
            Lines(path, title, "step", y, series);
            written.Add(path);
        }
        bool grpo = steps[0]["reward"] is not null;
        if (grpo)
        {
            Write("reward.png", "GRPO: reward and accuracy of the rollouts", "per completion", S("reward", "reward"), S("accuracy", "accuracy"), S("format", "format"));
            Write("length.png", "GRPO: mean completion length", "tokens", S("length", "length"));
            Write("kl.png", "GRPO: KL to the reference (k3)", "nats per token", S("kl", "kl"));
            Write("throughput.png", "GRPO: throughput", "tokens/s", S("generation", "gen_tok_s"), S("training", "train_tok_s"));
        }
        else
        {
            Write("loss.png", "SFT: loss", "cross-entropy", S("loss", "loss"), S("MTP loss", "mtp_loss"));
            Write("throughput.png", "SFT: training throughput", "tokens/s", S("tokens/s", "tok_s"));
        }
        var layers = steps.Last()["load"] is JsonObject last ? last.Select(kv => kv.Key).ToList() : [];
        if (layers.Count > 0)
            Write("expert-load.png", "Expert load: busiest expert / mean, per MoE layer", "max/mean",
                layers.Select(l => new Series($"layer {l}", X(steps.Where(r => r["load"]?[l] is not null).ToList()),
                    steps.Where(r => r["load"]?[l] is not null).Select(r => (double)r["load"]![l]!).ToArray())).ToArray());
        var tasks = evals.SelectMany(e => e.Select(kv => kv.Key)).Where(k => k is not ("kind" or "step")).Distinct().ToList();
        if (tasks.Count > 0)
        {
            var path = Path.Combine(dir, "accuracy.png");
            Lines(path, "Test accuracy (greedy, held-out split)", "step", "accuracy",
                tasks.Select(t => new Series(t, X(evals.Where(e => e[t] is not null).ToList()),
                    evals.Where(e => e[t] is not null).Select(e => (double)e[t]!).ToArray())), markers: true);
            written.Add(path);
        }
        return written;
    }
}
