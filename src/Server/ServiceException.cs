namespace CowWasm.Server;

/// <summary>A request the service refuses, with the HTTP status and a short machine-readable code.</summary>
internal sealed class ServiceException(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;
}
