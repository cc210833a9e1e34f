using System.Diagnostics.CodeAnalysis;

namespace Jevons.Server;

/// <summary>A request the server refuses: the HTTP status and OpenAI's error fields.</summary>
public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    /// <summary>Seconds for a Retry-After header (429), or null.</summary>
    public int? RetryAfter { get; init; }

    public ErrorResponse ToBody() => new(new ErrorBody(Message, Type, Param, Code));

    [DoesNotReturn]
    public static void BadRequest(string message, string? param = null, string? code = null) =>
        throw new ApiException(400, message, "invalid_request_error", param, code);
}
