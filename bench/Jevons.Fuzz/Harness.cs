using System.Diagnostics;
using Jevons.Formats;
using Jevons.Inference;
using Jevons.Models;
using Jevons.Tokenization;

namespace Jevons.Fuzz;

public enum Outcome { Ok, Clean, Internal, Hang, OverMemory }

public enum FuzzFormat { Gguf, Safetensors, Json }

/// <summary>What one case did: its outcome, and for failures the exception text.</summary>
public readonly record struct CaseResult(Outcome Outcome, string Detail, long AllocatedBytes)
{
    /// <summary>Same class of result (for minimization): outcome and exception type.</summary>
    public bool SameAs(CaseResult other) => Outcome == other.Outcome && Kind == other.Kind;
    public string Kind => Detail.Split(':', 2)[0];
}

/// <summary>
/// Runs one input through what the CLI runs (load config, build the model, load the tokenizer,
/// encode / decode / chat-format a few strings, one forward step, sampling, the NaN scan), on a
/// worker thread with a deadline and an allocation cap, and classifies the result.
/// </summary>
public sealed class Harness
{
    /// <summary>A case longer than this is a hang (regex matches time out after 1 s each).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Managed bytes one case may allocate (inputs are under 64 KiB... a few MB).</summary>
    public long AllocationCap { get; init; } = 256L << 20;
    /// <summary>Inputs above this size are not run (mutations only shrink or grow files a little).</summary>
    public long MaxFileBytes { get; init; } = 16L << 20;

    static readonly string[] Samples = ["Hello world", " 12345 tokens, ok?", "naïve café 日本語 🙂", "<｜User｜>hi<｜Assistant｜>", "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"];

    /// <summary>The CLI's path through the engine for the model at <paramref name="path"/>.</summary>
    public static void Pipeline(string path)
    {
        using var loaded = LoadedModel.Load(path, new ModelOptions { Threads = 1 }, loadTokenizer: true);
        var model = loaded.Model;
        int[] prompt = [0, Math.Min(1, model.VocabSize - 1)];
        if (loaded.Tokenizer is { } tok)
        {
            foreach (var s in Samples)
            {
                var ids = tok.Encode(s, addSpecialTokens: true);
                tok.Decode(ids);
                tok.Decode(ids, skipSpecialTokens: true);
                var detok = tok.CreateDetokenizer();
                foreach (var id in ids) detok.Push(id);
                detok.Flush();
                if (ids.Length > 0 && s.Length > 0) prompt = ids.Take(3).ToArray();
            }
            ChatFormat.For(tok).Render([new ChatMessage("user", "hi")], addGenerationPrompt: true);
        }
        foreach (var name in loaded.Source.Weights.TensorNames)
            NonFiniteScan.Count(loaded.Source.Weights.Get(name));
        var state = model.CreateState(8);
        var logits = new float[model.VocabSize];
        model.Forward(state, prompt, logits);
        Sampler.ArgMax(logits);
        new Sampler(new SamplerOptions { Temperature = 0.8f, Seed = 1 }).Sample(logits, prompt);
    }

    public CaseResult Run(string path)
    {
        long size = Directory.Exists(path) ? Directory.GetFiles(path).Sum(f => new FileInfo(f).Length) : new FileInfo(path).Length;
        if (size > MaxFileBytes) return new CaseResult(Outcome.Ok, "skipped: over the file size cap", 0);
        Exception? error = null;
        long allocated = 0;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                Pipeline(path);
            }
            catch (Exception e)
            {
                error = e;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, 16 << 20) { IsBackground = true, Name = "jevons-fuzz-case" };
        thread.Start();
        if (!thread.Join(Timeout)) return new CaseResult(Outcome.Hang, $"Hang: no result after {Timeout.TotalSeconds:0} s", 0);
        if (error is OutOfMemoryException or InsufficientExecutionStackException)
            return new CaseResult(Outcome.OverMemory, Describe(error), allocated);
        if (allocated > AllocationCap)
            return new CaseResult(Outcome.OverMemory, $"OverMemory: allocated {allocated >> 20} MiB (cap {AllocationCap >> 20} MiB)" + (error is null ? "" : "; then " + Describe(error)), allocated);
        return error switch
        {
            null => new CaseResult(Outcome.Ok, "", allocated),
            JevonsException => new CaseResult(Outcome.Clean, Describe(error), allocated),
            _ => new CaseResult(Outcome.Internal, Describe(error), allocated),
        };
    }

    static string Describe(Exception e) => e is JevonsException
        ? "JevonsException: " + e.Message
        : $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} @ {FirstFrame(e)}";

    static string FirstFrame(Exception e)
    {
        var frame = new StackTrace(e, fNeedFileInfo: true).GetFrames().FirstOrDefault(f => f.GetMethod()?.DeclaringType?.Namespace?.StartsWith("Jevons", StringComparison.Ordinal) == true);
        return frame is null ? "?" : $"{frame.GetMethod()!.DeclaringType!.Name}.{frame.GetMethod()!.Name}:{frame.GetFileLineNumber()}";
    }
}

/// <summary>Counts of outcomes for one format.</summary>
public sealed class FuzzStats
{
    public long Cases;
    public readonly long[] ByOutcome = new long[5];
    public readonly Dictionary<string, int> Failures = new(); // kind @ frame -> count
    /// <summary>Clean errors by message shape (paths, numbers and quoted names stripped): what the readers say.</summary>
    public readonly Dictionary<string, int> Messages = new();
    public long this[Outcome o] => ByOutcome[(int)o];
    public long Bad => this[Outcome.Internal] + this[Outcome.Hang] + this[Outcome.OverMemory];

    public override string ToString() =>
        $"{Cases} cases: ok {this[Outcome.Ok]}, clean error {this[Outcome.Clean]}, internal {this[Outcome.Internal]}, hang {this[Outcome.Hang]}, over-memory {this[Outcome.OverMemory]}";
}

/// <summary>
/// A fuzz campaign over one format: each case mutates a seed (a GGUF file; a safetensors file or
/// a JSON file of a Hugging Face directory), writes it to a scratch directory, runs the
/// <see cref="Harness"/>, and keeps failing inputs, minimized, under <see cref="OutDir"/>.
/// </summary>
public sealed class Campaign
{
    readonly IReadOnlyList<Seed> _gguf, _hf;
    readonly Dictionary<Seed, GgufMutator> _ggufMutators = new();

    public Campaign(IReadOnlyList<Seed> gguf, IReadOnlyList<Seed> hf)
    {
        _gguf = gguf;
        _hf = hf;
        foreach (var s in gguf) _ggufMutators[s] = new GgufMutator(s.Files[Seed.GgufFileName]);
    }

    public Harness Harness { get; init; } = new();
    public string? OutDir { get; init; }
    public Action<string>? Log { get; init; }

    /// <summary>One mutated case: the seed, which file was changed, and its new bytes.</summary>
    public readonly record struct Case(Seed Seed, string File, byte[] Bytes);

    public Case Make(FuzzFormat format, Random r)
    {
        switch (format)
        {
            case FuzzFormat.Gguf:
            {
                var seed = _gguf[r.Next(_gguf.Count)];
                return new Case(seed, Seed.GgufFileName, _ggufMutators[seed].Mutate(r));
            }
            case FuzzFormat.Safetensors:
            {
                var seed = _hf[r.Next(_hf.Count)];
                var files = seed.Files.Keys.Where(k => k.EndsWith(".safetensors", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
                var file = files[r.Next(files.Length)];
                return new Case(seed, file, SafetensorsMutator.Mutate(seed.Files[file], r));
            }
            default:
            {
                var seed = _hf[r.Next(_hf.Count)];
                var files = seed.Files.Keys.Where(k => k.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
                // config.json and tokenizer.json carry most of what readers interpret.
                string file = r.Next(3) switch
                {
                    0 when files.Contains("config.json") => "config.json",
                    1 when files.Contains("tokenizer.json") => "tokenizer.json",
                    _ => files[r.Next(files.Length)],
                };
                return new Case(seed, file, JsonMutator.Mutate(seed.Files[file], r));
            }
        }
    }

    /// <summary>Writes the case into a fresh directory and returns the path the CLI would be given.</summary>
    public static string Materialize(Case c, string dir)
    {
        Directory.CreateDirectory(dir);
        if (c.Seed.Kind == SeedKind.Gguf)
        {
            var path = Path.Combine(dir, Seed.GgufFileName);
            File.WriteAllBytes(path, c.Bytes);
            return path;
        }
        foreach (var (name, bytes) in c.Seed.Files)
            File.WriteAllBytes(Path.Combine(dir, name), name == c.File ? c.Bytes : bytes);
        return dir;
    }

    public CaseResult RunCase(Case c, string scratch, long id)
    {
        var dir = Path.Combine(scratch, "case" + id);
        var path = Materialize(c, dir);
        var result = Harness.Run(path);
        if (result.Outcome != Outcome.Hang) TryDelete(dir); // a hung case may still hold its files mapped
        return result;
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>One RNG per case, mixed deterministically (not HashCode, which is salted per process): case i of seed S is reproducible on its own.</summary>
    public static Random CaseRandom(int seed, FuzzFormat format, long i)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)format + 1) * 0xBF58476D1CE4E5B9UL ^ (ulong)i * 0x94D049BB133111EBUL;
        z = (z ^ (z >> 31)) * 0xD6E8FEB86659FD93UL;
        return new Random((int)(z ^ (z >> 32)));
    }

    /// <summary>Runs <paramref name="cases"/> cases of <paramref name="format"/> from RNG seed <paramref name="seed"/>.</summary>
    public FuzzStats Run(FuzzFormat format, long cases, int seed, TimeSpan? budget = null, long first = 0)
    {
        var stats = new FuzzStats();
        var scratch = Directory.CreateTempSubdirectory($"jevons-fuzz-{format.ToString().ToLowerInvariant()}-").FullName;
        var watch = Stopwatch.StartNew();
        try
        {
            for (long i = first; i < first + cases; i++)
            {
                if (budget is { } b && watch.Elapsed > b) break;
                var r = CaseRandom(seed, format, i);
                var c = Make(format, r);
                var result = RunCase(c, scratch, i);
                stats.Cases++;
                stats.ByOutcome[(int)result.Outcome]++;
                if (result.Outcome == Outcome.Clean)
                {
                    string shape = Shape(result.Detail, scratch);
                    stats.Messages[shape] = stats.Messages.GetValueOrDefault(shape) + 1;
                }
                if (result.Outcome is Outcome.Internal or Outcome.Hang or Outcome.OverMemory)
                {
                    string key = result.Detail.Length > 160 ? result.Detail[..160] : result.Detail;
                    bool isNew = !stats.Failures.ContainsKey(key);
                    stats.Failures[key] = stats.Failures.GetValueOrDefault(key) + 1;
                    if (isNew)
                    {
                        Log?.Invoke($"[{format} case {i} seed {c.Seed.Name} file {c.File}] {result.Detail}");
                        if (OutDir is not null) Save(c, result, format, i, scratch);
                    }
                }
            }
        }
        finally
        {
            TryDelete(scratch);
        }
        return stats;
    }

    static string Shape(string message, string scratch)
    {
        var s = message.Replace(scratch, "", StringComparison.Ordinal);
        s = System.Text.RegularExpressions.Regex.Replace(s, @"'[^']*'", "'_'");
        s = System.Text.RegularExpressions.Regex.Replace(s, @"-?\d+(\.\d+)?", "N");
        return s.Length > 110 ? s[..110] : s;
    }

    /// <summary>Minimizes the failing file against its seed and writes it with a note of what happened.</summary>
    void Save(Case c, CaseResult result, FuzzFormat format, long id, string scratch)
    {
        long n = 0;
        var minimal = Minimizer.Minimize(c.Seed.Files[c.File], c.Bytes, bytes =>
            result.Outcome == Outcome.Hang ? false : Harness.Run(Materialize(c with { Bytes = bytes }, Path.Combine(scratch, $"min{id}-{n++}"))).SameAs(result));
        var dir = Path.Combine(OutDir!, $"{format.ToString().ToLowerInvariant()}-{id}");
        Materialize(c with { Bytes = minimal }, dir);
        File.WriteAllText(Path.Combine(dir, "FAILURE.txt"), $"seed {c.Seed.Name}, mutated file {c.File}\n{result.Detail}\n{Change(c.Seed.Files[c.File], minimal)}\n");
    }

    /// <summary>The one changed region between seed and mutant, for turning a failure into a regression test.</summary>
    public static string Change(byte[] seed, byte[] mutant)
    {
        int p = 0, s = 0;
        while (p < seed.Length && p < mutant.Length && seed[p] == mutant[p]) p++;
        while (s < seed.Length - p && s < mutant.Length - p && seed[^(s + 1)] == mutant[^(s + 1)]) s++;
        static string Show(ReadOnlySpan<byte> b) => b.Length > 200 ? Convert.ToHexString(b[..200]) + "..." : Convert.ToHexString(b);
        return $"bytes [{p}, {seed.Length - s}) of the seed ({seed.Length} bytes): {Show(seed.AsSpan(p, seed.Length - s - p))} -> {Show(mutant.AsSpan(p, mutant.Length - s - p))}";
    }
}

/// <summary>
/// Shrinks a failing input toward its seed while the failure stays the same: reverts runs of
/// changed bytes to the seed's (equal lengths), else truncates the tail. A bounded number of tries.
/// </summary>
public static class Minimizer
{
    public static byte[] Minimize(byte[] seed, byte[] failing, Func<byte[], bool> stillFails, int maxTries = 120)
    {
        int tries = 0;
        var current = failing;
        if (seed.Length == current.Length)
        {
            var diff = Enumerable.Range(0, current.Length).Where(i => seed[i] != current[i]).ToList();
            for (int chunk = Math.Max(1, diff.Count / 2); chunk >= 1 && tries < maxTries; chunk /= 2)
            {
                for (int start = 0; start < diff.Count && tries < maxTries; start += chunk)
                {
                    var candidate = (byte[])current.Clone();
                    var part = diff.Skip(start).Take(chunk).ToList();
                    foreach (var i in part) candidate[i] = seed[i];
                    tries++;
                    if (stillFails(candidate))
                    {
                        current = candidate;
                        diff = diff.Except(part).ToList();
                        start -= chunk;
                    }
                }
                if (chunk == 1) break;
            }
            return current;
        }
        // Different lengths: the shortest prefix that still fails.
        int lo = 0, hi = current.Length;
        while (lo < hi && tries < maxTries)
        {
            int mid = (lo + hi) / 2;
            tries++;
            if (stillFails(current[..mid])) hi = mid;
            else lo = mid + 1;
        }
        return current[..hi];
    }
}
