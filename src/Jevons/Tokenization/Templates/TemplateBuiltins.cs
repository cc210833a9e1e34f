using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Jevons.Tokenization.Templates;

// Operators, attribute and item access, globals.
sealed partial class TemplateInterpreter
{
    void AddGlobals(Scope g)
    {
        g.Vars["range"] = new Callable("range", (a, _) =>
        {
            if (a.Count is < 1 or > 3) throw new TemplateError("range expected 1 to 3 arguments", Line);
            long start = 0, stop, step = 1;
            if (a.Count == 1) stop = Int(a[0], "range");
            else { start = Int(a[0], "range"); stop = Int(a[1], "range"); if (a.Count == 3) step = Int(a[2], "range"); }
            if (step == 0) throw new TemplateError("range() arg 3 must not be zero", Line);
            long n = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
            if (n > 100_000) throw new TemplateError("range too big: the sandbox allows at most 100000 items", Line);
            var list = new List<object?>();
            for (long i = 0; i < n; i++) list.Add(start + i * step);
            return list;
        });
        g.Vars["dict"] = new Callable("dict", (a, k) =>
        {
            var d = Py.NewDict();
            if (a.Count > 0)
            {
                if (a[0] is Dictionary<object, object?> src) foreach (var (key, v) in src) d[key] = v;
                else foreach (var pair in Iterate(a[0])) { var kv = Iterate(pair); if (kv.Count != 2) throw new TemplateError("dict() needs pairs", Line); d[kv[0]!] = kv[1]; }
            }
            foreach (var (key, v) in k) d[key] = v;
            return d;
        });
        g.Vars["namespace"] = new Callable("namespace", (a, k) =>
        {
            var ns = new Namespace();
            foreach (var x in a)
                if (x is Dictionary<object, object?> d) foreach (var (key, v) in d) ns.Attributes[Py.Str(key)] = v;
            foreach (var (key, v) in k) ns.Attributes[key] = v;
            return ns;
        });
        g.Vars["raise_exception"] = new Callable("raise_exception", (a, _) =>
            throw new TemplateError("the template raised an exception: " + (a.Count > 0 ? Py.Str(a[0]) : ""), Line));
        g.Vars["strftime_now"] = new Callable("strftime_now", (a, _) =>
            a.Count == 1 && a[0] is string f ? Strftime(_clock(), f) : throw new TemplateError("strftime_now takes one format string", Line));
        g.Vars["joiner"] = new Callable("joiner", (a, _) =>
        {
            var sep = a.Count > 0 ? Py.Str(a[0]) : ", ";
            bool used = false;
            return new Callable("joiner", (_, _) => { if (!used) { used = true; return ""; } return sep; });
        });
        g.Vars["cycler"] = new Callable("cycler", (a, _) =>
        {
            var items = a.ToList();
            int pos = 0;
            var ns = new Namespace();
            ns.Attributes["next"] = new Callable("next", (_, _) => { var v = items[pos]; pos = (pos + 1) % items.Count; return v; });
            ns.Attributes["reset"] = new Callable("reset", (_, _) => { pos = 0; return null; });
            return ns;
        });
    }

    long Int(object? v, string what) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new TemplateError($"{what}: '{Py.TypeName(v)}' object cannot be interpreted as an integer", Line),
    };

    static readonly string[] Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

    /// <summary>Python's time.strftime for the directives chat templates use (C locale); %-d style drops padding as glibc does.</summary>
    static string Strftime(DateTimeOffset t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            bool noPad = false;
            if (c == '-' && i + 1 < format.Length) { noPad = true; c = format[++i]; }
            string Pad(int v, int w = 2) => noPad ? v.ToString(CultureInfo.InvariantCulture) : v.ToString(new string('0', w), CultureInfo.InvariantCulture);
            sb.Append(c switch
            {
                'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
                'y' => Pad(t.Year % 100),
                'm' => Pad(t.Month),
                'd' => Pad(t.Day),
                'e' => noPad ? t.Day.ToString(CultureInfo.InvariantCulture) : t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
                'H' => Pad(t.Hour),
                'I' => Pad(t.Hour % 12 == 0 ? 12 : t.Hour % 12),
                'M' => Pad(t.Minute),
                'S' => Pad(t.Second),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'B' => Months[t.Month - 1],
                'b' or 'h' => Months[t.Month - 1][..3],
                'A' => Days[(int)t.DayOfWeek],
                'a' => Days[(int)t.DayOfWeek][..3],
                'j' => Pad(t.DayOfYear, 3),
                'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'Z' => t.Offset == TimeSpan.Zero ? "UTC" : "",
                'z' => (t.Offset < TimeSpan.Zero ? "-" : "+") + t.Offset.ToString("hhmm", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + (noPad ? "-" : "") + c,
            });
        }
        return sb.ToString();
    }

    internal object? Binary(string op, object? a, object? b)
    {
        if (op == "~") return CheckSize(Py.Str(a) + Py.Str(b));
        if (a is Undefined ua) throw new TemplateError(ua.Message, Line);
        if (b is Undefined ub) throw new TemplateError(ub.Message, Line);
        if (Py.IsNumber(a) && Py.IsNumber(b))
        {
            bool ints = a is not double && b is not double;
            try
            {
                switch (op)
                {
                    case "+": return ints ? checked(Py.ToLong(a) + Py.ToLong(b)) : (object)(Py.ToDouble(a) + Py.ToDouble(b));
                    case "-": return ints ? checked(Py.ToLong(a) - Py.ToLong(b)) : (object)(Py.ToDouble(a) - Py.ToDouble(b));
                    case "*": return ints ? checked(Py.ToLong(a) * Py.ToLong(b)) : (object)(Py.ToDouble(a) * Py.ToDouble(b));
                    case "/":
                        if (Py.ToDouble(b) == 0) throw new TemplateError("division by zero", Line);
                        return Py.ToDouble(a) / Py.ToDouble(b);
                    case "//":
                        if (Py.ToDouble(b) == 0) throw new TemplateError("integer division or modulo by zero", Line);
                        if (ints)
                        {
                            long x = Py.ToLong(a), y = Py.ToLong(b), q = x / y;
                            if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
                            return q;
                        }
                        return Math.Floor(Py.ToDouble(a) / Py.ToDouble(b));
                    case "%":
                        if (Py.ToDouble(b) == 0) throw new TemplateError("integer division or modulo by zero", Line);
                        if (ints)
                        {
                            long x = Py.ToLong(a), y = Py.ToLong(b), r = x % y;
                            if (r != 0 && ((r < 0) != (y < 0))) r += y;
                            return r;
                        }
                        else
                        {
                            double x = Py.ToDouble(a), y = Py.ToDouble(b), r = x % y;
                            if (r == 0) r = Math.CopySign(0.0, y);
                            else if ((r < 0) != (y < 0)) r += y;
                            return r;
                        }
                    case "**":
                        if (ints && Py.ToLong(b) >= 0)
                        {
                            long bas = Py.ToLong(a), e = Py.ToLong(b), r = 1;
                            for (long i = 0; i < e; i++) { r = checked(r * bas); if (r == 0 || r == 1 && bas == 1) break; }
                            return r;
                        }
                        return Math.Pow(Py.ToDouble(a), Py.ToDouble(b));
                }
            }
            catch (OverflowException) { throw new TemplateError("integer overflow", Line); }
        }
        switch (op)
        {
            case "+" when a is string s && b is string t: return CheckSize(s + t);
            case "+" when a is List<object?> l && b is List<object?> m: return CheckCount(l.Count + (long)m.Count, () => l.Concat(m).ToList());
            case "+" when a is object?[] l && b is object?[] m: return l.Concat(m).ToArray();
            case "*" when a is string s && b is long or bool: return Repeat(s, Py.ToLong(b));
            case "*" when b is string s && a is long or bool: return Repeat(s, Py.ToLong(a));
            case "*" when (a is List<object?> && b is long or bool) || (b is List<object?> && a is long or bool):
            {
                var l = a as List<object?> ?? (List<object?>)b!;
                long n = Math.Max(0, Py.ToLong(a is List<object?> ? b : a));
                return CheckCount(l.Count * n, () => Enumerable.Range(0, (int)n).SelectMany(_ => l).ToList());
            }
            case "%" when a is string fmt: return CheckSize(PercentFormat(fmt, b));
        }
        string sym = op == "+" && a is string ? $"can only concatenate str (not \"{Py.TypeName(b)}\") to str" :
            $"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'";
        throw new TemplateError(sym, Line);
    }

    object? CheckCount(long n, Func<List<object?>> make)
    {
        if (n > _limits.MaxOutputChars) throw new TemplateError($"list exceeds {_limits.MaxOutputChars} items", Line);
        return make();
    }

    string Repeat(string s, long n)
    {
        if (n <= 0 || s.Length == 0) return "";
        if (s.Length * n > _limits.MaxOutputChars) throw new TemplateError($"string exceeds {_limits.MaxOutputChars} characters", Line);
        return new StringBuilder(s.Length * (int)n).Insert(0, s, (int)n).ToString();
    }

    /// <summary>Python's printf-style str % args for %s %r %d %i %f %x %% (flags, width and precision).</summary>
    string PercentFormat(string fmt, object? arg)
    {
        var args = arg is object?[] t ? t.ToList() : [arg];
        var map = arg as Dictionary<object, object?>;
        int next = 0;
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%') { sb.Append(fmt[i]); continue; }
            if (++i >= fmt.Length) throw new TemplateError("incomplete format", Line);
            object? value = null;
            bool haveValue = false;
            if (fmt[i] == '(' && map is not null)
            {
                int close = fmt.IndexOf(')', i);
                if (close < 0) throw new TemplateError("incomplete format key", Line);
                value = map.TryGetValue(fmt[(i + 1)..close], out var v) ? v : throw new TemplateError($"format key '{fmt[(i + 1)..close]}' not found", Line);
                haveValue = true;
                i = close + 1;
            }
            int specStart = i;
            while (i < fmt.Length && "-+ #0123456789.".Contains(fmt[i])) i++;
            if (i >= fmt.Length) throw new TemplateError("incomplete format", Line);
            var spec = fmt[specStart..i];
            char conv = fmt[i];
            if (conv == '%') { sb.Append('%'); continue; }
            if (!haveValue)
            {
                if (next >= args.Count) throw new TemplateError("not enough arguments for format string", Line);
                value = args[next++];
            }
            bool left = spec.Contains('-'), zero = spec.StartsWith('0') || spec.Contains("+0") || spec.Contains("-0");
            var parts = spec.TrimStart('-', '+', ' ', '#', '0').Split('.');
            int width = parts[0].Length > 0 ? int.Parse(parts[0], CultureInfo.InvariantCulture) : 0;
            int? prec = parts.Length > 1 ? (parts[1].Length > 0 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 0) : null;
            string text = conv switch
            {
                's' => Py.Str(value),
                'r' => Py.Repr(value),
                'd' or 'i' => value is double d ? ((long)Math.Truncate(d)).ToString(CultureInfo.InvariantCulture) : Py.IsNumber(value) ? Py.ToLong(value).ToString(CultureInfo.InvariantCulture) : throw new TemplateError($"%{conv} format: a number is required, not {Py.TypeName(value)}", Line),
                'f' or 'F' => Py.IsNumber(value) ? Py.ToDouble(value).ToString("F" + (prec ?? 6), CultureInfo.InvariantCulture) : throw new TemplateError($"%{conv} format: a real number is required, not {Py.TypeName(value)}", Line),
                'x' => Py.IsNumber(value) && value is not double ? Py.ToLong(value).ToString("x", CultureInfo.InvariantCulture) : throw new TemplateError("%x format: an integer is required", Line),
                _ => throw new TemplateError($"unsupported format character '{conv}'", Line),
            };
            if (conv == 's' && prec is int p && p < text.Length) text = text[..p];
            if (spec.Contains('+') && conv is 'd' or 'i' or 'f' or 'F' && !text.StartsWith('-')) text = "+" + text;
            if (text.Length < width)
                text = left ? text.PadRight(width) : zero && conv != 's' && conv != 'r' ? (text.StartsWith('-') || text.StartsWith('+') ? text[0] + text[1..].PadLeft(width - 1, '0') : text.PadLeft(width, '0')) : text.PadLeft(width);
            sb.Append(text);
        }
        if (map is null && next < args.Count && arg is not List<object?>) throw new TemplateError("not all arguments converted during string formatting", Line);
        return sb.ToString();
    }

    static readonly HashSet<string> UnsafeMethods = ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem"];

    internal object? GetAttr(object? obj, string name, int line)
    {
        Line = line;
        switch (obj)
        {
            case Undefined u: throw new TemplateError(u.Message, line);
            case Dictionary<object, object?> d:
                if (Method(d, name) is Callable m) return m;
                if (d.TryGetValue(name, out var v)) return v;
                break;
            case Namespace ns:
                if (ns.Attributes.TryGetValue(name, out var a)) return a;
                break;
            case LoopContext loop: return LoopAttr(loop, name);
            case string or List<object?> or object?[]:
                if (Method(obj, name) is Callable sm) return sm;
                break;
        }
        return new Undefined($"'{Py.TypeName(obj)} object' has no attribute '{name}'");
    }

    internal object? GetItem(object? obj, object? key, int line)
    {
        Line = line;
        switch (obj)
        {
            case Undefined u: throw new TemplateError(u.Message, line);
            case Dictionary<object, object?> d:
                if (key is not null && key is not (List<object?> or Dictionary<object, object?>) && d.TryGetValue(key, out var v)) return v;
                if (key is string s && Method(d, s) is Callable m) return m;
                return new Undefined($"'dict object' has no attribute '{Py.Str(key)}'");
            case IList<object?> or string when key is long or bool:
            {
                bool isString = obj is string;
                int count = isString ? Py.Length((string)obj) : ((IList<object?>)obj).Count;
                long i = Py.ToLong(key);
                if (i < 0) i += count;
                if (i < 0 || i >= count) return new Undefined($"'{Py.TypeName(obj)} object' has no element {Py.Str(key)}");
                return isString ? (Py.HasSurrogates((string)obj) ? Py.CodePoints((string)obj)[(int)i] : ((string)obj)[(int)i].ToString()) : ((IList<object?>)obj)[(int)i];
            }
            case Namespace or LoopContext or string or IList<object?> when key is string ks:
                return GetAttr(obj, ks, line);
        }
        return new Undefined($"'{Py.TypeName(obj)} object' has no element {Py.Repr(key)}");
    }

    object? LoopAttr(LoopContext loop, string name)
    {
        int i = loop.Index0, n = loop.Items.Count;
        return name switch
        {
            "index" => (long)i + 1,
            "index0" => (long)i,
            "revindex" => (long)(n - i),
            "revindex0" => (long)(n - i - 1),
            "first" => i == 0,
            "last" => i == n - 1,
            "length" => (long)n,
            "depth" => (long)loop.Depth0 + 1,
            "depth0" => (long)loop.Depth0,
            "previtem" => i > 0 ? loop.Items[i - 1] : new Undefined("there is no previous item"),
            "nextitem" => i < n - 1 ? loop.Items[i + 1] : new Undefined("there is no next item"),
            "cycle" => new Callable("cycle", (a, _) => a.Count == 0 ? throw new TemplateError("no items for cycling given", Line) : a[i % a.Count]),
            "changed" => new Callable("changed", (a, _) =>
            {
                var v = a.ToArray();
                if (loop.LastChanged is object?[] last && Py.Eq(last, v)) return false;
                loop.LastChanged = v;
                return true;
            }),
            _ => new Undefined($"'LoopContext object' has no attribute '{name}'"),
        };
    }

    object? Slice(object? obj, object? start, object? stop, object? step, int line)
    {
        Line = line;
        if (obj is Undefined u) throw new TemplateError(u.Message, line);
        long? Opt(object? v) => v is null ? null : v is long or bool ? Py.ToLong(v) : throw new TemplateError("slice indices must be integers or None", line);
        long? a = Opt(start), b = Opt(stop), c = Opt(step);
        long st = c ?? 1;
        if (st == 0) throw new TemplateError("slice step cannot be zero", line);
        IList<object?> seq = obj switch
        {
            string s => Py.CodePoints(s).Cast<object?>().ToList(),
            IList<object?> l => l,
            _ => null!,
        };
        if (seq is null) return new Undefined($"'{Py.TypeName(obj)} object' has no element (slice)");
        long n = seq.Count;
        long Clamp(long? v, long dflt)
        {
            if (v is null) return dflt;
            long x = v.Value < 0 ? v.Value + n : v.Value;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long from = Clamp(a, st > 0 ? 0 : n - 1), to = Clamp(b, st > 0 ? n : -1);
        var result = new List<object?>();
        for (long i = from; st > 0 ? i < to : i > to; i += st) result.Add(seq[(int)i]);
        return obj switch
        {
            string => string.Concat(result.Cast<string>()),
            object?[] => result.ToArray(),
            _ => result,
        };
    }
}
