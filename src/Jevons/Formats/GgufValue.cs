using System.Globalization;
using System.Text;

namespace Jevons.Formats;

/// <summary>GGUF metadata value types, with their on-disk ids.</summary>
public enum GgufType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// One typed GGUF metadata value. Scalars hold the matching .NET type (<see cref="GgufType.UInt32"/>
/// holds a <see cref="uint"/>, <see cref="GgufType.String"/> a <see cref="string"/>, ...); arrays hold
/// a typed .NET array of their element type (<c>uint[]</c>, <c>string[]</c>, ...), and arrays of
/// arrays hold <c>GgufValue[]</c>. GGUF readers such as llama.cpp check key types strictly, so the
/// factories are named by exact type.
/// </summary>
public sealed class GgufValue : IEquatable<GgufValue>
{
    GgufValue(GgufType type, GgufType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    /// <summary>The value's type; <see cref="GgufType.Array"/> for arrays.</summary>
    public GgufType Type { get; }

    /// <summary>The element type of an array; equal to <see cref="Type"/> for a scalar.</summary>
    public GgufType ElementType { get; }

    /// <summary>The boxed scalar, or the typed array.</summary>
    public object Value { get; }

    public bool IsArray => Type == GgufType.Array;

    /// <summary>Number of elements of an array (1 for a scalar).</summary>
    public int Length => IsArray ? ((Array)Value).Length : 1;

    public static GgufValue UInt8(byte v) => new(GgufType.UInt8, GgufType.UInt8, v);
    public static GgufValue Int8(sbyte v) => new(GgufType.Int8, GgufType.Int8, v);
    public static GgufValue UInt16(ushort v) => new(GgufType.UInt16, GgufType.UInt16, v);
    public static GgufValue Int16(short v) => new(GgufType.Int16, GgufType.Int16, v);
    public static GgufValue UInt32(uint v) => new(GgufType.UInt32, GgufType.UInt32, v);
    public static GgufValue Int32(int v) => new(GgufType.Int32, GgufType.Int32, v);
    public static GgufValue Float32(float v) => new(GgufType.Float32, GgufType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufType.Bool, GgufType.Bool, v);
    public static GgufValue String(string v) => new(GgufType.String, GgufType.String, v ?? throw new ArgumentNullException(nameof(v)));
    public static GgufValue UInt64(ulong v) => new(GgufType.UInt64, GgufType.UInt64, v);
    public static GgufValue Int64(long v) => new(GgufType.Int64, GgufType.Int64, v);
    public static GgufValue Float64(double v) => new(GgufType.Float64, GgufType.Float64, v);

    /// <summary>
    /// An array of a scalar element type: T is one of byte, sbyte, ushort, short, uint, int, float,
    /// bool, string, ulong, long, double, or <see cref="GgufValue"/> (each an array) for nested arrays.
    /// The array is kept, not copied.
    /// </summary>
    public static GgufValue Array<T>(T[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var element = ElementTypeOf(typeof(T));
        if (values is GgufValue[] nested)
            foreach (var v in nested)
                if (v is null || !v.IsArray)
                    throw new ArgumentException("an array of GgufValue must hold arrays only (GGUF nests arrays, not mixed scalars)", nameof(values));
        if (values is string[] strings)
            foreach (var s in strings)
                ArgumentNullException.ThrowIfNull(s, nameof(values));
        return new GgufValue(GgufType.Array, element, values);
    }

    /// <summary>Wraps an already decoded value; the reader's entry point (no checks beyond types).</summary>
    internal static GgufValue Create(GgufType type, GgufType elementType, object value) => new(type, elementType, value);

    static GgufType ElementTypeOf(Type t) =>
        t == typeof(byte) ? GgufType.UInt8 :
        t == typeof(sbyte) ? GgufType.Int8 :
        t == typeof(ushort) ? GgufType.UInt16 :
        t == typeof(short) ? GgufType.Int16 :
        t == typeof(uint) ? GgufType.UInt32 :
        t == typeof(int) ? GgufType.Int32 :
        t == typeof(float) ? GgufType.Float32 :
        t == typeof(bool) ? GgufType.Bool :
        t == typeof(string) ? GgufType.String :
        t == typeof(ulong) ? GgufType.UInt64 :
        t == typeof(long) ? GgufType.Int64 :
        t == typeof(double) ? GgufType.Float64 :
        t == typeof(GgufValue) ? GgufType.Array :
        throw new ArgumentException($"{t.Name} is not a GGUF element type");

    /// <summary>True for the eight integer types (bool is not an integer).</summary>
    public static bool IsIntegerType(GgufType t) => t is GgufType.UInt8 or GgufType.Int8 or GgufType.UInt16 or GgufType.Int16
        or GgufType.UInt32 or GgufType.Int32 or GgufType.UInt64 or GgufType.Int64;

    /// <summary>Bytes one element of <paramref name="t"/> takes on disk; 0 for string and array.</summary>
    public static int FixedSize(GgufType t) => t switch
    {
        GgufType.UInt8 or GgufType.Int8 or GgufType.Bool => 1,
        GgufType.UInt16 or GgufType.Int16 => 2,
        GgufType.UInt32 or GgufType.Int32 or GgufType.Float32 => 4,
        GgufType.UInt64 or GgufType.Int64 or GgufType.Float64 => 8,
        _ => 0,
    };

    /// <summary>The scalar as a signed 64-bit integer; false for non-integers and u64 values above long.MaxValue.</summary>
    public bool TryGetInt64(out long value) => TryInt(Value, out value);

    /// <summary>The scalar as a double (floats and integers); false otherwise.</summary>
    public bool TryGetDouble(out double value) => TryFloat(Value, out value);

    /// <summary>The array's elements as a typed array (no copy); throws when the element type differs.</summary>
    public T[] AsArray<T>() => Value as T[] ?? throw new InvalidCastException($"GGUF value is {TypeName}, not an array of {typeof(T).Name}");

    internal static bool TryInt(object v, out long value)
    {
        switch (v)
        {
            case byte b: value = b; return true;
            case sbyte sb: value = sb; return true;
            case ushort us: value = us; return true;
            case short s: value = s; return true;
            case uint u: value = u; return true;
            case int i: value = i; return true;
            case long l: value = l; return true;
            case ulong ul when ul <= long.MaxValue: value = (long)ul; return true;
            default: value = 0; return false;
        }
    }

    internal static bool TryFloat(object v, out double value)
    {
        switch (v)
        {
            case float f: value = f; return true;
            case double d: value = d; return true;
            case ulong ul: value = ul; return true;
            default:
                bool ok = TryInt(v, out long l);
                value = l;
                return ok;
        }
    }

    /// <summary>"u32", "string", "array[i32]" — for messages and <c>inspect</c>.</summary>
    public string TypeName => IsArray ? $"array[{ShortName(ElementType)}]" : ShortName(Type);

    public static string ShortName(GgufType t) => t switch
    {
        GgufType.UInt8 => "u8",
        GgufType.Int8 => "i8",
        GgufType.UInt16 => "u16",
        GgufType.Int16 => "i16",
        GgufType.UInt32 => "u32",
        GgufType.Int32 => "i32",
        GgufType.Float32 => "f32",
        GgufType.Bool => "bool",
        GgufType.String => "string",
        GgufType.Array => "array",
        GgufType.UInt64 => "u64",
        GgufType.Int64 => "i64",
        GgufType.Float64 => "f64",
        _ => $"type {(uint)t}",
    };

    /// <summary>Short text: scalars in full, arrays as their type, length and first few elements.</summary>
    public override string ToString()
    {
        if (!IsArray) return Format(Value);
        var array = (Array)Value;
        var sb = new StringBuilder();
        sb.Append(TypeName).Append(" x ").Append(array.Length).Append(" [");
        int shown = Math.Min(array.Length, 8);
        for (int i = 0; i < shown; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(Format(array.GetValue(i)!));
        }
        if (shown < array.Length) sb.Append(", ...");
        return sb.Append(']').ToString();
    }

    static string Format(object v) => v switch
    {
        string s => "\"" + s.ReplaceLineEndings("\\n") + "\"",
        bool b => b ? "true" : "false",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    /// <summary>Structural equality: same types and equal elements (floats compared bit for bit).</summary>
    public bool Equals(GgufValue? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        if (Type != other.Type || ElementType != other.ElementType) return false;
        return Value switch
        {
            float f => BitConverter.SingleToInt32Bits(f) == BitConverter.SingleToInt32Bits((float)other.Value),
            double d => BitConverter.DoubleToInt64Bits(d) == BitConverter.DoubleToInt64Bits((double)other.Value),
            byte[] a => a.AsSpan().SequenceEqual((byte[])other.Value),
            sbyte[] a => a.AsSpan().SequenceEqual((sbyte[])other.Value),
            ushort[] a => a.AsSpan().SequenceEqual((ushort[])other.Value),
            short[] a => a.AsSpan().SequenceEqual((short[])other.Value),
            uint[] a => a.AsSpan().SequenceEqual((uint[])other.Value),
            int[] a => a.AsSpan().SequenceEqual((int[])other.Value),
            ulong[] a => a.AsSpan().SequenceEqual((ulong[])other.Value),
            long[] a => a.AsSpan().SequenceEqual((long[])other.Value),
            bool[] a => a.AsSpan().SequenceEqual((bool[])other.Value),
            float[] a => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan())
                .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(((float[])other.Value).AsSpan())),
            double[] a => System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan())
                .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(((double[])other.Value).AsSpan())),
            string[] a => a.AsSpan().SequenceEqual((string[])other.Value),
            GgufValue[] a => a.AsSpan().SequenceEqual((GgufValue[])other.Value),
            _ => Value.Equals(other.Value),
        };
    }

    public override bool Equals(object? obj) => Equals(obj as GgufValue);

    public override int GetHashCode() => HashCode.Combine(Type, ElementType, IsArray ? Length : Value.GetHashCode());
}
