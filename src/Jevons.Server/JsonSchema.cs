using System.Diagnostics.CodeAnalysis;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Jevons.Server;

/// <summary>JSON value kinds a schema allows.</summary>
[Flags]
enum JsonTypes : byte
{
    None = 0, Object = 1, Array = 2, String = 4, Number = 8, Integer = 16, Boolean = 32, Null = 64,
    All = Object | Array | String | Number | Integer | Boolean | Null,
}

/// <summary>
/// One compiled JSON Schema node, the form <see cref="JsonConstraint"/> walks. A node is either a
/// union (<see cref="AnyOf"/>), a set of literal values (enum / const, compact JSON bytes), or a set
/// of types with their keywords. <see cref="Satisfiable"/> says whether any value conforms: the
/// recognizer never enters an unsatisfiable node, so every prefix it allows can be completed.
/// </summary>
sealed class SchemaNode
{
    public JsonTypes Types = JsonTypes.All;
    public SchemaNode[]? AnyOf;
    public byte[][]? Literals;
    public SchemaProperty[] Properties = [];
    /// <summary>Bit i: Properties[i] is required.</summary>
    public ulong Required;
    /// <summary>Schema of keys not in Properties; null = none allowed.</summary>
    public SchemaNode? Additional;
    public SchemaNode? Items;
    public int MinItems, MaxItems = int.MaxValue;
    public int MinLength, MaxLength = int.MaxValue;
    public bool Satisfiable;
    /// <summary>Bytes of the shortest conforming value (compact JSON); <see cref="Unbounded"/> when none.</summary>
    public int MinBytes = Unbounded;

    public const int Unbounded = int.MaxValue / 4;

    /// <summary>Bytes a key costs in the output: its quotes, its name and the colon.</summary>
    public static int KeyBytes(SchemaProperty p) => 1 + p.Key.Length + 1;

    /// <summary>Any JSON value.</summary>
    public static SchemaNode Any()
    {
        var any = new SchemaNode { Satisfiable = true, MinBytes = 1 };
        any.Additional = any;
        any.Items = any;
        return any;
    }

    /// <summary>response_format json_object: any JSON object.</summary>
    public static SchemaNode AnyObject()
    {
        var any = Any();
        return new SchemaNode { Types = JsonTypes.Object, Additional = any, Items = any, Satisfiable = true, MinBytes = 2 };
    }
}

/// <param name="Key">The name as the output spells it: JSON-escaped UTF-8 and the closing quote.</param>
sealed record SchemaProperty(string Name, byte[] Key, SchemaNode Node);

/// <summary>
/// Compiles the schema of response_format json_schema into <see cref="SchemaNode"/>s: the common
/// subset (type incl. type arrays and nullable, properties, required, additionalProperties, enum,
/// const, items, minItems / maxItems, minLength / maxLength, anyOf, $ref to $defs / definitions).
/// Annotations are ignored; any other keyword is a 400 naming it. With strict, OpenAI's rules
/// hold too: every object lists all its properties in required and sets additionalProperties false.
/// </summary>
sealed class JsonSchemaCompiler
{
    public const int MaxProperties = 64;
    const int MaxNodes = 10_000;

    static readonly HashSet<string> Annotations = ["title", "description", "default", "examples", "$schema", "$id", "$comment",
        "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict"];
    static readonly HashSet<string> Supported = ["type", "properties", "required", "additionalProperties", "enum", "const", "items",
        "minItems", "maxItems", "anyOf", "minLength", "maxLength", "nullable", "$ref"];
    static readonly JsonWriterOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    readonly JsonElement _root;
    readonly string _param;
    readonly bool _strict;
    readonly Dictionary<string, SchemaNode> _byPath = [];
    readonly List<SchemaNode> _nodes = [];
    readonly SchemaNode _any = SchemaNode.Any();

    JsonSchemaCompiler(JsonElement root, string param, bool strict)
    {
        _root = root;
        _param = param;
        _strict = strict;
    }

    /// <summary>The schema's root node; <paramref name="param"/> prefixes the paths in error messages.</summary>
    public static SchemaNode Compile(JsonElement schema, string param, bool strict)
    {
        var c = new JsonSchemaCompiler(schema, param, strict);
        var root = c.Node(schema, "", 0);
        c.SolveSatisfiable();
        c.SolveMinBytes();
        if (!root.Satisfiable) c.Error("", "no JSON value satisfies this schema");
        return root;
    }

    [DoesNotReturn]
    void Error(string at, string why) =>
        ApiException.BadRequest($"{_param}{(at.Length > 0 ? "." + at : "")}: {why}", _param + (at.Length > 0 ? "." + at : ""), "invalid_json_schema");

    static string Join(string at, string key) => at.Length == 0 ? key : at + "." + key;

    SchemaNode Node(JsonElement e, string at, int depth)
    {
        if (_byPath.TryGetValue(at, out var known)) return known;
        if (depth > 64) Error(at, "the schema nests deeper than 64 levels");
        if (e.ValueKind == JsonValueKind.True) return _byPath[at] = _any;
        if (e.ValueKind == JsonValueKind.False) return Register(at, new SchemaNode { Types = JsonTypes.None });
        if (e.ValueKind != JsonValueKind.Object) Error(at, "a schema must be an object (or true / false)");
        foreach (var p in e.EnumerateObject())
            if (!Supported.Contains(p.Name) && !Annotations.Contains(p.Name))
                Error(Join(at, p.Name), $"the keyword '{p.Name}' is not supported (supported: {string.Join(", ", Supported)})");

        if (e.TryGetProperty("$ref", out var reference))
        {
            foreach (var p in e.EnumerateObject())
                if (p.Name != "$ref" && Supported.Contains(p.Name)) Error(Join(at, p.Name), $"'{p.Name}' beside $ref is not supported");
            if (reference.ValueKind != JsonValueKind.String) Error(Join(at, "$ref"), "$ref must be a string");
            var (target, path) = Resolve(reference.GetString()!, Join(at, "$ref"));
            // A $ref node is its target; a cycle of bare references has no value.
            if (path == at || depth > 60) Error(Join(at, "$ref"), $"'{reference.GetString()}' refers to itself");
            var resolved = Node(target, path, depth + 1);
            _byPath[at] = resolved;
            return resolved;
        }

        var node = Register(at, new SchemaNode());
        if (e.TryGetProperty("anyOf", out var anyOf))
        {
            foreach (var p in e.EnumerateObject())
                if (p.Name != "anyOf" && Supported.Contains(p.Name)) Error(Join(at, p.Name), $"'{p.Name}' beside anyOf is not supported (move it into each alternative)");
            if (anyOf.ValueKind != JsonValueKind.Array || anyOf.GetArrayLength() == 0) Error(Join(at, "anyOf"), "anyOf must be a non-empty array of schemas");
            node.AnyOf = [.. anyOf.EnumerateArray().Select((alt, i) => Node(alt, $"{Join(at, "anyOf")}[{i}]", depth + 1))];
            return node;
        }

        node.Types = Types(e, at);
        if (e.TryGetProperty("nullable", out var nullable))
        {
            if (nullable.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) Error(Join(at, "nullable"), "nullable must be a boolean");
            if (nullable.ValueKind == JsonValueKind.True) node.Types |= JsonTypes.Null;
        }
        if (e.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0) Error(Join(at, "enum"), "enum must be a non-empty array");
            node.Literals = [.. values.EnumerateArray().Where(v => Allows(node.Types, v)).Select(Serialize)];
        }
        if (e.TryGetProperty("const", out var constant))
        {
            var literal = Allows(node.Types, constant) ? Serialize(constant) : null;
            node.Literals = literal is null ? [] : node.Literals is null ? [literal] : [.. node.Literals.Where(l => l.AsSpan().SequenceEqual(literal))];
        }

        node.MinLength = Count(e, "minLength", at, 0);
        node.MaxLength = Count(e, "maxLength", at, int.MaxValue);
        if (node.MinLength > node.MaxLength) Error(Join(at, "minLength"), $"minLength {node.MinLength} is over maxLength {node.MaxLength}");
        node.MinItems = Count(e, "minItems", at, 0);
        node.MaxItems = Count(e, "maxItems", at, int.MaxValue);
        if (node.MinItems > node.MaxItems) Error(Join(at, "minItems"), $"minItems {node.MinItems} is over maxItems {node.MaxItems}");
        node.Items = e.TryGetProperty("items", out var items)
            ? items.ValueKind == JsonValueKind.Array ? Fail<SchemaNode>(Join(at, "items"), "items must be one schema (tuple items are not supported)") : Node(items, Join(at, "items"), depth + 1)
            : _any;

        var properties = new List<SchemaProperty>();
        if (e.TryGetProperty("properties", out var props))
        {
            if (props.ValueKind != JsonValueKind.Object) Error(Join(at, "properties"), "properties must be an object of schemas");
            foreach (var p in props.EnumerateObject())
                properties.Add(new SchemaProperty(p.Name, Key(p.Name), Node(p.Value, Join(Join(at, "properties"), p.Name), depth + 1)));
            if (properties.Count > MaxProperties) Error(Join(at, "properties"), $"an object has {properties.Count} properties; at most {MaxProperties} are supported");
        }
        node.Properties = [.. properties];
        if (e.TryGetProperty("required", out var required))
        {
            if (required.ValueKind != JsonValueKind.Array) Error(Join(at, "required"), "required must be an array of property names");
            foreach (var r in required.EnumerateArray())
            {
                int i = r.ValueKind == JsonValueKind.String ? properties.FindIndex(p => p.Name == r.GetString()) : -2;
                if (i == -2) Error(Join(at, "required"), "required must be an array of property names");
                if (i < 0) Error(Join(at, "required"), $"'{r.GetString()}' is required but not in properties");
                node.Required |= 1UL << i;
            }
        }
        if (e.TryGetProperty("additionalProperties", out var additional))
            node.Additional = additional.ValueKind == JsonValueKind.False ? null : Node(additional, Join(at, "additionalProperties"), depth + 1);
        else node.Additional = _any;

        if (_strict && node.Types.HasFlag(JsonTypes.Object) && node.Literals is null)
        {
            if (additional.ValueKind != JsonValueKind.False)
                Error(Join(at, "additionalProperties"), "strict mode needs additionalProperties: false on every object");
            ulong all = properties.Count == 64 ? ulong.MaxValue : (1UL << properties.Count) - 1;
            if (node.Required != all)
                Error(Join(at, "required"), $"strict mode needs every property in required (missing: {string.Join(", ", properties.Where((_, i) => (node.Required & (1UL << i)) == 0).Select(p => p.Name))})");
        }
        return node;
    }

    T Fail<T>(string at, string why)
    {
        Error(at, why);
        return default!;
    }

    SchemaNode Register(string at, SchemaNode node)
    {
        if (_nodes.Count >= MaxNodes) Error(at, $"the schema has more than {MaxNodes} nodes");
        _byPath[at] = node;
        _nodes.Add(node);
        return node;
    }

    (JsonElement Target, string Path) Resolve(string reference, string at)
    {
        if (reference == "#") return (_root, "");
        string[] parts = reference.StartsWith("#/", StringComparison.Ordinal) ? reference[2..].Split('/') : [];
        if (parts.Length != 2 || parts[0] is not ("$defs" or "definitions"))
            Error(at, $"$ref '{reference}' is not supported (only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\")");
        var name = parts[1].Replace("~1", "/").Replace("~0", "~");
        JsonElement target = default;
        if (!_root.TryGetProperty(parts[0], out var defs) || defs.ValueKind != JsonValueKind.Object || !defs.TryGetProperty(name, out target))
            Error(at, $"$ref '{reference}' names no definition");
        return (target, Join(parts[0], name));
    }

    JsonTypes Types(JsonElement e, string at)
    {
        if (!e.TryGetProperty("type", out var type))
        {
            // No type: the keywords present say which kind is meant (fewer kinds still conform).
            if (e.TryGetProperty("properties", out _) || e.TryGetProperty("required", out _) || e.TryGetProperty("additionalProperties", out _)) return JsonTypes.Object;
            if (e.TryGetProperty("items", out _) || e.TryGetProperty("minItems", out _) || e.TryGetProperty("maxItems", out _)) return JsonTypes.Array;
            if (e.TryGetProperty("minLength", out _) || e.TryGetProperty("maxLength", out _)) return JsonTypes.String;
            return JsonTypes.All;
        }
        var names = type.ValueKind switch
        {
            JsonValueKind.String => [type],
            JsonValueKind.Array => type.EnumerateArray().ToArray(),
            _ => [],
        };
        if (names.Length == 0) Error(Join(at, "type"), "type must be a type name or a non-empty array of them");
        var types = JsonTypes.None;
        foreach (var n in names)
        {
            types |= n.ValueKind == JsonValueKind.String ? n.GetString() switch
            {
                "object" => JsonTypes.Object, "array" => JsonTypes.Array, "string" => JsonTypes.String, "number" => JsonTypes.Number,
                "integer" => JsonTypes.Integer, "boolean" => JsonTypes.Boolean, "null" => JsonTypes.Null,
                _ => Fail<JsonTypes>(Join(at, "type"), $"type '{n.GetString()}' is not one of object, array, string, number, integer, boolean, null"),
            } : Fail<JsonTypes>(Join(at, "type"), "type names must be strings");
        }
        return types;
    }

    int Count(JsonElement e, string keyword, string at, int absent)
    {
        if (!e.TryGetProperty(keyword, out var v)) return absent;
        int n = -1;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out n) || n < 0) Error(Join(at, keyword), $"{keyword} must be a non-negative integer");
        return n;
    }

    static bool Allows(JsonTypes types, JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => types.HasFlag(JsonTypes.Object),
        JsonValueKind.Array => types.HasFlag(JsonTypes.Array),
        JsonValueKind.String => types.HasFlag(JsonTypes.String),
        JsonValueKind.Number => types.HasFlag(JsonTypes.Number) || (types.HasFlag(JsonTypes.Integer) && v.GetRawText().IndexOfAny(['.', 'e', 'E']) < 0),
        JsonValueKind.True or JsonValueKind.False => types.HasFlag(JsonTypes.Boolean),
        _ => types.HasFlag(JsonTypes.Null),
    };

    static byte[] Serialize(JsonElement v)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Compact)) v.WriteTo(w);
        return buffer.ToArray();
    }

    /// <summary>A property name as a key: its JSON string without the opening quote.</summary>
    static byte[] Key(string name)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Compact)) w.WriteStringValue(name);
        return buffer.ToArray()[1..];
    }

    /// <summary>
    /// The shortest conforming value of each node, by relaxation from "unbounded" (values only fall,
    /// so it ends). The recognizer uses it to close the document within max_tokens.
    /// </summary>
    void SolveMinBytes()
    {
        static int Add(int a, int b) => Math.Min(SchemaNode.Unbounded, a + b);
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var n in _nodes)
            {
                int best;
                if (n.AnyOf is not null) best = n.AnyOf.Min(a => a.MinBytes);
                else if (n.Literals is not null) best = n.Literals.Length == 0 ? SchemaNode.Unbounded : n.Literals.Min(l => l.Length);
                else
                {
                    best = SchemaNode.Unbounded;
                    var t = n.Types;
                    if ((t & (JsonTypes.Number | JsonTypes.Integer)) != 0) best = 1;
                    else if ((t & (JsonTypes.Boolean | JsonTypes.Null)) != 0) best = 4;
                    if (t.HasFlag(JsonTypes.String)) best = Math.Min(best, 2 + n.MinLength);
                    if (t.HasFlag(JsonTypes.Array))
                        best = Math.Min(best, n.MinItems == 0 ? 2 : Add(2 + n.MinItems - 1, (int)Math.Min(SchemaNode.Unbounded, (long)n.MinItems * n.Items!.MinBytes)));
                    if (t.HasFlag(JsonTypes.Object))
                    {
                        int sum = 2, count = 0;
                        for (int i = 0; i < n.Properties.Length; i++)
                            if ((n.Required & (1UL << i)) != 0) { sum = Add(sum, SchemaNode.KeyBytes(n.Properties[i]) + n.Properties[i].Node.MinBytes); count++; }
                        best = Math.Min(best, Add(sum, Math.Max(0, count - 1)));
                    }
                }
                if (best < n.MinBytes) { n.MinBytes = best; changed = true; }
            }
        }
    }

    /// <summary>Least fixpoint: a node is satisfiable when some value conforms, given what is known of its children.</summary>
    void SolveSatisfiable()
    {
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var n in _nodes)
            {
                if (n.Satisfiable) continue;
                bool sat;
                if (n.AnyOf is not null) sat = n.AnyOf.Any(a => a.Satisfiable);
                else if (n.Literals is not null) sat = n.Literals.Length > 0;
                else sat = (n.Types & (JsonTypes.Number | JsonTypes.Integer | JsonTypes.Boolean | JsonTypes.Null)) != 0
                    || n.Types.HasFlag(JsonTypes.String)
                    || (n.Types.HasFlag(JsonTypes.Array) && (n.MinItems == 0 || n.Items!.Satisfiable))
                    || (n.Types.HasFlag(JsonTypes.Object) && n.Properties.Where((_, i) => (n.Required & (1UL << i)) != 0).All(p => p.Node.Satisfiable));
                if (sat) n.Satisfiable = changed = true;
            }
        }
    }
}
