using System.Text;

namespace Jevons.Tokenization.Templates;

/// <summary>Limits that keep a hostile template from hanging or exhausting memory.</summary>
public sealed record TemplateLimits
{
    /// <summary>Most characters one render (or one macro, block set or filter block) may produce.</summary>
    public int MaxOutputChars { get; init; } = 8 << 20;

    /// <summary>Most loop iterations plus macro calls in one render.</summary>
    public long MaxSteps { get; init; } = 5_000_000;

    /// <summary>Deepest nesting of macro calls and recursive loops.</summary>
    public int MaxCallDepth { get; init; } = 100;
}

sealed class Scope(Scope? parent)
{
    public readonly Dictionary<string, object?> Vars = new(StringComparer.Ordinal);
    public Scope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var s = this; s is not null; s = s.Parent)
            if (s.Vars.TryGetValue(name, out value)) return true;
        value = null;
        return false;
    }
}

/// <summary>The `loop` variable of a for loop.</summary>
sealed class LoopContext(List<object?> items, int depth0, Callable? recurse)
{
    public readonly List<object?> Items = items;
    public int Index0;
    public readonly int Depth0 = depth0;
    public readonly Callable? Recurse = recurse;
    public object? LastChanged = new object();
}

enum Flow { Normal, Break, Continue }

/// <summary>Walks the AST. One instance per render; not thread-safe.</summary>
sealed partial class TemplateInterpreter
{
    readonly TemplateLimits _limits;
    readonly Func<DateTimeOffset> _clock;
    long _steps;
    int _callDepth;
    internal int Line;

    public TemplateInterpreter(TemplateLimits limits, Func<DateTimeOffset> clock)
    {
        _limits = limits;
        _clock = clock;
    }

    public string Render(List<Node> nodes, IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new Scope(null);
        AddGlobals(globals);
        var scope = new Scope(globals);
        foreach (var (k, v) in variables) scope.Vars[k] = v;
        var sb = new StringBuilder();
        if (Exec(nodes, scope, sb) != Flow.Normal) throw new TemplateError("'break' or 'continue' outside a loop", Line);
        return sb.ToString();
    }

    void Step()
    {
        if (++_steps > _limits.MaxSteps) throw new TemplateError($"template ran more than {_limits.MaxSteps} loop iterations and macro calls", Line);
    }

    void Write(StringBuilder sb, string s)
    {
        if (sb.Length + (long)s.Length > _limits.MaxOutputChars)
            throw new TemplateError($"template output exceeds {_limits.MaxOutputChars} characters", Line);
        sb.Append(s);
    }

    internal string CheckSize(string s)
    {
        if (s.Length > _limits.MaxOutputChars) throw new TemplateError($"string exceeds {_limits.MaxOutputChars} characters", Line);
        return s;
    }

    Flow Exec(List<Node> nodes, Scope scope, StringBuilder sb)
    {
        foreach (var node in nodes)
        {
            Line = node.Line;
            switch (node)
            {
                case TextNode t: Write(sb, t.Text); break;
                case OutputNode o: Write(sb, Py.Str(Eval(o.Value, scope))); break;
                case IfNode n:
                {
                    List<Node>? body = n.Else;
                    foreach (var (cond, b) in n.Branches)
                        if (Py.Truthy(Eval(cond, scope))) { body = b; break; }
                    if (body is not null)
                    {
                        var flow = Exec(body, scope, sb);
                        if (flow != Flow.Normal) return flow;
                    }
                    break;
                }
                case ForNode f: RunLoop(f, Eval(f.Iterable, scope), scope, sb, 0); break;
                case SetNode s: Assign(s.Target, Eval(s.Value, scope), scope); break;
                case SetBlockNode s:
                {
                    var inner = new StringBuilder();
                    Exec(s.Body, new Scope(scope), inner);
                    object? value = inner.ToString();
                    foreach (var f in s.Filters) value = ApplyFilter(f, value, scope);
                    Assign(s.Target, value, scope);
                    break;
                }
                case MacroNode m: scope.Vars[m.Name] = MakeMacro(m.Name, m.Parameters, m.Body, scope); break;
                case CallBlockNode c:
                {
                    var caller = MakeMacro("caller", c.Parameters, c.Body, scope);
                    var callee = Eval(c.Call.Target, scope);
                    var (args, kwargs) = EvalArgs(c.Call.Args, c.Call.Kwargs, scope);
                    kwargs["caller"] = caller;
                    Write(sb, Py.Str(Invoke(callee, args, kwargs, c.Call.Target)));
                    break;
                }
                case FilterBlockNode fb:
                {
                    var inner = new StringBuilder();
                    Exec(fb.Body, new Scope(scope), inner);
                    object? value = inner.ToString();
                    foreach (var f in fb.Filters) value = ApplyFilter(f, value, scope);
                    Write(sb, Py.Str(value));
                    break;
                }
                case LoopControlNode lc: return lc.IsBreak ? Flow.Break : Flow.Continue;
                case ScopeNode sn:
                {
                    var flow = Exec(sn.Body, new Scope(scope), sb);
                    if (flow != Flow.Normal) return flow;
                    break;
                }
                default: throw new TemplateError($"unsupported node {node.GetType().Name}", node.Line);
            }
        }
        return Flow.Normal;
    }

    void RunLoop(ForNode f, object? iterable, Scope scope, StringBuilder sb, int depth0)
    {
        var items = Iterate(iterable);
        if (f.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                Step();
                var s = new Scope(scope);
                Assign(f.Target, item, s);
                if (Py.Truthy(Eval(f.Filter, s))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (f.Else is not null) Exec(f.Else, new Scope(scope), sb);
            return;
        }
        Callable? recurse = null;
        if (f.Recursive)
            recurse = new Callable("loop", (args, _) =>
            {
                if (args.Count != 1) throw new TemplateError("loop() takes exactly one argument", Line);
                EnterCall();
                try
                {
                    var inner = new StringBuilder();
                    RunLoop(f, args[0], scope, inner, depth0 + 1);
                    return inner.ToString();
                }
                finally { _callDepth--; }
            });
        var loop = new LoopContext(items, depth0, recurse);
        for (int i = 0; i < items.Count; i++)
        {
            Step();
            loop.Index0 = i;
            var s = new Scope(scope);
            s.Vars["loop"] = loop;
            Assign(f.Target, items[i], s);
            if (Exec(f.Body, s, sb) == Flow.Break) break;
        }
    }

    void EnterCall()
    {
        if (++_callDepth > _limits.MaxCallDepth)
        {
            _callDepth--;
            throw new TemplateError($"macro calls nested deeper than {_limits.MaxCallDepth}", Line);
        }
        Step();
    }

    Callable MakeMacro(string name, List<(string Name, Expr? Default)> ps, List<Node> body, Scope closure) =>
        new(name, (args, kwargs) =>
        {
            EnterCall();
            int line = Line;
            try
            {
                var s = new Scope(closure);
                var varargs = new List<object?>();
                for (int i = 0; i < args.Count; i++)
                    if (i < ps.Count) s.Vars[ps[i].Name] = args[i];
                    else varargs.Add(args[i]);
                var extra = Py.NewDict();
                foreach (var (k, v) in kwargs)
                {
                    if (k == "caller") { s.Vars["caller"] = v; continue; }
                    int idx = ps.FindIndex(p => p.Name == k);
                    if (idx < 0) { extra[k] = v; continue; }
                    if (idx < args.Count) throw new TemplateError($"macro '{name}' got multiple values for argument '{k}'", line);
                    s.Vars[k] = v;
                }
                foreach (var (pn, def) in ps)
                    if (!s.Vars.ContainsKey(pn))
                        s.Vars[pn] = def is null ? new Undefined($"parameter '{pn}' was not provided") : Eval(def, s);
                s.Vars["varargs"] = varargs.ToArray();
                s.Vars["kwargs"] = extra;
                var sb = new StringBuilder();
                Exec(body, s, sb);
                return sb.ToString();
            }
            finally
            {
                _callDepth--;
                Line = line;
            }
        });

    void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr n:
                scope.Vars[n.Name] = value;
                break;
            case TupleExpr t:
            {
                var items = Iterate(value);
                if (items.Count != t.Items.Count)
                    throw new TemplateError(items.Count > t.Items.Count ? $"too many values to unpack (expected {t.Items.Count})"
                        : $"not enough values to unpack (expected {t.Items.Count}, got {items.Count})", Line);
                for (int i = 0; i < items.Count; i++) Assign(t.Items[i], items[i], scope);
                break;
            }
            case AttrExpr { Target: NameExpr ns } a:
            {
                scope.TryGet(ns.Name, out var obj);
                if (obj is not Namespace n) throw new TemplateError($"cannot assign attribute on non-namespace object '{ns.Name}'", Line);
                n.Attributes[a.Name] = value;
                break;
            }
            default: throw new TemplateError("cannot assign to this expression", Line);
        }
    }

    /// <summary>What a for loop sees: list and tuple items, dict keys, string characters; undefined is empty.</summary>
    internal List<object?> Iterate(object? v) => v switch
    {
        List<object?> l => new List<object?>(l),
        object?[] t => new List<object?>(t),
        Dictionary<object, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => Py.CodePoints(s).Cast<object?>().ToList(),
        Undefined => [],
        _ => throw new TemplateError($"'{Py.TypeName(v)}' object is not iterable", Line),
    };

    (List<object?>, Dictionary<string, object?>) EvalArgs(List<Expr> args, List<(string Name, Expr Value)> kwargs, Scope scope)
    {
        var a = new List<object?>(args.Count);
        foreach (var e in args) a.Add(Eval(e, scope));
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (n, e) in kwargs) k[n] = Eval(e, scope);
        return (a, k);
    }

    object? Invoke(object? callee, List<object?> args, Dictionary<string, object?> kwargs, Expr at)
    {
        if (callee is Callable c) return c.Invoke(args, kwargs);
        if (callee is LoopContext { Recurse: Callable r }) return r.Invoke(args, kwargs);
        if (callee is Undefined u) throw new TemplateError(u.Message, at.Line);
        throw new TemplateError($"'{Py.TypeName(callee)}' object is not callable", at.Line);
    }

    internal object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n:
                return scope.TryGet(n.Name, out var v) ? v : new Undefined($"'{n.Name}' is undefined");
            case AttrExpr a: return GetAttr(Eval(a.Target, scope), a.Name, a.Line);
            case ItemExpr i: return GetItem(Eval(i.Target, scope), Eval(i.Index, scope), i.Line);
            case SliceExpr s:
            {
                var target = Eval(s.Target, scope);
                return Slice(target, s.Start is null ? null : Eval(s.Start, scope), s.Stop is null ? null : Eval(s.Stop, scope),
                    s.Step is null ? null : Eval(s.Step, scope), s.Line);
            }
            case CallExpr c:
            {
                var callee = Eval(c.Target, scope);
                var (args, kwargs) = EvalArgs(c.Args, c.Kwargs, scope);
                Line = c.Line;
                return Invoke(callee, args, kwargs, c);
            }
            case FilterExpr f: return ApplyFilter(f, Eval(f.Target!, scope), scope);
            case TestExpr t:
            {
                var value = Eval(t.Target, scope);
                var args = new List<object?>(t.Args.Count);
                foreach (var x in t.Args) args.Add(Eval(x, scope));
                Line = t.Line;
                return ApplyTest(t.Name, value, args, scope) != t.Negated;
            }
            case UnaryExpr u:
            {
                var x = Eval(u.Operand, scope);
                Line = u.Line;
                if (u.Op == "not") return !Py.Truthy(x);
                return x switch
                {
                    long l => (object)(u.Op == "-" ? checked(-l) : l),
                    double d => u.Op == "-" ? -d : d,
                    bool b => u.Op == "-" ? -(b ? 1L : 0L) : (b ? 1L : 0L),
                    Undefined un => throw new TemplateError(un.Message, u.Line),
                    _ => throw new TemplateError($"bad operand type for unary {u.Op}: '{Py.TypeName(x)}'", u.Line),
                };
            }
            case BinaryExpr b:
            {
                if (b.Op == "and") { var l = Eval(b.Left, scope); return Py.Truthy(l) ? Eval(b.Right, scope) : l; }
                if (b.Op == "or") { var l = Eval(b.Left, scope); return Py.Truthy(l) ? l : Eval(b.Right, scope); }
                var left = Eval(b.Left, scope);
                var right = Eval(b.Right, scope);
                Line = b.Line;
                return Binary(b.Op, left, right);
            }
            case CompareExpr c:
            {
                var left = Eval(c.First, scope);
                foreach (var (op, re) in c.Rest)
                {
                    var right = Eval(re, scope);
                    Line = c.Line;
                    if (!CompareOp(op, left, right)) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr c:
                return Py.Truthy(Eval(c.Condition, scope)) ? Eval(c.Then, scope)
                    : c.Else is null ? new Undefined("the inline if expression has no else branch") : Eval(c.Else, scope);
            case ListExpr l:
            {
                var list = new List<object?>(l.Items.Count);
                foreach (var x in l.Items) list.Add(Eval(x, scope));
                return list;
            }
            case TupleExpr t:
            {
                var arr = new object?[t.Items.Count];
                for (int i = 0; i < arr.Length; i++) arr[i] = Eval(t.Items[i], scope);
                return arr;
            }
            case DictExpr d:
            {
                var dict = Py.NewDict();
                foreach (var (k, x) in d.Items)
                {
                    var key = Eval(k, scope);
                    if (key is null or List<object?> or Dictionary<object, object?> or Undefined or Namespace)
                        throw new TemplateError($"unsupported dict key type: '{Py.TypeName(key)}'", d.Line);
                    dict[key] = Eval(x, scope);
                }
                return dict;
            }
            default: throw new TemplateError($"unsupported expression {e.GetType().Name}", e.Line);
        }
    }

    internal bool CompareOp(string op, object? a, object? b) => op switch
    {
        "==" => Py.Eq(a, b),
        "!=" => !Py.Eq(a, b),
        "<" => Py.Compare(a, b, op) < 0,
        "<=" => Py.Compare(a, b, op) <= 0,
        ">" => Py.Compare(a, b, op) > 0,
        ">=" => Py.Compare(a, b, op) >= 0,
        "in" => Contains(b, a),
        "notin" => !Contains(b, a),
        _ => throw new TemplateError($"unknown comparison {op}", Line),
    };

    internal bool Contains(object? container, object? item) => container switch
    {
        string s => item is string t ? s.Contains(t, StringComparison.Ordinal)
            : throw new TemplateError($"'in <string>' requires string as left operand, not {Py.TypeName(item)}", Line),
        IList<object?> l => l.Any(x => Py.Eq(x, item)),
        Dictionary<object, object?> d => item is null ? false
            : IsHashable(item) ? d.ContainsKey(item) : throw new TemplateError($"unhashable type: '{Py.TypeName(item)}'", Line),
        Undefined => false,
        Namespace ns => item is string k && ns.Attributes.ContainsKey(k),
        _ => throw new TemplateError($"argument of type '{Py.TypeName(container)}' is not iterable", Line),
    };

    static bool IsHashable(object o) => o is not (List<object?> or Dictionary<object, object?>);
}
