using System.Diagnostics.CodeAnalysis;

namespace Jevons;

/// <summary>
/// The one exception type for bad input: a file, tensor, field or parameter that is wrong.
/// <see cref="Exception.Message"/> is a single line that names the culprit; the CLI prints it as is.
/// </summary>
public sealed class JevonsException : Exception
{
    public JevonsException(string message, string? file = null, string? tensor = null, long? offset = null, Exception? inner = null)
        : base(Compose(message, file, tensor, offset), inner)
    {
        File = file;
        Tensor = tensor;
        Offset = offset;
    }

    /// <summary>The file the problem is in, when there is one.</summary>
    public string? File { get; }

    /// <summary>The tensor (or field) the problem is in, when there is one.</summary>
    public string? Tensor { get; }

    /// <summary>The byte offset in <see cref="File"/>, when known.</summary>
    public long? Offset { get; }

    static string Compose(string message, string? file, string? tensor, long? offset)
    {
        var prefix = file is null ? "" : file + (offset is long o ? $" (offset {o})" : "") + ": ";
        var t = tensor is null ? "" : $"tensor '{tensor}': ";
        return (prefix + t + message).ReplaceLineEndings(" ");
    }

    [DoesNotReturn]
    public static void Throw(string message, string? file = null, string? tensor = null, long? offset = null) =>
        throw new JevonsException(message, file, tensor, offset);

    [DoesNotReturn]
    public static T Throw<T>(string message, string? file = null, string? tensor = null, long? offset = null) =>
        throw new JevonsException(message, file, tensor, offset);
}
