namespace Jevons.Tokenization.Templates;

/// <summary>Recursive descent over the token list, following Jinja2's parser (precedence, tests, filters, statements).</summary>
sealed class TemplateParser
{
    const int MaxDepth = 64;
    readonly List<Token> _tokens;
    int _pos, _depth;

    TemplateParser(List<Token> tokens) => _tokens = tokens;

    public static List<Node> Parse(string source)
    {
        var p = new TemplateParser(TemplateLexer.Tokenize(source));
        var body = p.ParseBody([]);
        if (p.Current.Kind != TokenKind.Eof) throw new TemplateError($"unexpected {p.Current}", p.Current.Line);
        return body;
    }

    Token Current => _tokens[_pos];
    Token Peek(int n = 1) => _tokens[Math.Min(_pos + n, _tokens.Count - 1)];
    Token Next() => _tokens[_pos < _tokens.Count - 1 ? _pos++ : _pos];

    Token Expect(TokenKind kind, string? value = null)
    {
        var t = Current;
        if (t.Kind != kind || (value is not null && t.Value != value))
            throw new TemplateError($"expected {(value is not null ? $"'{value}'" : kind == TokenKind.Name ? "a name" : kind.ToString())}, got {t}", t.Line);
        return Next();
    }

    bool SkipOp(string op)
    {
        if (!Current.IsOp(op)) return false;
        _pos++;
        return true;
    }

    bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        _pos++;
        return true;
    }

    /// <summary>Nodes until a block tag whose first name is one of <paramref name="ends"/> (left unconsumed, after the '{%').</summary>
    List<Node> ParseBody(string[] ends)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var t = Current;
            switch (t.Kind)
            {
                case TokenKind.Eof:
                    if (ends.Length > 0) throw new TemplateError("unexpected end of template: expected " + string.Join(" or ", ends.Select(e => "'{% " + e + " %}'")), t.Line);
                    return nodes;
                case TokenKind.Text:
                    nodes.Add(new TextNode(t.Line, t.Value));
                    Next();
                    break;
                case TokenKind.VariableBegin:
                    Next();
                    var e = ParseTuple();
                    Expect(TokenKind.VariableEnd);
                    nodes.Add(new OutputNode(t.Line, e));
                    break;
                case TokenKind.BlockBegin:
                    if (Peek().Kind == TokenKind.Name && ends.Contains(Peek().Value)) { Next(); return nodes; }
                    Next();
                    nodes.Add(ParseStatement());
                    break;
                default:
                    throw new TemplateError($"unexpected {t}", t.Line);
            }
        }
    }

    Node ParseStatement()
    {
        var t = Expect(TokenKind.Name);
        if (++_depth > MaxDepth) throw new TemplateError($"blocks nested deeper than {MaxDepth} levels", t.Line);
        try { return ParseStatement(t); }
        finally { _depth--; }
    }

    Node ParseStatement(Token t)
    {
        switch (t.Value)
        {
            case "if": return ParseIf(t.Line);
            case "for": return ParseFor(t.Line);
            case "set": return ParseSet(t.Line);
            case "macro": return ParseMacro(t.Line);
            case "call": return ParseCallBlock(t.Line);
            case "filter":
            {
                var filters = ParseFilterChain();
                Expect(TokenKind.BlockEnd);
                var body = ParseBody(["endfilter"]);
                EndTag("endfilter");
                return new FilterBlockNode(t.Line, filters, body);
            }
            case "raw":
            {
                Expect(TokenKind.BlockEnd);
                string text = Current.Kind == TokenKind.Text ? Next().Value : "";
                Expect(TokenKind.BlockBegin);
                EndTag("endraw");
                return new TextNode(t.Line, text);
            }
            case "break" or "continue":
                Expect(TokenKind.BlockEnd);
                return new LoopControlNode(t.Line, t.Value == "break");
            case "generation": // transformers' AssistantTracker: renders its body unchanged
            {
                Expect(TokenKind.BlockEnd);
                var body = ParseBody(["endgeneration"]);
                EndTag("endgeneration");
                return new ScopeNode(t.Line, body);
            }
            case "with":
            {
                var sets = new List<Node>();
                while (Current.Kind != TokenKind.BlockEnd)
                {
                    if (sets.Count > 0) Expect(TokenKind.Operator, ",");
                    var target = ParseAssignTarget();
                    Expect(TokenKind.Operator, "=");
                    sets.Add(new SetNode(t.Line, target, ParseExpression()));
                }
                Expect(TokenKind.BlockEnd);
                var body = ParseBody(["endwith"]);
                EndTag("endwith");
                sets.AddRange(body);
                return new ScopeNode(t.Line, sets);
            }
            default:
                throw new TemplateError($"unknown tag '{t.Value}'", t.Line);
        }
    }

    void EndTag(string name)
    {
        Expect(TokenKind.Name, name);
        Expect(TokenKind.BlockEnd);
    }

    Node ParseIf(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? elseBody = null;
        var cond = ParseTuple();
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"]);
            branches.Add((cond, body));
            var tag = Next();
            if (tag.Value == "elif")
            {
                cond = ParseTuple();
                Expect(TokenKind.BlockEnd);
                continue;
            }
            if (tag.Value == "else")
            {
                Expect(TokenKind.BlockEnd);
                elseBody = ParseBody(["endif"]);
                EndTag("endif");
            }
            else Expect(TokenKind.BlockEnd);
            return new IfNode(line, branches, elseBody);
        }
    }

    Node ParseFor(int line)
    {
        var target = ParseAssignTarget(allowNamespace: false);
        Expect(TokenKind.Name, "in");
        var iter = ParseTuple(withCondExpr: false);
        Expr? filter = null;
        if (SkipName("if")) filter = ParseExpression();
        bool recursive = SkipName("recursive");
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endfor", "else"]);
        List<Node>? elseBody = null;
        if (Next().Value == "else")
        {
            Expect(TokenKind.BlockEnd);
            elseBody = ParseBody(["endfor"]);
            Next();
        }
        Expect(TokenKind.BlockEnd);
        return new ForNode(line, target, iter, filter, body, elseBody, recursive);
    }

    Node ParseSet(int line)
    {
        var target = ParseAssignTarget();
        if (SkipOp("="))
        {
            var value = ParseTuple();
            Expect(TokenKind.BlockEnd);
            return new SetNode(line, target, value);
        }
        var filters = Current.IsOp("|") ? ParseFilterChain() : [];
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endset"]);
        EndTag("endset");
        return new SetBlockNode(line, target, filters, body);
    }

    List<FilterExpr> ParseFilterChain()
    {
        var list = new List<FilterExpr>();
        SkipOp("|");
        do list.Add(ParseFilter(null));
        while (SkipOp("|"));
        return list;
    }

    Expr ParseAssignTarget(bool allowNamespace = true)
    {
        var items = new List<Expr>();
        int line = Current.Line;
        bool paren = SkipOp("(");
        do
        {
            var name = Expect(TokenKind.Name);
            if (allowNamespace && SkipOp("."))
                items.Add(new AttrExpr(name.Line, new NameExpr(name.Line, name.Value), Expect(TokenKind.Name).Value));
            else items.Add(new NameExpr(name.Line, name.Value));
        }
        while (SkipOp(",") && Current.Kind == TokenKind.Name);
        if (paren) Expect(TokenKind.Operator, ")");
        return items.Count == 1 && !paren ? items[0] : new TupleExpr(line, items);
    }

    List<(string, Expr?)> ParseSignature()
    {
        var ps = new List<(string, Expr?)>();
        Expect(TokenKind.Operator, "(");
        while (!SkipOp(")"))
        {
            if (ps.Count > 0) Expect(TokenKind.Operator, ",");
            if (SkipOp(")")) break;
            var name = Expect(TokenKind.Name).Value;
            Expr? def = SkipOp("=") ? ParseExpression() : null;
            ps.Add((name, def));
        }
        return ps;
    }

    Node ParseMacro(int line)
    {
        var name = Expect(TokenKind.Name).Value;
        var ps = ParseSignature();
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endmacro"]);
        Next();
        if (Current.Kind == TokenKind.Name && Current.Value == name) Next();
        Expect(TokenKind.BlockEnd);
        return new MacroNode(line, name, ps, body);
    }

    Node ParseCallBlock(int line)
    {
        var ps = Current.IsOp("(") ? ParseSignature() : [];
        var call = ParseExpression() as CallExpr ?? throw new TemplateError("expected a macro call after 'call'", line);
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endcall"]);
        EndTag("endcall");
        return new CallBlockNode(line, call, ps, body);
    }

    // Expressions, lowest precedence first.

    Expr ParseTuple(bool withCondExpr = true)
    {
        int line = Current.Line;
        var items = new List<Expr>();
        bool comma = false;
        while (true)
        {
            if (items.Count > 0 && !SkipOp(",")) break;
            if (items.Count > 0) comma = true;
            if (items.Count > 0 && IsTupleEnd()) break;
            items.Add(withCondExpr ? ParseExpression() : ParseOr());
        }
        return items.Count == 1 && !comma ? items[0] : new TupleExpr(line, items);
    }

    bool IsTupleEnd() => Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd or TokenKind.Eof || Current.IsOp(")") || Current.IsName("if") || Current.IsName("recursive");

    Expr ParseExpression()
    {
        if (++_depth > MaxDepth) throw new TemplateError($"expression nested deeper than {MaxDepth} levels", Current.Line);
        try
        {
            var e = ParseOr();
            while (Current.IsName("if"))
            {
                int line = Next().Line;
                var cond = ParseOr();
                Expr? otherwise = SkipName("else") ? ParseExpression() : null;
                e = new CondExpr(line, cond, e, otherwise);
            }
            return e;
        }
        finally { _depth--; }
    }

    Expr ParseOr()
    {
        var e = ParseAnd();
        while (Current.IsName("or")) { int l = Next().Line; e = new BinaryExpr(l, "or", e, ParseAnd()); }
        return e;
    }

    Expr ParseAnd()
    {
        var e = ParseNot();
        while (Current.IsName("and")) { int l = Next().Line; e = new BinaryExpr(l, "and", e, ParseNot()); }
        return e;
    }

    Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int l = Next().Line;
            if (++_depth > MaxDepth) throw new TemplateError($"expression nested deeper than {MaxDepth} levels", l);
            try { return new UnaryExpr(l, "not", ParseNot()); }
            finally { _depth--; }
        }
        return ParseCompare();
    }

    Expr ParseCompare()
    {
        int line = Current.Line;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Current;
            if (t.Kind == TokenKind.Operator && t.Value is "==" or "!=" or "<" or "<=" or ">" or ">=") { Next(); rest.Add((t.Value, ParseMath1())); }
            else if (t.IsName("in")) { Next(); rest.Add(("in", ParseMath1())); }
            else if (t.IsName("not") && Peek().IsName("in")) { Next(); Next(); rest.Add(("notin", ParseMath1())); }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(line, first, rest);
    }

    Expr ParseMath1()
    {
        var e = ParseConcat();
        while (Current.IsOp("+") || Current.IsOp("-")) { var t = Next(); e = new BinaryExpr(t.Line, t.Value, e, ParseConcat()); }
        return e;
    }

    Expr ParseConcat()
    {
        var e = ParseMath2();
        while (Current.IsOp("~")) { var t = Next(); e = new BinaryExpr(t.Line, "~", e, ParseMath2()); }
        return e;
    }

    Expr ParseMath2()
    {
        var e = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%") { var t = Next(); e = new BinaryExpr(t.Line, t.Value, e, ParsePow()); }
        return e;
    }

    Expr ParsePow()
    {
        var e = ParseUnary();
        while (Current.IsOp("**")) { var t = Next(); e = new BinaryExpr(t.Line, "**", e, ParseUnary()); }
        return e;
    }

    Expr ParseUnary(bool withFilter = true)
    {
        if (++_depth > MaxDepth) throw new TemplateError($"expression nested deeper than {MaxDepth} levels", Current.Line);
        try
        {
            var t = Current;
            Expr e;
            if (t.IsOp("-")) { Next(); e = new UnaryExpr(t.Line, "-", ParseUnary(false)); }
            else if (t.IsOp("+")) { Next(); e = new UnaryExpr(t.Line, "+", ParseUnary(false)); }
            else e = ParsePrimary();
            e = ParsePostfix(e);
            if (withFilter) e = ParseFilterExpr(e);
            return e;
        }
        finally { _depth--; }
    }

    Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(t.Line, true),
                    "false" or "False" => new LiteralExpr(t.Line, false),
                    "none" or "None" => new LiteralExpr(t.Line, null),
                    _ => new NameExpr(t.Line, t.Value),
                };
            case TokenKind.String:
            {
                var s = (string)t.Literal!;
                while (Current.Kind == TokenKind.String) s += (string)Next().Literal!;
                return new LiteralExpr(t.Line, s);
            }
            case TokenKind.Integer:
            case TokenKind.Float:
                return new LiteralExpr(t.Line, t.Literal);
            case TokenKind.Operator when t.Value == "(":
            {
                if (SkipOp(")")) return new TupleExpr(t.Line, []);
                var e = ParseTuple();
                Expect(TokenKind.Operator, ")");
                return e;
            }
            case TokenKind.Operator when t.Value == "[":
            {
                var items = new List<Expr>();
                while (!SkipOp("]"))
                {
                    if (items.Count > 0) { Expect(TokenKind.Operator, ","); if (SkipOp("]")) break; }
                    items.Add(ParseExpression());
                }
                return new ListExpr(t.Line, items);
            }
            case TokenKind.Operator when t.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!SkipOp("}"))
                {
                    if (items.Count > 0) { Expect(TokenKind.Operator, ","); if (SkipOp("}")) break; }
                    var k = ParseExpression();
                    Expect(TokenKind.Operator, ":");
                    items.Add((k, ParseExpression()));
                }
                return new DictExpr(t.Line, items);
            }
            default:
                throw new TemplateError($"unexpected {t}", t.Line);
        }
    }

    Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOp("."))
            {
                Next();
                var n = Next();
                if (n.Kind == TokenKind.Name) e = new AttrExpr(t.Line, e, n.Value);
                else if (n.Kind == TokenKind.Integer) e = new ItemExpr(t.Line, e, new LiteralExpr(n.Line, n.Literal));
                else throw new TemplateError($"expected an attribute name after '.', got {n}", n.Line);
            }
            else if (t.IsOp("[")) { Next(); e = ParseSubscript(e, t.Line); }
            else if (t.IsOp("(")) e = ParseCall(e);
            else return e;
        }
    }

    Expr ParseSubscript(Expr target, int line)
    {
        Expr? start = null, stop = null, step = null;
        bool slice = false;
        if (!Current.IsOp(":")) start = ParseExpression();
        if (SkipOp(":"))
        {
            slice = true;
            if (!Current.IsOp("]") && !Current.IsOp(":")) stop = ParseExpression();
            if (SkipOp(":") && !Current.IsOp("]")) step = ParseExpression();
        }
        Expect(TokenKind.Operator, "]");
        return slice ? new SliceExpr(line, target, start, stop, step) : new ItemExpr(line, target, start!);
    }

    (List<Expr>, List<(string, Expr)>) ParseArgs()
    {
        Expect(TokenKind.Operator, "(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!SkipOp(")"))
        {
            if (args.Count + kwargs.Count > 0) { Expect(TokenKind.Operator, ","); if (SkipOp(")")) break; }
            if (Current.Kind == TokenKind.Name && Peek().IsOp("="))
            {
                var name = Next().Value;
                Next();
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw new TemplateError("positional argument after keyword argument", Current.Line);
                args.Add(ParseExpression());
            }
        }
        return (args, kwargs);
    }

    Expr ParseCall(Expr target)
    {
        int line = Current.Line;
        var (args, kwargs) = ParseArgs();
        return new CallExpr(line, target, args, kwargs);
    }

    Expr ParseFilterExpr(Expr e)
    {
        while (true)
        {
            if (Current.IsOp("|")) { Next(); e = ParseFilter(e); }
            else if (Current.IsName("is")) { Next(); e = ParseTest(e); }
            else if (Current.IsOp("(")) e = ParseCall(e);
            else return e;
        }
    }

    FilterExpr ParseFilter(Expr? target)
    {
        var t = Expect(TokenKind.Name);
        var name = t.Value;
        while (Current.IsOp(".")) { Next(); name += "." + Expect(TokenKind.Name).Value; }
        if (!Current.IsOp("(")) return new FilterExpr(t.Line, target, name, [], []);
        var (args, kwargs) = ParseArgs();
        return new FilterExpr(t.Line, target, name, args, kwargs);
    }

    Expr ParseTest(Expr target)
    {
        bool negated = SkipName("not");
        var t = Expect(TokenKind.Name);
        var name = t.Value;
        while (Current.IsOp(".")) { Next(); name += "." + Expect(TokenKind.Name).Value; }
        var args = new List<Expr>();
        var c = Current;
        if (c.IsOp("("))
        {
            var (a, kw) = ParseArgs();
            args.AddRange(a);
            args.AddRange(kw.Select(k => k.Item2));
        }
        else if ((c.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || c.IsOp("[") || c.IsOp("{"))
            && !c.IsName("else") && !c.IsName("or") && !c.IsName("and"))
        {
            if (c.IsName("is")) throw new TemplateError("tests cannot be chained with 'is'", c.Line);
            args.Add(ParsePostfix(ParsePrimary()));
        }
        return new TestExpr(t.Line, target, name, args, negated);
    }
}
