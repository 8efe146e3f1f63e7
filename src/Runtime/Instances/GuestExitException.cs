namespace CowWasm.Runtime;

/// <summary>Thrown by a host function to end the guest with an exit code (WASI proc_exit).</summary>
public sealed class GuestExitException(int code) : Exception($"proc_exit({code})")
{
    /// <summary>The exit code.</summary>
    public int Code { get; } = code;
}
