namespace Jevons.Tokenization.Templates;

/// <summary>
/// A Jinja2 template, parsed once and rendered many times, with the environment Hugging Face
/// transformers uses for chat templates: sandboxed and immutable (no list.append), trim_blocks,
/// lstrip_blocks, loop controls, tojson = json.dumps(ensure_ascii=False), raise_exception and
/// strftime_now. Values are Python-like (see <see cref="FromJson"/>). Parse and render errors are
/// a <see cref="JevonsException"/> naming the template source and line.
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Node> _nodes;

    JinjaTemplate(string source, List<Node> nodes, TemplateLimits? limits, Func<DateTimeOffset>? clock)
    {
        Source = source;
        _nodes = nodes;
        Limits = limits ?? new TemplateLimits();
        Clock = clock ?? (() => DateTimeOffset.Now);
    }

    /// <summary>Where the template came from ("tokenizer_config.json chat_template"), for messages.</summary>
    public string Source { get; }

    public TemplateLimits Limits { get; }

    /// <summary>The clock strftime_now reads (local time by default; tests inject a fixed one).</summary>
    public Func<DateTimeOffset> Clock { get; }

    public static JinjaTemplate Parse(string text, string source = "template", TemplateLimits? limits = null, Func<DateTimeOffset>? clock = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            return new JinjaTemplate(source, TemplateParser.Parse(text), limits, clock);
        }
        catch (TemplateError e)
        {
            throw new JevonsException($"template syntax error at line {e.Line}: {e.Message}", source);
        }
    }

    /// <summary>
    /// Renders with these variables. Values: null, bool, int/long, float/double, string, lists
    /// (IEnumerable), dictionaries with string keys, <see cref="System.Text.Json.JsonElement"/>.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var converted = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in variables) converted[k] = FromJson(v);
        var interpreter = new TemplateInterpreter(Limits, Clock);
        try
        {
            return interpreter.Render(_nodes, converted);
        }
        catch (TemplateError e)
        {
            throw new JevonsException($"template error at line {(e.Line > 0 ? e.Line : interpreter.Line)}: {e.Message}", Source);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new JevonsException($"template error at line {interpreter.Line}: nested too deeply", Source);
        }
        catch (Exception e) when (e is InvalidOperationException or InvalidCastException or ArgumentException or FormatException
            or IndexOutOfRangeException or OverflowException or KeyNotFoundException)
        {
            // A value the interpreter did not expect here: still one clear error, never a crash.
            throw new JevonsException($"template error at line {interpreter.Line}: unsupported operation ({e.Message})", Source);
        }
    }

    /// <summary>A .NET value in the template's value model (JSON elements, CLR scalars, lists, string-keyed dictionaries).</summary>
    public static object? FromJson(object? value) => value switch
    {
        null => null,
        System.Text.Json.JsonElement e => Py.FromJson(e),
        string or bool or long or double => value,
        int i => (long)i,
        float f => (double)f,
        Dictionary<object, object?> => value,
        System.Collections.IDictionary d => ToDict(d),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(FromJson).ToList(),
        _ => throw new ArgumentException($"unsupported template value type {value.GetType().Name}"),
    };

    static Dictionary<object, object?> ToDict(System.Collections.IDictionary d)
    {
        var r = Py.NewDict();
        foreach (System.Collections.DictionaryEntry e in d) r[Py.Str(e.Key)] = FromJson(e.Value);
        return r;
    }
}
