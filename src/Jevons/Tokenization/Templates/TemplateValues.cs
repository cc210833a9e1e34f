using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Jevons.Tokenization.Templates;

/// <summary>
/// Jinja2's default Undefined: renders as "", is false, iterates as empty, has length 0; getting an
/// attribute or item of it, calling it or doing arithmetic with it is an error naming it.
/// </summary>
sealed class Undefined(string description)
{
    public string Description { get; } = description;
    public string Message => Description;
    public override string ToString() => "";
}

/// <summary>The object namespace() returns: attributes settable with {% set ns.x = ... %} from any scope.</summary>
sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A function value: globals, bound methods, macros, loop(), caller().</summary>
sealed class Callable(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>Python's == and hash for dict keys: 1 == 1.0 == True, strings by value.</summary>
sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();
    public new bool Equals(object? x, object? y) => Py.Eq(x, y);
    public int GetHashCode(object o) => o switch
    {
        bool b => b ? 1 : 0,
        long l => l.GetHashCode(),
        double d => d == Math.Floor(d) && Math.Abs(d) < 9e18 ? ((long)d).GetHashCode() : d.GetHashCode(),
        string s => s.GetHashCode(StringComparison.Ordinal),
        _ => o.GetHashCode(),
    };
}

/// <summary>
/// Python value semantics over the template's value model: null = None, bool, long (int), double
/// (float), string, List&lt;object?&gt; (list), object?[] (tuple), Dictionary&lt;object, object?&gt;
/// (dict, insertion-ordered), <see cref="Undefined"/>, <see cref="Namespace"/>, <see cref="Callable"/>.
/// </summary>
static class Py
{
    public static Dictionary<object, object?> NewDict() => new(PyKeyComparer.Instance);

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        Dictionary<object, object?> => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        Callable => "function",
        LoopContext => "LoopContext",
        _ => v.GetType().Name,
    };

    public static bool Truthy(object? v) => v switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        IList<object?> l => l.Count > 0,
        Dictionary<object, object?> d => d.Count > 0,
        Undefined => false,
        _ => true,
    };

    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException(),
    };

    /// <summary>Python str().</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python repr().</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        Repr(v, sb, 0);
        return sb.ToString();
    }

    static void Repr(object? v, StringBuilder sb, int depth)
    {
        if (depth > 100) { sb.Append("..."); return; }
        switch (v)
        {
            case string s: StrRepr(s, sb); break;
            case List<object?> l:
                sb.Append('[');
                for (int i = 0; i < l.Count; i++) { if (i > 0) sb.Append(", "); Repr(l[i], sb, depth + 1); }
                sb.Append(']');
                break;
            case object?[] t:
                sb.Append('(');
                for (int i = 0; i < t.Length; i++) { if (i > 0) sb.Append(", "); Repr(t[i], sb, depth + 1); }
                if (t.Length == 1) sb.Append(',');
                sb.Append(')');
                break;
            case Dictionary<object, object?> d:
                sb.Append('{');
                bool first = true;
                foreach (var (k, x) in d)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    Repr(k, sb, depth + 1);
                    sb.Append(": ");
                    Repr(x, sb, depth + 1);
                }
                sb.Append('}');
                break;
            case Namespace ns:
                sb.Append("<Namespace ");
                Repr(ns.Attributes.ToDictionary(kv => (object)kv.Key, kv => kv.Value, PyKeyComparer.Instance), sb, depth + 1);
                sb.Append('>');
                break;
            case Callable c: sb.Append("<function ").Append(c.Name).Append('>'); break;
            case Undefined: sb.Append("Undefined"); break;
            case LoopContext: sb.Append("<LoopContext>"); break;
            default: sb.Append(Str(v)); break;
        }
    }

    static void StrRepr(string s, StringBuilder sb)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(q);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == q || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else if (c >= 0x80 && c <= 0xa0 || c == '\xad') sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) sb.Append(c).Append(s[++i]);
            else if (char.IsSurrogate(c)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else if (c is '\u2028' or '\u2029') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        sb.Append(q);
    }

    /// <summary>Python's repr of a float: shortest round-trip digits, exponent form below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return 1 / d < 0 ? "-0.0" : "0.0";
        var r = d.ToString("R", CultureInfo.InvariantCulture);
        bool neg = r[0] == '-';
        if (neg) r = r[1..];
        int exp = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0) { exp = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture); r = r[..e]; }
        int dot = r.IndexOf('.');
        string digits = dot < 0 ? r : r[..dot] + r[(dot + 1)..];
        int decpt = (dot < 0 ? r.Length : dot) + exp;
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; decpt--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        var sb = new StringBuilder();
        if (neg) sb.Append('-');
        if (decpt > -4 && decpt <= 16)
        {
            if (decpt <= 0) sb.Append("0.").Append('0', -decpt).Append(digits);
            else if (decpt >= digits.Length) sb.Append(digits).Append('0', decpt - digits.Length).Append(".0");
            else sb.Append(digits, 0, decpt).Append('.').Append(digits, decpt, digits.Length - decpt);
        }
        else
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            int x = decpt - 1;
            sb.Append('e').Append(x < 0 ? '-' : '+').Append(Math.Abs(x).ToString("00", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>Python ==.</summary>
    public static bool Eq(object? a, object? b) => Eq(a, b, 0);

    static bool Eq(object? a, object? b, int depth)
    {
        if (depth > 200) throw new TemplateError("comparison nested too deeply", 0);
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        switch (a)
        {
            case string s: return b is string t && s == t;
            case List<object?> l: return b is List<object?> m && SeqEq(l, m, depth);
            case object?[] tu: return b is object?[] u && SeqEq(tu, u, depth);
            case Dictionary<object, object?> d:
                if (b is not Dictionary<object, object?> e || d.Count != e.Count) return false;
                foreach (var (k, v) in d) if (!e.TryGetValue(k, out var w) || !Eq(v, w, depth + 1)) return false;
                return true;
            case Undefined: return b is Undefined;
            default: return ReferenceEquals(a, b);
        }
    }

    static bool SeqEq(IList<object?> a, IList<object?> b, int depth)
    {
        if (ReferenceEquals(a, b)) return true;
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (!Eq(a[i], b[i], depth + 1)) return false;
        return true;
    }

    public static long ToLong(object? v) => v switch { long l => l, bool b => b ? 1 : 0, _ => throw new InvalidOperationException() };

    /// <summary>Python ordering (&lt;): numbers, strings by code point, lists/tuples lexicographically.</summary>
    public static int Compare(object? a, object? b, string op, int depth = 0)
    {
        if (depth > 200) throw new TemplateError("comparison nested too deeply", 0);
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a).CompareTo(ToDouble(b));
            return ToLong(a).CompareTo(ToLong(b));
        }
        if (a is string s && b is string t) return CompareCodePoints(s, t);
        if ((a is List<object?> && b is List<object?>) || (a is object?[] && b is object?[]))
        {
            var x = (IList<object?>)a;
            var y = (IList<object?>)b!;
            for (int i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                if (Eq(x[i], y[i])) continue;
                return Compare(x[i], y[i], op, depth + 1);
            }
            return x.Count.CompareTo(y.Count);
        }
        if (a is Undefined || b is Undefined) throw new TemplateError($"{((a as Undefined) ?? (Undefined)b!).Message}", 0);
        throw new TemplateError($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'", 0);
    }

    public static int CompareCodePoints(string s, string t)
    {
        int i = 0;
        while (i < s.Length && i < t.Length)
        {
            if (s[i] != t[i])
            {
                int a = char.IsSurrogatePair(s, i) ? char.ConvertToUtf32(s, i) : s[i];
                int b = char.IsSurrogatePair(t, i) ? char.ConvertToUtf32(t, i) : t[i];
                return a.CompareTo(b);
            }
            i++;
        }
        return s.Length.CompareTo(t.Length);
    }

    /// <summary>A string as Python sees it: one element per code point.</summary>
    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return list;
    }

    public static bool HasSurrogates(string s)
    {
        foreach (var c in s) if (char.IsSurrogate(c)) return true;
        return false;
    }

    public static int Length(string s) => HasSurrogates(s) ? CodePoints(s).Count : s.Length;

    /// <summary>Values from a JSON document: objects keep their order, integers become long, other numbers double.</summary>
    public static object? FromJson(JsonElement e, int depth = 0)
    {
        if (depth > 256) throw new TemplateError("JSON input nested too deeply", 0);
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
            {
                var d = NewDict();
                foreach (var p in e.EnumerateObject()) d[p.Name] = FromJson(p.Value, depth + 1);
                return d;
            }
            case JsonValueKind.Array:
            {
                var l = new List<object?>();
                foreach (var x in e.EnumerateArray()) l.Add(FromJson(x, depth + 1));
                return l;
            }
            case JsonValueKind.String: return e.GetString();
            case JsonValueKind.Number:
            {
                var raw = e.GetRawText();
                if (raw.IndexOfAny(['.', 'e', 'E']) < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return l;
                return e.GetDouble();
            }
            case JsonValueKind.True: return true;
            case JsonValueKind.False: return false;
            default: return null;
        }
    }

    /// <summary>Python's json.dumps(value, ensure_ascii, indent, separators, sort_keys) as transformers' tojson calls it.</summary>
    public static string ToJson(object? v, bool ensureAscii = false, string? indent = null, string? itemSep = null, string? keySep = null, bool sortKeys = false)
    {
        itemSep ??= indent is null ? ", " : ",";
        keySep ??= ": ";
        var sb = new StringBuilder();
        WriteJson(v, sb, ensureAscii, indent, itemSep, keySep, sortKeys, 0);
        return sb.ToString();
    }

    static void NewLine(StringBuilder sb, string? indent, int level)
    {
        if (indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < level; i++) sb.Append(indent);
    }

    static void WriteJson(object? v, StringBuilder sb, bool ascii, string? indent, string itemSep, string keySep, bool sortKeys, int level)
    {
        if (level > 200) throw new TemplateError("tojson: value nested too deeply (or circular)", 0);
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : FloatRepr(d));
                break;
            case string s: JsonString(s, sb, ascii); break;
            case IList<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    NewLine(sb, indent, level + 1);
                    WriteJson(list[i], sb, ascii, indent, itemSep, keySep, sortKeys, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                break;
            case Dictionary<object, object?> dict:
            {
                if (dict.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                IEnumerable<KeyValuePair<object, object?>> items = dict;
                if (sortKeys) items = dict.OrderBy(kv => kv.Key, Comparer<object>.Create((a, b) => Compare(a, b, "<")));
                bool first = true;
                foreach (var (k, x) in items)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, indent, level + 1);
                    string key = k switch
                    {
                        string s => s,
                        bool b => b ? "true" : "false",
                        null => "null",
                        long or double => Str(k),
                        _ => throw new TemplateError($"tojson: keys must be str, int, float, bool or None, not {TypeName(k)}", 0),
                    };
                    JsonString(key, sb, ascii);
                    sb.Append(keySep);
                    WriteJson(x, sb, ascii, indent, itemSep, keySep, sortKeys, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append('}');
                break;
            }
            case Namespace ns:
                throw new TemplateError("tojson: Object of type Namespace is not JSON serializable", 0);
            case Undefined u:
                throw new TemplateError($"tojson: Object of type Undefined is not JSON serializable ({u.Message})", 0);
            default:
                throw new TemplateError($"tojson: Object of type {TypeName(v)} is not JSON serializable", 0);
        }
    }

    static void JsonString(string s, StringBuilder sb, bool ascii)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7f)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
