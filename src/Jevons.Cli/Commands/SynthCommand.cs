using System.Diagnostics;
using Jevons.Formats;
using Jevons.Models.Synthesis;
using Jevons.Numerics;

namespace Jevons.Cli.Commands;

/// <summary>`jevons synth`: write a random-weight model with real shapes, as GGUF or a Hugging Face directory.</summary>
sealed class SynthCommand : ICommand
{
    public CommandSpec Spec { get; } = new("synth", "write a random-weight model with real shapes (GGUF, or a Hugging Face directory)",
    [
        new("--preset", "model shape (see --list)", "NAME"),
        new("--type", "weight type: GGUF F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K (default Q8_0); HF F32 BF16 F8_E4M3|fp8 (default BF16)", "T"),
        new("--output", "output: a .gguf file, or the directory of the HF layout", "PATH", "-o"),
        new("--format", "gguf or hf (default gguf)", "FORMAT"),
        new("--seed", "weight seed: same seed, same model (default 0)", "S"),
        new("--list", "list the presets"),
        Common.Threads,
    ], Usage: "jevons synth --preset NAME [--type T] -o PATH [--format gguf|hf] [--seed S] [--threads N]\n       jevons synth --list");

    public int Run(ParsedArgs a, CliContext c)
    {
        if (a.Has("--list"))
        {
            foreach (var p in SynthPresets.All) c.Out.WriteLine($"{p.Name,-22} {p.Summary}");
            return 0;
        }
        var format = a.Get("--format")?.ToLowerInvariant() switch
        {
            null or "gguf" => SynthFormat.Gguf,
            "hf" or "huggingface" or "safetensors" => SynthFormat.HuggingFace,
            var f => throw new JevonsException($"jevons synth: unknown --format '{f}' (gguf or hf)"),
        };
        var preset = SynthPresets.Require(a.Require("--preset"));
        var type = ParseType(a.Get("--type"), format);
        var output = a.Require("--output");
        var synthesis = new Synthesis(preset.Plan(), a.GetSeed("--seed") ?? 0);
        if (synthesis.CheckType(format, type) is { } problem) throw new JevonsException("jevons synth: " + problem);
        EnsureWritable(format == SynthFormat.Gguf ? Path.GetDirectoryName(Path.GetFullPath(output))! : Path.GetFullPath(output));
        Write(synthesis, format, type, output, a.GetInt("--threads", 0, 0, 1024), c);
        return 0;
    }

    /// <summary>Writes the model with progress on stderr and a closing summary line; shared with `jevons demo`.</summary>
    public static void Write(Synthesis synthesis, SynthFormat format, DType type, string output, int threads, CliContext c)
    {
        var plan = synthesis.Plan;
        c.Error.WriteLine($"synth: {plan.Preset} ({plan.Architecture}, {Format.Count(plan.Parameters)} parameters) as {(format == SynthFormat.Gguf ? "GGUF" : "Hugging Face")} {type.Name()}, seed {synthesis.Seed} -> {output}");
        var watch = Stopwatch.StartNew();
        if (Terminal.ErrorIsInteractive(c))
        {
            // A Spectre.Console bar over the tensor bytes written.
            Terminal.WithProgress($"synth {plan.Preset}", bar =>
            {
                var options = new SynthWriteOptions { Threads = threads, Progress = Terminal.Bytes(bar) };
                if (format == SynthFormat.Gguf) synthesis.WriteGguf(output, type, options);
                else synthesis.WriteHuggingFace(output, type, options);
                return 0;
            });
        }
        else
        {
            var progress = new ProgressLine(c.Error, watch);
            var options = new SynthWriteOptions { Threads = threads, Progress = progress };
            if (format == SynthFormat.Gguf) synthesis.WriteGguf(output, type, options);
            else synthesis.WriteHuggingFace(output, type, options);
        }
        long bytes = format == SynthFormat.Gguf ? new FileInfo(output).Length
            : Directory.GetFiles(output).Sum(f => new FileInfo(f).Length);
        c.Error.WriteLine($"synth: wrote {Format.Bytes(bytes)} in {watch.Elapsed.TotalSeconds:F1} s ({bytes / Math.Max(watch.Elapsed.TotalSeconds, 1e-9) / (1 << 20):F0} MiB/s)");
    }

    static DType ParseType(string? name, SynthFormat format)
    {
        if (name is null) return format == SynthFormat.Gguf ? DType.Q8_0 : DType.BF16;
        var upper = name.ToUpperInvariant();
        if (upper is "FP8" or "F8" or "FP8_E4M3" or "E4M3") return DType.F8_E4M3;
        var types = format == SynthFormat.Gguf ? Synthesis.GgufTypes : Synthesis.HfTypes;
        foreach (var t in Synthesis.GgufTypes.Concat(Synthesis.HfTypes))
            if (t.Name() == upper) return t;
        throw new JevonsException($"jevons synth: unknown --type '{name}' (for {(format == SynthFormat.Gguf ? "gguf" : "hf")}: {string.Join(", ", types.Select(t => t.Name()))})");
    }

    /// <summary>Creates the directory and proves a file can be made there, so a bad path fails before any work.</summary>
    public static void EnsureWritable(string directory)
    {
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, $".jevons-write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new JevonsException($"output directory is not writable ({e.GetType().Name})", directory);
        }
    }

    /// <summary>Write progress as plain lines on stderr (not a terminal, or NO_COLOR): a line every 10%.</summary>
    sealed class ProgressLine(TextWriter error, Stopwatch watch) : IProgress<WriteProgress>
    {
        int _lastPercent = -1;

        public void Report(WriteProgress p)
        {
            int percent = (int)(p.Fraction * 100);
            if (percent / 10 == _lastPercent / 10 && _lastPercent >= 0) return;
            _lastPercent = percent;
            error.WriteLine($"synth: {percent,3}% {Format.Bytes(p.BytesWritten)} of {Format.Bytes(p.TotalBytes)}, {watch.Elapsed.TotalSeconds:F1} s");
        }
    }
}
