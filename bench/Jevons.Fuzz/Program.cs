using System.Diagnostics;
using System.Globalization;
using Jevons.Fuzz;

// dotnet run --project bench/Jevons.Fuzz -c Release -- --format gguf|safetensors|json|all|cli --cases N --seed S [--first I] [--out DIR] [--golden DIR] [--minutes M]
string format = "all", goldenDir = Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/golden");
long cases = 1000, first = 0;
int seed = 1;
string? outDir = null;
double? minutes = null;
bool verbose = false;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--format": format = Next(); break;
        case "--cases": cases = long.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--first": first = long.Parse(Next(), CultureInfo.InvariantCulture); break; // rerun case I alone: --first I --cases 1
        case "--out": outDir = Next(); break;
        case "--golden": goldenDir = Next(); break;
        case "--no-golden": goldenDir = ""; break;
        case "--messages": verbose = true; break;
        case "--minutes": minutes = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine("usage: Jevons.Fuzz --format gguf|safetensors|json|all|cli --cases N --seed S [--first I] [--out DIR] [--golden DIR | --no-golden] [--minutes M per format] [--messages]");
            return 2;
    }
}
if (format == "cli")
{
    // Command lines: in-process through JevonsCli.Run against tiny synthesized models.
    var dir = Path.Combine(outDir ?? Path.GetTempPath(), $"jevons-fuzz-cli-{Environment.ProcessId}");
    var cli = new CommandLineCampaign(dir);
    Environment.CurrentDirectory = dir; // relative outputs of mutated lines land in the scratch directory
    var findings = new Dictionary<string, int>();
    var cliWatch = Stopwatch.StartNew();
    var t = cli.Run(cases, seed, workers: 2, findings);
    Console.WriteLine($"cli: {t.Cases} cases: ok {t.Ok}, clean error {t.Clean}, usage {t.Usage}, cancelled after 1 s {t.Cancelled}, internal {t.Internal}, crash {t.Crash}, hang {t.Hang} in {cliWatch.Elapsed.TotalSeconds:F0} s");
    foreach (var (k, v) in findings.OrderByDescending(kv => kv.Value)) Console.WriteLine($"  {v,6} x {k}");
    try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    return t.Internal + t.Crash + t.Hang == 0 ? 0 : 1;
}
var formats = format == "all"
    ? Enum.GetValues<FuzzFormat>()
    : [Enum.Parse<FuzzFormat>(format, ignoreCase: true)];
string? golden = goldenDir.Length > 0 && Directory.Exists(goldenDir) ? Path.GetFullPath(goldenDir) : null;
var campaign = new Campaign(Seeds.Gguf(golden), Seeds.HuggingFace(golden)) { OutDir = outDir, Log = Console.WriteLine };
Console.WriteLine($"seeds: {(golden is null ? "synthesized only" : "synthesized + goldens from " + golden)}");
int bad = 0;
foreach (var f in formats)
{
    var watch = Stopwatch.StartNew();
    var stats = campaign.Run(f, cases, seed, minutes is double m ? TimeSpan.FromMinutes(m) : null, first);
    Console.WriteLine($"{f}: {stats} in {watch.Elapsed.TotalSeconds:F0} s ({stats.Cases / Math.Max(0.001, watch.Elapsed.TotalSeconds):F0}/s)");
    foreach (var (k, v) in stats.Failures.OrderByDescending(kv => kv.Value)) Console.WriteLine($"  {v,6} x {k}");
    if (verbose)
        foreach (var (k, v) in stats.Messages.OrderByDescending(kv => kv.Value).Take(40)) Console.WriteLine($"  {v,6} clean: {k}");
    if (stats.Bad > 0) bad++;
}
return bad == 0 ? 0 : 1;
