using Jevons.Tokenization;

namespace Jevons.Server;

/// <summary>
/// response_format json_object as constrained decoding: before each sampling, every token whose
/// bytes would not continue a valid JSON prefix (a top-level object) gets -∞; once the object is
/// closed only end-of-sequence is allowed. A byte-level pushdown recognizer; each choice has its own.
/// Cost: one pass over the vocabulary's bytes per generated token.
/// </summary>
sealed class JsonConstraint
{
    // Lexical modes of the recognizer.
    enum Mode : byte { Value, Key, Colon, CommaOrEnd, String, Escape, Unicode, Number, Literal, Done }

    struct State
    {
        public Mode Mode;
        public bool StringIsKey;
        public byte Hex;          // hex digits left in \uXXXX
        public byte Number;       // number sub-state (see StepNumber)
        public byte LiteralAt;    // position in the literal
        public byte Literal;      // 0 true, 1 false, 2 null
        public bool Started;
        public bool ArrayStart;   // right after '[': ']' may close it
    }

    static readonly string[] Literals = ["true", "false", "null"];
    readonly byte[][] _tokens;
    readonly bool[] _special;
    readonly IReadOnlyList<int> _eos;
    readonly List<byte> _stack = [];   // '{' or '['
    byte[] _scratch = new byte[64];
    State _state;
    int _consumed;

    public JsonConstraint(byte[][] tokens, bool[] special, IReadOnlyList<int> eos)
    {
        _tokens = tokens;
        _special = special;
        _eos = eos;
    }

    /// <summary>Token bytes and special flags of a tokenizer, computed once per server.</summary>
    public static (byte[][] Tokens, bool[] Special) Vocabulary(Tokenizer t) =>
        (Enumerable.Range(0, t.VocabSize).Select(id => t.TokenBytes(id).ToArray()).ToArray(),
         Enumerable.Range(0, t.VocabSize).Select(t.IsSpecial).ToArray());

    public void Apply(ReadOnlySpan<int> generated, Span<float> logits)
    {
        for (; _consumed < generated.Length; _consumed++)
        {
            int id = generated[_consumed];
            if (!_special[id]) Run(ref _state, _stack, _tokens[id], commit: true);
        }
        bool done = _state.Mode == Mode.Done;
        for (int id = 0; id < logits.Length; id++)
        {
            bool ok;
            if (_eos.Contains(id)) ok = done;
            else if (done || _special[id] || _tokens[id].Length == 0) ok = false;
            else
            {
                var s = _state;
                ok = Run(ref s, _stack, _tokens[id], commit: false);
            }
            if (!ok) logits[id] = float.NegativeInfinity;
        }
    }

    /// <summary>Feeds bytes; false when they leave the JSON language. With commit false the stack is simulated on a copy.</summary>
    bool Run(ref State s, List<byte> stack, byte[] bytes, bool commit)
    {
        int depth = stack.Count;
        if (!commit)
        {
            if (_scratch.Length < depth + bytes.Length) _scratch = new byte[(depth + bytes.Length) * 2];
            for (int i = 0; i < depth; i++) _scratch[i] = stack[i];
        }
        foreach (var b in bytes)
        {
            if (!Step(ref s, b, ref depth, commit ? stack : null)) return false;
        }
        return true;
    }

    bool Step(ref State s, byte b, ref int depth, List<byte>? stack)
    {
        void Push(byte c, ref int d, List<byte>? st) { if (st is not null) st.Add(c); else _scratch[d] = c; d++; }
        byte Top(int d, List<byte>? st) => st is not null ? st[d - 1] : _scratch[d - 1];
        void Pop(ref int d, List<byte>? st) { d--; st?.RemoveAt(st.Count - 1); }
        bool Ws(byte c) => c is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';
        void Close(ref State st, ref int d, List<byte>? stk)
        {
            Pop(ref d, stk);
            st.Mode = d == 0 ? Mode.Done : Mode.CommaOrEnd;
        }

        while (true)
        {
            switch (s.Mode)
            {
                case Mode.Done:
                    return Ws(b);
                case Mode.Value:
                    if (Ws(b)) return true;
                    bool arrayStart = s.ArrayStart;
                    s.ArrayStart = false;
                    if (!s.Started)
                    {
                        // json_object: the top level is an object.
                        if (b != '{') return false;
                        s.Started = true;
                    }
                    switch (b)
                    {
                        case (byte)'{': Push(b, ref depth, stack); s.Mode = Mode.Key; return true;
                        case (byte)'[': Push(b, ref depth, stack); s.Mode = Mode.Value; s.ArrayStart = true; return true;
                        case (byte)']' when arrayStart: Close(ref s, ref depth, stack); return true; // []
                        case (byte)'"': s.Mode = Mode.String; s.StringIsKey = false; return true;
                        case (byte)'t': s.Mode = Mode.Literal; s.Literal = 0; s.LiteralAt = 1; return true;
                        case (byte)'f': s.Mode = Mode.Literal; s.Literal = 1; s.LiteralAt = 1; return true;
                        case (byte)'n': s.Mode = Mode.Literal; s.Literal = 2; s.LiteralAt = 1; return true;
                        case (byte)'-': s.Mode = Mode.Number; s.Number = 1; return true;
                        case >= (byte)'0' and <= (byte)'9': s.Mode = Mode.Number; s.Number = b == '0' ? (byte)2 : (byte)3; return true;
                        default: return false;
                    }
                case Mode.Key:
                    if (Ws(b)) return true;
                    if (b == '"') { s.Mode = Mode.String; s.StringIsKey = true; return true; }
                    if (b == '}' && depth > 0 && Top(depth, stack) == '{') { Close(ref s, ref depth, stack); return true; }
                    return false;
                case Mode.Colon:
                    if (Ws(b)) return true;
                    if (b != ':') return false;
                    s.Mode = Mode.Value;
                    s.Started = true;
                    return true;
                case Mode.CommaOrEnd:
                    if (Ws(b)) return true;
                    if (b == ',') { s.Mode = Top(depth, stack) == '{' ? Mode.Key : Mode.Value; return true; }
                    if ((b == '}' && Top(depth, stack) == '{') || (b == ']' && Top(depth, stack) == '[')) { Close(ref s, ref depth, stack); return true; }
                    return false;
                case Mode.String:
                    if (b == '"') { s.Mode = s.StringIsKey ? Mode.Colon : Mode.CommaOrEnd; return true; }
                    if (b == '\\') { s.Mode = Mode.Escape; return true; }
                    return b >= 0x20;
                case Mode.Escape:
                    if (b == 'u') { s.Mode = Mode.Unicode; s.Hex = 4; return true; }
                    if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t') { s.Mode = Mode.String; return true; }
                    return false;
                case Mode.Unicode:
                    if (!char.IsAsciiHexDigit((char)b)) return false;
                    if (--s.Hex == 0) s.Mode = Mode.String;
                    return true;
                case Mode.Literal:
                {
                    var lit = Literals[s.Literal];
                    if (b != lit[s.LiteralAt]) return false;
                    if (++s.LiteralAt == lit.Length) s.Mode = Mode.CommaOrEnd;
                    return true;
                }
                case Mode.Number:
                    // 1 after '-', 2 after a leading 0, 3 in integer digits, 4 after '.', 5 in fraction,
                    // 6 after e/E, 7 after the exponent's sign, 8 in exponent digits.
                    bool digit = b is >= (byte)'0' and <= (byte)'9';
                    switch (s.Number)
                    {
                        case 1: if (!digit) return false; s.Number = b == '0' ? (byte)2 : (byte)3; return true;
                        case 2 or 3 when b == '.': s.Number = 4; return true;
                        case 2 or 3 or 5 when b is (byte)'e' or (byte)'E': s.Number = 6; return true;
                        case 3 when digit: return true;
                        case 4: if (!digit) return false; s.Number = 5; return true;
                        case 5 when digit: return true;
                        case 6 when b is (byte)'+' or (byte)'-': s.Number = 7; return true;
                        case 6 or 7: if (!digit) return false; s.Number = 8; return true;
                        case 8 when digit: return true;
                    }
                    // The number ended (if it may end here); the byte belongs to what follows.
                    if (s.Number is 1 or 4 or 6 or 7) return false;
                    s.Mode = Mode.CommaOrEnd;
                    continue;
            }
        }
    }
}
