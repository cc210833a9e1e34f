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
    /// <summary>The command's help, laid out by System.CommandLine's help builder.</summary>
    public string HelpText()
    {
        var syntax = CommandSyntax.Build([this]);
        var w = new StringWriter();
        syntax.WriteHelp(this, w);
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

    /// <summary>Parses the arguments after the command name with System.CommandLine (see <see cref="CommandSyntax"/>).</summary>
    public static ParsedArgs Parse(CommandSpec spec, string[] args)
    {
        var syntax = CommandSyntax.Build([spec]);
        return syntax.Bind(syntax.Parse([spec.Name, .. args]), spec);
    }

    internal void AddValue(OptionSpec option, string value)
    {
        if (!_values.TryGetValue(option.Name, out var list)) _values[option.Name] = list = new();
        if (!option.Repeatable) list.Clear();
        list.Add(value);
    }

    internal void AddFlag(string name) => _flags.Add(name);

    internal static bool IsOptionLike(string a) => a.Length > 1 && a[0] == '-' && !IsNumber(a);

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
