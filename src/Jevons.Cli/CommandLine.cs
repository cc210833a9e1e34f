using System.Globalization;

namespace Jevons.Cli;

/// <summary>One option of a command: its names, whether it takes a value, its help line.</summary>
public sealed record OptionSpec(string Name, string Help, string? Value = null, string? Alias = null, bool Repeatable = false)
{
    public bool TakesValue => Value is not null;
}

/// <summary>A subcommand: name, one-line summary, options, and the name of its positional argument.</summary>
public sealed record CommandSpec(string Name, string Summary, OptionSpec[] Options, string? Positional = null, string? Usage = null)
{
    public string HelpText()
    {
        var w = new StringWriter();
        w.WriteLine($"jevons {Name}: {Summary}");
        w.WriteLine();
        w.WriteLine("Usage: " + (Usage ?? $"jevons {Name} [options]{(Positional is null ? "" : $" [{Positional}]")}"));
        w.WriteLine();
        w.WriteLine("Options:");
        foreach (var o in Options.Append(new OptionSpec("--help", "show this help")))
        {
            var names = (o.Alias is null ? "" : o.Alias + ", ") + o.Name + (o.Value is null ? "" : " " + o.Value);
            w.WriteLine($"  {names,-30} {o.Help}");
        }
        return w.ToString();
    }
}

/// <summary>Parsed arguments of one command. Getters throw a one-line error naming the option.</summary>
public sealed class ParsedArgs
{
    readonly Dictionary<string, List<string>> _values = new();
    readonly HashSet<string> _flags = new();

    public required CommandSpec Command { get; init; }
    public List<string> Positionals { get; } = new();

    public static ParsedArgs Parse(CommandSpec spec, string[] args)
    {
        var parsed = new ParsedArgs { Command = spec };
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                parsed.Positionals.AddRange(args[(i + 1)..]);
                break;
            }
            if (a.Length > 1 && a[0] == '-' && !IsNumber(a))
            {
                string name = a, inline = null!;
                int eq = a.IndexOf('=');
                if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0)
                {
                    name = a[..eq];
                    inline = a[(eq + 1)..];
                }
                if (name is "--help" or "-h")
                {
                    parsed._flags.Add("--help");
                    continue;
                }
                var opt = spec.Options.FirstOrDefault(o => o.Name == name || o.Alias == name)
                    ?? throw new JevonsException($"jevons {spec.Name}: unknown option '{name}' (see jevons {spec.Name} --help)");
                if (opt.TakesValue)
                {
                    var value = inline ?? (i + 1 < args.Length ? args[++i]
                        : throw new JevonsException($"jevons {spec.Name}: option '{opt.Name}' needs a value {opt.Value}"));
                    if (!parsed._values.TryGetValue(opt.Name, out var list)) parsed._values[opt.Name] = list = new();
                    if (!opt.Repeatable) list.Clear();
                    list.Add(value);
                }
                else
                {
                    parsed._flags.Add(opt.Name);
                }
            }
            else
            {
                parsed.Positionals.Add(a);
            }
        }
        if (spec.Positional is null && parsed.Positionals.Count > 0 && !parsed.Has("--help"))
            throw new JevonsException($"jevons {spec.Name}: unexpected argument '{parsed.Positionals[0]}'");
        return parsed;
    }

    static bool IsNumber(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    public bool Has(string name) => _flags.Contains(name) || _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out var l) ? l[^1] : null;

    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var l) ? l : [];

    public string Require(string name) =>
        Get(name) ?? throw new JevonsException($"jevons {Command.Name}: option '{name}' is required (see jevons {Command.Name} --help)");

    /// <summary>
    /// The largest count any integer option accepts unless a command asks for less (16M tokens):
    /// sums such as prompt + n_predict + 1 then cannot overflow an int.
    /// </summary>
    public const int MaxCount = 1 << 24;

    public int GetInt(string name, int fallback, int min = -MaxCount, int max = MaxCount)
    {
        var s = Get(name);
        if (s is null) return fallback;
        min = Math.Max(min, -MaxCount);
        max = Math.Min(max, MaxCount);
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new JevonsException($"jevons {Command.Name}: option '{name}' must be an integer{Range(min, max)}, got '{Clip(s)}'");
        return v;
    }

    static string Range(int min, int max) =>
        max < MaxCount ? $" in [{min}, {max}]" : min > -MaxCount ? $" >= {min} (at most {MaxCount})" : $" in [{min}, {max}]";

    static string Clip(string s) => s.Length > 40 ? s[..40] + "..." : s;

    public float GetFloat(string name, float fallback)
    {
        var s = Get(name);
        if (s is null) return fallback;
        if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !float.IsFinite(v))
            throw new JevonsException($"jevons {Command.Name}: option '{name}' must be a number, got '{Clip(s)}'");
        return v;
    }

    public ulong? GetSeed(string name)
    {
        var s = Get(name);
        if (s is null) return null;
        if (!ulong.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new JevonsException($"jevons {Command.Name}: option '{name}' must be a non-negative integer, got '{Clip(s)}'");
        return v;
    }

    /// <summary>Parses "1,2,3" (spaces and brackets tolerated) into ids.</summary>
    public int[]? GetIds(string name)
    {
        var s = Get(name);
        if (s is null) return null;
        var parts = s.Trim().Trim('[', ']').Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new JevonsException($"jevons {Command.Name}: option '{name}': '{parts[i]}' is not a token id (want comma-separated non-negative integers)");
        if (ids.Length == 0)
            throw new JevonsException($"jevons {Command.Name}: option '{name}' holds no token ids");
        return ids;
    }

}
