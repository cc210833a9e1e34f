namespace Jevons.Tokenization.Templates;

// Statements.
abstract record Node(int Line);
sealed record TextNode(int Line, string Text) : Node(Line);
sealed record OutputNode(int Line, Expr Value) : Node(Line);
sealed record IfNode(int Line, List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else) : Node(Line);
sealed record ForNode(int Line, Expr Target, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else, bool Recursive) : Node(Line);
sealed record SetNode(int Line, Expr Target, Expr Value) : Node(Line);
sealed record SetBlockNode(int Line, Expr Target, List<FilterExpr> Filters, List<Node> Body) : Node(Line);
sealed record MacroNode(int Line, string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body) : Node(Line);
sealed record CallBlockNode(int Line, CallExpr Call, List<(string Name, Expr? Default)> Parameters, List<Node> Body) : Node(Line);
sealed record FilterBlockNode(int Line, List<FilterExpr> Filters, List<Node> Body) : Node(Line);
sealed record LoopControlNode(int Line, bool IsBreak) : Node(Line);
sealed record ScopeNode(int Line, List<Node> Body) : Node(Line);

// Expressions.
abstract record Expr(int Line);
sealed record LiteralExpr(int Line, object? Value) : Expr(Line);
sealed record NameExpr(int Line, string Name) : Expr(Line);
sealed record AttrExpr(int Line, Expr Target, string Name) : Expr(Line);
sealed record ItemExpr(int Line, Expr Target, Expr Index) : Expr(Line);
sealed record SliceExpr(int Line, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Line);
sealed record CallExpr(int Line, Expr Target, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
sealed record FilterExpr(int Line, Expr? Target, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Line);
sealed record TestExpr(int Line, Expr Target, string Name, List<Expr> Args, bool Negated) : Expr(Line);
sealed record UnaryExpr(int Line, string Op, Expr Operand) : Expr(Line);
sealed record BinaryExpr(int Line, string Op, Expr Left, Expr Right) : Expr(Line);
sealed record CompareExpr(int Line, Expr First, List<(string Op, Expr Right)> Rest) : Expr(Line);
sealed record CondExpr(int Line, Expr Condition, Expr Then, Expr? Else) : Expr(Line);
sealed record ListExpr(int Line, List<Expr> Items) : Expr(Line);
sealed record TupleExpr(int Line, List<Expr> Items) : Expr(Line);
sealed record DictExpr(int Line, List<(Expr Key, Expr Value)> Items) : Expr(Line);
