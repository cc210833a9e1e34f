using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Jevons.Tokenization.Templates;

// Filters, tests and the methods of str, dict and list.
sealed partial class TemplateInterpreter
{
    static object? Arg(List<object?> a, Dictionary<string, object?> k, int i, string name, object? dflt) =>
        i < a.Count ? a[i] : k.TryGetValue(name, out var v) ? v : dflt;

    string S(object? v) => Py.Str(v);

    static string? StripChars(object? v) => v is null or Undefined ? null : Py.Str(v);

    static string PyStrip(string s, string? chars, bool left, bool right)
    {
        bool Strip(char c) => chars is null ? TemplateLexer.IsPySpace(c) : chars.Contains(c);
        int a = 0, b = s.Length;
        if (left) while (a < b && Strip(s[a])) a++;
        if (right) while (b > a && Strip(s[b - 1])) b--;
        return s[a..b];
    }

    List<object?> PySplit(string s, object? sepArg, long maxsplit, bool fromRight)
    {
        var result = new List<string>();
        if (sepArg is null or Undefined)
        {
            var words = new List<(int Start, int End)>();
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && TemplateLexer.IsPySpace(s[i])) i++;
                if (i >= s.Length) break;
                int st = i;
                while (i < s.Length && !TemplateLexer.IsPySpace(s[i])) i++;
                words.Add((st, i));
            }
            if (maxsplit < 0 || words.Count <= maxsplit + 1) return words.Select(w => (object?)s[w.Start..w.End]).ToList();
            if (!fromRight)
            {
                var head = words.Take((int)maxsplit).Select(w => (object?)s[w.Start..w.End]).ToList();
                head.Add(s[words[(int)maxsplit].Start..]);
                return head;
            }
            var tail = words.Skip(words.Count - (int)maxsplit).Select(w => (object?)s[w.Start..w.End]).ToList();
            tail.Insert(0, s[..words[words.Count - (int)maxsplit - 1].End].TrimStart(TemplateLexer.PyWhitespace));
            return tail;
        }
        var sep = S(sepArg);
        if (sep.Length == 0) throw new TemplateError("empty separator", Line);
        if (!fromRight)
            return (maxsplit < 0 ? s.Split(sep) : s.Split(sep, (int)Math.Min(maxsplit + 1, int.MaxValue))).Cast<object?>().ToList();
        var parts = new List<object?>();
        int end = s.Length;
        while (maxsplit < 0 || parts.Count < maxsplit)
        {
            int at = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
            if (at < 0 || at + sep.Length > end) break;
            parts.Insert(0, s[(at + sep.Length)..end]);
            end = at;
        }
        parts.Insert(0, s[..end]);
        return parts;
    }

    static string PyReplace(string s, string old, string @new, long count)
    {
        if (count < 0) return old.Length == 0 ? string.Join(@new, Py.CodePoints(s).Prepend("").Append("")) : s.Replace(old, @new, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (at < 0 || old.Length == 0 && at >= s.Length) break;
            sb.Append(s, pos, at - pos).Append(@new);
            if (old.Length == 0) { sb.Append(s[at]); pos = at + 1; }
            else pos = at + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    static string PyTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (var c in s)
        {
            sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevCased = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>str.upper: the invariant mapping plus the one full-case expansion prompts meet (ß → SS).</summary>
    static string PyUpper(string s) => s.ToUpperInvariant().Replace("ß", "SS", StringComparison.Ordinal);

    static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    bool MatchAffix(string s, object? affix, object? start, object? end, bool prefix)
    {
        int a = start is long l ? (int)Math.Clamp(l < 0 ? l + s.Length : l, 0, s.Length) : 0;
        int b = end is long e ? (int)Math.Clamp(e < 0 ? e + s.Length : e, 0, s.Length) : s.Length;
        var sub = a <= b ? s[a..b] : "";
        IEnumerable<object?> options = affix is object?[] t ? t : [affix];
        foreach (var o in options)
        {
            if (o is not string x) throw new TemplateError($"{(prefix ? "startswith" : "endswith")} first arg must be str or a tuple of str, not {Py.TypeName(o)}", Line);
            if (prefix ? sub.StartsWith(x, StringComparison.Ordinal) : sub.EndsWith(x, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    Callable? Method(object obj, string name)
    {
        Callable M(Func<List<object?>, Dictionary<string, object?>, object?> f) => new(name, f);
        if (obj is string s)
            return name switch
            {
                "startswith" => M((a, k) => MatchAffix(s, Arg(a, k, 0, "prefix", null), Arg(a, k, 1, "start", null), Arg(a, k, 2, "end", null), true)),
                "endswith" => M((a, k) => MatchAffix(s, Arg(a, k, 0, "suffix", null), Arg(a, k, 1, "start", null), Arg(a, k, 2, "end", null), false)),
                "strip" => M((a, k) => PyStrip(s, StripChars(Arg(a, k, 0, "chars", null)), true, true)),
                "lstrip" => M((a, k) => PyStrip(s, StripChars(Arg(a, k, 0, "chars", null)), true, false)),
                "rstrip" => M((a, k) => PyStrip(s, StripChars(Arg(a, k, 0, "chars", null)), false, true)),
                "split" => M((a, k) => PySplit(s, Arg(a, k, 0, "sep", null), Int(Arg(a, k, 1, "maxsplit", -1L), "split"), false)),
                "rsplit" => M((a, k) => PySplit(s, Arg(a, k, 0, "sep", null), Int(Arg(a, k, 1, "maxsplit", -1L), "rsplit"), true)),
                "splitlines" => M((a, k) => SplitLines(s, Py.Truthy(Arg(a, k, 0, "keepends", false))).Cast<object?>().ToList()),
                "replace" => M((a, k) => CheckSize(PyReplace(s, S(Arg(a, k, 0, "old", "")), S(Arg(a, k, 1, "new", "")), Int(Arg(a, k, 2, "count", -1L), "replace")))),
                "upper" => M((_, _) => PyUpper(s)),
                "lower" => M((_, _) => s.ToLowerInvariant()),
                "casefold" => M((_, _) => s.ToLowerInvariant()),
                "title" => M((_, _) => PyTitle(s)),
                "capitalize" => M((_, _) => Capitalize(s)),
                "swapcase" => M((_, _) => string.Concat(s.Select(c => char.IsUpper(c) ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c)))),
                "find" or "index" or "rfind" or "rindex" => M((a, k) =>
                {
                    var sub = S(Arg(a, k, 0, "sub", ""));
                    int st = Arg(a, k, 1, "start", null) is long l ? (int)Math.Clamp(l < 0 ? l + s.Length : l, 0, s.Length) : 0;
                    int en = Arg(a, k, 2, "end", null) is long e ? (int)Math.Clamp(e < 0 ? e + s.Length : e, 0, s.Length) : s.Length;
                    int at = en < st ? -1 : name.StartsWith('r') ? s[..en].LastIndexOf(sub, StringComparison.Ordinal) : s[..en].IndexOf(sub, st, StringComparison.Ordinal);
                    if (at >= 0 && at < st) at = -1;
                    if (at < 0 && name.EndsWith("index")) throw new TemplateError("substring not found", Line);
                    return (long)at;
                }),
                "count" => M((a, k) =>
                {
                    var sub = S(Arg(a, k, 0, "sub", ""));
                    if (sub.Length == 0) return (long)Py.Length(s) + 1;
                    long n = 0;
                    for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
                    return n;
                }),
                "join" => M((a, k) => CheckSize(string.Join(s, Iterate(Arg(a, k, 0, "iterable", null)).Select(x => x is string t ? t
                    : throw new TemplateError($"sequence item: expected str instance, {Py.TypeName(x)} found", Line))))),
                "format" => M((a, k) => CheckSize(StrFormat(s, a, k))),
                "isdigit" or "isdecimal" or "isnumeric" => M((_, _) => s.Length > 0 && s.All(char.IsDigit)),
                "isalpha" => M((_, _) => s.Length > 0 && s.All(char.IsLetter)),
                "isalnum" => M((_, _) => s.Length > 0 && s.All(char.IsLetterOrDigit)),
                "isspace" => M((_, _) => s.Length > 0 && s.All(TemplateLexer.IsPySpace)),
                "isupper" => M((_, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower)),
                "islower" => M((_, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper)),
                "istitle" => M((_, _) => s.Any(char.IsLetter) && PyTitle(s) == s),
                "zfill" => M((a, k) =>
                {
                    int w = (int)Int(Arg(a, k, 0, "width", 0L), "zfill");
                    if (s.Length >= w) return s;
                    int sign = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
                    return s[..sign] + new string('0', w - s.Length) + s[sign..];
                }),
                "center" or "ljust" or "rjust" => M((a, k) =>
                {
                    int w = (int)Math.Min(Int(Arg(a, k, 0, "width", 0L), name), _limits.MaxOutputChars);
                    char fill = Arg(a, k, 1, "fillchar", " ") is string f && f.Length == 1 ? f[0] : ' ';
                    if (s.Length >= w) return s;
                    if (name == "ljust") return s.PadRight(w, fill);
                    if (name == "rjust") return s.PadLeft(w, fill);
                    int total = w - s.Length, leftPad = total / 2 + (total & w & 1);
                    return new string(fill, leftPad) + s + new string(fill, total - leftPad);
                }),
                "partition" or "rpartition" => M((a, k) =>
                {
                    var sep = S(Arg(a, k, 0, "sep", ""));
                    int at = name == "partition" ? s.IndexOf(sep, StringComparison.Ordinal) : s.LastIndexOf(sep, StringComparison.Ordinal);
                    if (at < 0) return name == "partition" ? new object?[] { s, "", "" } : new object?[] { "", "", s };
                    return new object?[] { s[..at], sep, s[(at + sep.Length)..] };
                }),
                "removeprefix" => M((a, k) => Arg(a, k, 0, "prefix", "") is string p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s),
                "removesuffix" => M((a, k) => Arg(a, k, 0, "suffix", "") is string p && p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s),
                _ => null,
            };
        if (obj is Dictionary<object, object?> d)
            return name switch
            {
                "get" => M((a, k) =>
                {
                    var key = Arg(a, k, 0, "key", null);
                    return key is not null && key is not (List<object?> or Dictionary<object, object?>) && d.TryGetValue(key, out var v) ? v : Arg(a, k, 1, "default", null);
                }),
                "keys" => M((_, _) => d.Keys.Cast<object?>().ToList()),
                "values" => M((_, _) => d.Values.ToList()),
                "items" => M((_, _) => d.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList()),
                "copy" => M((_, _) => new Dictionary<object, object?>(d, PyKeyComparer.Instance)),
                _ when UnsafeMethods.Contains(name) => M((_, _) => throw new TemplateError($"access to attribute '{name}' of 'dict' object is unsafe (the template environment is immutable)", Line)),
                _ => null,
            };
        if (obj is IList<object?> list)
            return name switch
            {
                "index" => M((a, k) =>
                {
                    var x = Arg(a, k, 0, "value", null);
                    for (int i = 0; i < list.Count; i++) if (Py.Eq(list[i], x)) return (long)i;
                    throw new TemplateError($"{Py.Repr(x)} is not in list", Line);
                }),
                "count" => M((a, k) => (long)list.Count(x => Py.Eq(x, Arg(a, k, 0, "value", null)))),
                "copy" when list is List<object?> l => M((_, _) => new List<object?>(l)),
                _ when UnsafeMethods.Contains(name) => M((_, _) => throw new TemplateError($"access to attribute '{name}' of '{Py.TypeName(list)}' object is unsafe (the template environment is immutable)", Line)),
                _ => null,
            };
        return null;
    }

    static List<string> SplitLines(string s, bool keepEnds = false)
    {
        var lines = new List<string>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            int brk = c switch
            {
                '\r' when i + 1 < s.Length && s[i + 1] == '\n' => 2,
                '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029' => 1,
                _ => 0,
            };
            if (brk == 0) { i++; continue; }
            lines.Add(keepEnds ? s[start..(i + brk)] : s[start..i]);
            i += brk;
            start = i;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>str.format with positional/named fields, !s/!r conversions and simple specs (fill, align, width, precision, type).</summary>
    string StrFormat(string fmt, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c == '{' && i + 1 < fmt.Length && fmt[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < fmt.Length && fmt[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int close = fmt.IndexOf('}', i);
            if (close < 0) throw new TemplateError("single '{' encountered in format string", Line);
            var field = fmt[(i + 1)..close];
            i = close;
            string spec = "", conv = "";
            int colon = field.IndexOf(':');
            if (colon >= 0) { spec = field[(colon + 1)..]; field = field[..colon]; }
            int bang = field.IndexOf('!');
            if (bang >= 0) { conv = field[(bang + 1)..]; field = field[..bang]; }
            var path = field.Split('.');
            object? value;
            if (path[0].Length == 0) value = auto < args.Count ? args[auto++] : throw new TemplateError("format: replacement index out of range", Line);
            else if (int.TryParse(path[0], out var idx)) value = idx < args.Count ? args[idx] : throw new TemplateError("format: replacement index out of range", Line);
            else value = kwargs.TryGetValue(path[0], out var kv) ? kv : throw new TemplateError($"format: missing key '{path[0]}'", Line);
            foreach (var p in path.Skip(1)) value = GetAttr(value, p, Line);
            string text = conv == "r" ? Py.Repr(value) : FormatSpec(value, spec);
            sb.Append(text);
        }
        return sb.ToString();
    }

    string FormatSpec(object? value, string spec)
    {
        if (spec.Length == 0) return S(value);
        var m = Regex.Match(spec, @"^(?:(.)?([<>^=]))?([+\- ]?)(0)?(\d+)?(,)?(?:\.(\d+))?([sdfFeExXobg%])?$");
        if (!m.Success) throw new TemplateError($"invalid format spec '{spec}'", Line);
        char fill = m.Groups[1].Success ? m.Groups[1].Value[0] : m.Groups[4].Success ? '0' : ' ';
        char align = m.Groups[2].Success ? m.Groups[2].Value[0] : value is string ? '<' : '>';
        int width = m.Groups[5].Success ? int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture) : 0;
        int? prec = m.Groups[7].Success ? int.Parse(m.Groups[7].Value, CultureInfo.InvariantCulture) : null;
        char type = m.Groups[8].Success ? m.Groups[8].Value[0] : '\0';
        string text = type switch
        {
            'f' or 'F' => Py.ToDouble(value).ToString("F" + (prec ?? 6), CultureInfo.InvariantCulture),
            'd' => Py.ToLong(value).ToString(CultureInfo.InvariantCulture),
            'x' => Py.ToLong(value).ToString("x", CultureInfo.InvariantCulture),
            'X' => Py.ToLong(value).ToString("X", CultureInfo.InvariantCulture),
            '%' => (Py.ToDouble(value) * 100).ToString("F" + (prec ?? 6), CultureInfo.InvariantCulture) + "%",
            _ => value is string str && prec is int p && p < str.Length ? str[..p] : S(value),
        };
        if (m.Groups[3].Value == "+" && Py.IsNumber(value) && !text.StartsWith('-')) text = "+" + text;
        width = Math.Min(width, _limits.MaxOutputChars);
        if (text.Length >= width) return text;
        int pad = width - text.Length;
        return align switch
        {
            '<' => text + new string(fill, pad),
            '^' => new string(fill, pad / 2) + text + new string(fill, pad - pad / 2),
            _ => new string(fill, pad) + text,
        };
    }

    // Filters.

    object? ApplyFilter(FilterExpr f, object? value, Scope scope)
    {
        var (args, kwargs) = EvalArgs(f.Args, f.Kwargs, scope);
        Line = f.Line;
        return Filter(f.Name, value, args, kwargs, scope);
    }

    Func<object?, object?> AttrGetter(object? attribute, object? dflt = null)
    {
        var parts = Py.Str(attribute).Split('.').Select(p => long.TryParse(p, out var n) ? (object)n : p).ToArray();
        return item =>
        {
            foreach (var p in parts)
            {
                item = GetItem(item, p, Line);
                if (item is Undefined && dflt is not null) return dflt;
            }
            return item;
        };
    }

    Comparison<object?> SortComparison(bool caseSensitive) => (x, y) =>
    {
        if (!caseSensitive && x is string a && y is string b) return Py.CompareCodePoints(a.ToLowerInvariant(), b.ToLowerInvariant());
        return Py.Compare(x, y, "<");
    };

    List<object?> Sorted(List<object?> items, Func<object?, object?> key, bool reverse, bool caseSensitive)
    {
        var cmp = SortComparison(caseSensitive);
        var keyed = items.Select((x, i) => (Key: key(x), Item: x, Index: i)).ToList();
        try
        {
            keyed.Sort((p, q) =>
            {
                int c = reverse ? cmp(q.Key, p.Key) : cmp(p.Key, q.Key);
                return c != 0 ? c : p.Index.CompareTo(q.Index);
            });
        }
        catch (InvalidOperationException e) when (e.InnerException is TemplateError inner)
        {
            throw new TemplateError(inner.Message, Line);
        }
        return keyed.Select(p => p.Item).ToList();
    }

    object? Filter(string name, object? v, List<object?> a, Dictionary<string, object?> k, Scope scope)
    {
        switch (name)
        {
            case "safe": return v;
            case "string": return S(v);
            case "e": case "escape": case "forceescape":
                return S(v).Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");
            case "trim":
                return PyStrip(S(v), StripChars(Arg(a, k, 0, "chars", null)), true, true);
            case "upper": return PyUpper(S(v));
            case "lower": return S(v).ToLowerInvariant();
            case "capitalize": return Capitalize(S(v));
            case "title":
                return string.Concat(Regex.Split(S(v), @"([-\s({\[<]+)").Where(p => p.Length > 0).Select(p => char.ToUpperInvariant(p[0]) + p[1..].ToLowerInvariant()));
            case "length": case "count":
                return v switch
                {
                    string s => (long)Py.Length(s),
                    IList<object?> l => (long)l.Count,
                    Dictionary<object, object?> d => (long)d.Count,
                    Undefined => 0L,
                    Namespace ns => (long)ns.Attributes.Count,
                    _ => throw new TemplateError($"object of type '{Py.TypeName(v)}' has no len()", Line),
                };
            case "wordcount": return (long)Regex.Matches(S(v), @"\w+").Count;
            case "default": case "d":
            {
                var dflt = Arg(a, k, 0, "default_value", "");
                bool boolean = Py.Truthy(Arg(a, k, 1, "boolean", false));
                return v is Undefined || (boolean && !Py.Truthy(v)) ? dflt : v;
            }
            case "tojson":
            {
                var indentArg = Arg(a, k, 0, "indent", null);
                string? indent = indentArg switch
                {
                    null => null,
                    long n => new string(' ', (int)Math.Clamp(n, 0, 64)),
                    string s => s,
                    _ => throw new TemplateError("tojson: indent must be an integer or a string", Line),
                };
                string? itemSep = null, keySep = null;
                if (k.TryGetValue("separators", out var seps) && seps is IList<object?> { Count: 2 } sl) { itemSep = S(sl[0]); keySep = S(sl[1]); }
                bool ascii = k.TryGetValue("ensure_ascii", out var ea) && Py.Truthy(ea);
                bool sortKeys = k.TryGetValue("sort_keys", out var sk) && Py.Truthy(sk);
                return CheckSize(Py.ToJson(v, ascii, indent, itemSep, keySep, sortKeys));
            }
            case "int":
            {
                if (v is Undefined ui) throw new TemplateError(ui.Message, Line);
                var dflt = Arg(a, k, 0, "default", 0L);
                long bas = Int(Arg(a, k, 1, "base", 10L), "int");
                switch (v)
                {
                    case long l: return l;
                    case bool b: return b ? 1L : 0L;
                    case double d: return double.IsFinite(d) && Math.Abs(d) < 9.2e18 ? (long)Math.Truncate(d) : dflt;
                    case string s:
                        s = s.Trim().Replace("_", "");
                        try { if (s.Length > 0) return Convert.ToInt64(s.StartsWith('+') ? s[1..] : s, (int)bas); } catch (Exception e) when (e is FormatException or ArgumentException or OverflowException) { }
                        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && double.IsFinite(f) && Math.Abs(f) < 9.2e18 ? (long)Math.Truncate(f) : dflt;
                    default: return dflt;
                }
            }
            case "float":
            {
                if (v is Undefined uf) throw new TemplateError(uf.Message, Line);
                var dflt = Arg(a, k, 0, "default", 0.0);
                return v switch
                {
                    double d => d,
                    long l => (double)l,
                    bool b => b ? 1.0 : 0.0,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) => f,
                    _ => dflt,
                };
            }
            case "abs":
                return v switch
                {
                    long l => (object)(l == long.MinValue ? throw new TemplateError("integer overflow", Line) : Math.Abs(l)),
                    double d => Math.Abs(d),
                    bool b => b ? 1L : 0L,
                    _ => throw new TemplateError($"bad operand type for abs(): '{Py.TypeName(v)}'", Line),
                };
            case "round":
            {
                long prec = Int(Arg(a, k, 0, "precision", 0L), "round");
                var method = S(Arg(a, k, 1, "method", "common"));
                if (!Py.IsNumber(v)) throw new TemplateError($"round: '{Py.TypeName(v)}' is not a number", Line);
                double x = Py.ToDouble(v), scale = Math.Pow(10, prec);
                return method switch
                {
                    "common" when v is long or bool && prec >= 0 => (object)Py.ToLong(v),
                    "common" => PyRound(x, (int)Math.Clamp(prec, -15, 15)),
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    "floor" => Math.Floor(x * scale) / scale,
                    _ => throw new TemplateError("round: method must be 'common', 'ceil' or 'floor'", Line),
                };
            }
            case "first":
            {
                if (v is Undefined) return new Undefined("no first item, the sequence was empty");
                var items = Iterate(v);
                return items.Count > 0 ? items[0] : new Undefined("no first item, the sequence was empty");
            }
            case "last":
            {
                if (v is Undefined) return new Undefined("no last item, the sequence was empty");
                var items = v is Dictionary<object, object?> ? throw new TemplateError("'dict' object is not reversible", Line) : Iterate(v);
                return items.Count > 0 ? items[^1] : new Undefined("no last item, the sequence was empty");
            }
            case "list": return Iterate(v);
            case "items":
                if (v is Undefined) return new List<object?>();
                if (v is not Dictionary<object, object?> dict) throw new TemplateError($"items: can only get item pairs from a mapping, not {Py.TypeName(v)}", Line);
                return dict.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList();
            case "dictsort":
            {
                if (v is not Dictionary<object, object?> sortable) throw new TemplateError("dictsort: can only sort a mapping", Line);
                bool cs = Py.Truthy(Arg(a, k, 0, "case_sensitive", false));
                var by = S(Arg(a, k, 1, "by", "key"));
                bool rev = Py.Truthy(Arg(a, k, 2, "reverse", false));
                var pairs = sortable.Select(kv => (object?)new object?[] { kv.Key, kv.Value }).ToList();
                return Sorted(pairs, p => ((object?[])p!)[by == "value" ? 1 : 0], rev, cs);
            }
            case "join":
            {
                var sep = S(Arg(a, k, 0, "d", ""));
                var attr = Arg(a, k, 1, "attribute", null);
                var items = Iterate(v);
                if (attr is not null) items = items.Select(AttrGetter(attr)).ToList();
                return CheckSize(string.Join(sep, items.Select(S)));
            }
            case "replace":
            {
                var old = S(Arg(a, k, 0, "old", ""));
                var @new = S(Arg(a, k, 1, "new", ""));
                var count = Arg(a, k, 2, "count", null);
                return CheckSize(PyReplace(S(v), old, @new, count is null ? -1 : Int(count, "replace")));
            }
            case "reverse":
                if (v is string rs) return string.Concat(Py.CodePoints(rs).AsEnumerable().Reverse());
                { var items = Iterate(v); items.Reverse(); return items; }
            case "sort":
            {
                bool rev = Py.Truthy(Arg(a, k, 0, "reverse", false));
                bool cs = Py.Truthy(Arg(a, k, 1, "case_sensitive", false));
                var attr = Arg(a, k, 2, "attribute", null);
                return Sorted(Iterate(v), attr is null ? x => x : AttrGetter(attr), rev, cs);
            }
            case "unique":
            {
                bool cs = Py.Truthy(Arg(a, k, 0, "case_sensitive", false));
                var attr = Arg(a, k, 1, "attribute", null);
                var key = attr is null ? (Func<object?, object?>)(x => x) : AttrGetter(attr);
                var seen = new List<object?>();
                var result = new List<object?>();
                foreach (var x in Iterate(v))
                {
                    var kx = key(x);
                    if (!cs && kx is string s) kx = s.ToLowerInvariant();
                    if (seen.Any(y => Py.Eq(y, kx))) continue;
                    seen.Add(kx);
                    result.Add(x);
                }
                return result;
            }
            case "min": case "max":
            {
                bool cs = Py.Truthy(Arg(a, k, 0, "case_sensitive", false));
                var attr = Arg(a, k, 1, "attribute", null);
                var items = Iterate(v);
                if (items.Count == 0) return new Undefined($"no {name} item, the sequence was empty");
                var sorted = Sorted(items, attr is null ? x => x : AttrGetter(attr), name == "max", cs);
                return sorted[0];
            }
            case "sum":
            {
                var attr = Arg(a, k, 0, "attribute", null);
                object? total = Arg(a, k, 1, "start", 0L);
                foreach (var x in Iterate(v)) total = Binary("+", total, attr is null ? x : AttrGetter(attr)(x));
                return total;
            }
            case "map":
            {
                var items = Iterate(v);
                if (a.Count == 0 && k.TryGetValue("attribute", out var attr))
                    return items.Select(AttrGetter(attr, k.GetValueOrDefault("default"))).ToList();
                if (a.Count == 0) throw new TemplateError("map requires a filter name or attribute=", Line);
                var filter = S(a[0]);
                var rest = a.Skip(1).ToList();
                return items.Select(x => Filter(filter, x, rest, k, scope)).ToList();
            }
            case "select": case "reject": case "selectattr": case "rejectattr":
            {
                bool attrMode = name.EndsWith("attr");
                bool keep = name.StartsWith("select");
                int off = attrMode ? 1 : 0;
                var getter = attrMode ? AttrGetter(a.Count > 0 ? a[0] : throw new TemplateError($"{name} needs an attribute name", Line)) : x => x;
                string? test = a.Count > off ? S(a[off]) : null;
                var testArgs = a.Skip(off + 1).ToList();
                return Iterate(v).Where(x =>
                {
                    var y = getter(x);
                    bool ok = test is null ? Py.Truthy(y) : ApplyTest(test, y, testArgs, scope);
                    return ok == keep;
                }).ToList();
            }
            case "batch":
            {
                long size = Int(Arg(a, k, 0, "linecount", 1L), "batch");
                if (size <= 0) throw new TemplateError("batch: linecount must be positive", Line);
                var fill = Arg(a, k, 1, "fill_with", null);
                bool hasFill = a.Count > 1 || k.ContainsKey("fill_with");
                var result = new List<object?>();
                List<object?>? cur = null;
                foreach (var x in Iterate(v))
                {
                    if (cur is null || cur.Count == size) { cur = new List<object?>(); result.Add(cur); }
                    cur.Add(x);
                }
                if (hasFill && cur is not null) while (cur.Count < size) cur.Add(fill);
                return result;
            }
            case "indent":
            {
                var w = Arg(a, k, 0, "width", 4L);
                string ind = w is string ws ? ws : new string(' ', (int)Math.Clamp(Int(w, "indent"), 0, 1024));
                bool first = Py.Truthy(Arg(a, k, 1, "first", false));
                bool blank = Py.Truthy(Arg(a, k, 2, "blank", false));
                var s = S(v) + "\n";
                var lines = SplitLines(s);
                string rv;
                if (blank) rv = string.Join("\n" + ind, lines);
                else
                {
                    rv = lines.Count > 0 ? lines[0] : "";
                    if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? ind + l : l));
                }
                return CheckSize(first ? ind + rv : rv);
            }
            case "center":
            {
                int w = (int)Math.Min(Int(Arg(a, k, 0, "width", 80L), "center"), _limits.MaxOutputChars);
                var s = S(v);
                if (s.Length >= w) return s;
                int total = w - s.Length, left = total / 2 + (total & w & 1);
                return new string(' ', left) + s + new string(' ', total - left);
            }
            case "truncate":
            {
                var s = S(v);
                int length = (int)Int(Arg(a, k, 0, "length", 255L), "truncate");
                bool killwords = Py.Truthy(Arg(a, k, 1, "killwords", false));
                var end = S(Arg(a, k, 2, "end", "..."));
                int leeway = (int)Int(Arg(a, k, 3, "leeway", 5L), "truncate");
                if (s.Length <= length + leeway) return s;
                if (killwords) return s[..Math.Max(0, length - end.Length)] + end;
                var cut = s[..Math.Max(0, length - end.Length)];
                int sp = cut.LastIndexOf(' ');
                return (sp >= 0 ? cut[..sp] : cut) + end;
            }
            case "striptags":
                return string.Join(" ", Regex.Replace(S(v), @"<!--.*?-->|<[^>]*>", "", RegexOptions.Singleline).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
            case "format":
                return CheckSize(a.Count == 0 && k.Count > 0 ? PercentFormat(S(v), k.ToDictionary(kv => (object)kv.Key, kv => kv.Value, PyKeyComparer.Instance)) : PercentFormat(S(v), a.ToArray()));
            case "pprint": return Py.Repr(v);
            case "attr": return GetAttr(v, S(Arg(a, k, 0, "name", "")), Line);
            case "slice":
            {
                long n = Int(Arg(a, k, 0, "slices", 1L), "slice");
                if (n <= 0) throw new TemplateError("slice: slices must be positive", Line);
                var items = Iterate(v);
                var result = new List<object?>();
                long per = items.Count / n, extra = items.Count % n;
                int offset = 0;
                for (long i = 0; i < n; i++)
                {
                    int start = offset + (int)i * (int)per + (int)Math.Min(i, extra) - offset;
                    int count = (int)per + (i < extra ? 1 : 0);
                    result.Add(items.GetRange(start, count));
                }
                return result;
            }
            default:
                throw new TemplateError($"no filter named '{name}'", Line);
        }
    }

    /// <summary>Python's round(x, n): correctly rounded from the exact binary value, exact ties to even.</summary>
    static double PyRound(double x, int digits)
    {
        if (!double.IsFinite(x)) return x;
        double scale = Math.Pow(10, digits), y = x * scale;
        if (digits < 0) return Math.Round(y, MidpointRounding.ToEven) / scale;
        // Exact: x = mantissa * 2^exp; round mantissa * 10^digits / 2^-exp to an integer, half to even.
        long bits = BitConverter.DoubleToInt64Bits(x);
        int e = (int)((bits >> 52) & 0x7FF);
        long m = bits & 0xFFFFFFFFFFFFFL;
        if (e == 0) e = 1; else m |= 1L << 52;
        e -= 1075;
        if (e >= 0) return x;
        var num = System.Numerics.BigInteger.Abs(new System.Numerics.BigInteger(m)) * System.Numerics.BigInteger.Pow(10, digits);
        var den = System.Numerics.BigInteger.One << -e;
        var q = System.Numerics.BigInteger.DivRem(num, den, out var r);
        int c = (r * 2).CompareTo(den);
        if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
        var text = q.ToString(CultureInfo.InvariantCulture).PadLeft(digits + 1, '0');
        var result = double.Parse(digits == 0 ? text : text[..^digits] + "." + text[^digits..], CultureInfo.InvariantCulture);
        return x < 0 ? -result : result;
    }

    // Tests.

    bool ApplyTest(string name, object? v, List<object?> a, Scope scope)
    {
        object? A(int i) => i < a.Count ? a[i] : throw new TemplateError($"test '{name}' needs an argument", Line);
        switch (name)
        {
            case "defined": return v is not Undefined;
            case "undefined": return v is Undefined;
            case "none": return v is null;
            case "boolean": return v is bool;
            case "true": return v is true;
            case "false": return v is false;
            case "integer": return v is long;
            case "float": return v is double;
            case "number": return v is long or double or bool;
            case "string": return v is string;
            case "mapping": return v is Dictionary<object, object?>;
            case "iterable": return v is string or IList<object?> or Dictionary<object, object?> or Undefined;
            case "sequence": return v is string or IList<object?> or Dictionary<object, object?> or Undefined;
            case "callable": return v is Callable;
            case "escaped": return false;
            case "lower": { var sl = Py.Str(v); return sl.Any(char.IsLetter) && !sl.Any(char.IsUpper); }
            case "upper": { var su = Py.Str(v); return su.Any(char.IsLetter) && !su.Any(char.IsLower); }
            case "odd": return Py.Eq(Binary("%", v, 2L), 1L);
            case "even": return Py.Eq(Binary("%", v, 2L), 0L);
            case "divisibleby": return Py.Eq(Binary("%", v, A(0)), 0L);
            case "in": return Contains(A(0), v);
            case "eq" or "equalto" or "==": return Py.Eq(v, A(0));
            case "ne" or "!=": return !Py.Eq(v, A(0));
            case "lt" or "lessthan" or "<": return CompareOp("<", v, A(0));
            case "le" or "<=": return CompareOp("<=", v, A(0));
            case "gt" or "greaterthan" or ">": return CompareOp(">", v, A(0));
            case "ge" or ">=": return CompareOp(">=", v, A(0));
            case "sameas":
            {
                var o = A(0);
                return v is null || o is null || v is bool || o is bool || v is long || v is string ? Py.Eq(v, o) && Py.TypeName(v) == Py.TypeName(o) : ReferenceEquals(v, o);
            }
            case "filter": return v is string fn && IsFilterName(fn);
            case "test": return v is string tn && TestNames.Contains(tn);
            default: throw new TemplateError($"no test named '{name}'", Line);
        }
    }

    static readonly HashSet<string> TestNames = ["defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string",
        "mapping", "iterable", "sequence", "callable", "escaped", "lower", "upper", "odd", "even", "divisibleby", "in", "eq", "equalto", "==",
        "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "sameas", "filter", "test"];

    static readonly HashSet<string> FilterNames = ["safe", "string", "e", "escape", "forceescape", "trim", "upper", "lower", "capitalize", "title",
        "length", "count", "wordcount", "default", "d", "tojson", "int", "float", "abs", "round", "first", "last", "list", "items", "dictsort",
        "join", "replace", "reverse", "sort", "unique", "min", "max", "sum", "map", "select", "reject", "selectattr", "rejectattr", "batch",
        "indent", "center", "truncate", "striptags", "format", "pprint", "attr", "slice"];

    static bool IsFilterName(string name) => FilterNames.Contains(name);
}
