namespace CowWasm.Server;

/// <summary>A request the service refuses, with the HTTP status and a short machine-readable code.</summary>
internal sealed class ServiceException(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;

    /// <summary>For 503 and 429: the seconds after which the client may try again (<c>Retry-After</c>); 0: none.</summary>
    public int RetryAfterSeconds { get; init; }
}
