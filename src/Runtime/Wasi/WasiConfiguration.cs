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

    /// <summary>
    /// Most iovecs one <c>fd_read</c>/<c>fd_write</c> may pass (default 1024, POSIX's IOV_MAX); more answers EINVAL.
    /// Without it a guest could name one buffer 2^32 times and have the host copy it as often.
    /// </summary>
    public int MaxIovecs { get; init; } = 1024;

    /// <summary>
    /// Bytes captured per output stream (stdout, stderr) until the state is reset (default 16 MiB). Writes beyond it
    /// are counted as written but dropped, and <see cref="WasiState.OutputTruncated"/> is set.
    /// </summary>
    public int MaxCapturedBytes { get; init; } = 16 << 20;

    /// <summary>Files a guest may have open at once (default 64); <c>path_open</c> beyond it answers EMFILE.</summary>
    public int MaxOpenFiles { get; init; } = 64;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxIovecs);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxCapturedBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxOpenFiles);
    }
}
