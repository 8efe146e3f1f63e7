namespace CowWasm.Runtime.Wasi;

/// <summary>What a guest sees through WASI preview1: arguments, environment, and an optional read-only file set.</summary>
public sealed record WasiConfiguration
{
    /// <summary>argv, including argv[0].</summary>
    public IReadOnlyList<string> Arguments { get; init; } = ["guest"];

    /// <summary>Environment variables.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Read-only files by path (relative to a preopened "/" directory, fd 3). Empty: no preopens, and
    /// fd_prestat_get answers EBADF for every fd.
    /// </summary>
    public IReadOnlyDictionary<string, byte[]> Files { get; init; } = new Dictionary<string, byte[]>();
}
