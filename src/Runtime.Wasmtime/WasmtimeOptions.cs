namespace CowWasm.Runtime.Wasmtime;

/// <summary>How <see cref="WasmtimeModule"/> prepares a module.</summary>
public sealed record WasmtimeOptions
{
    /// <summary>
    /// Rewrite the module so that its stores mark the memory engine's dirty map (a <see cref="CowWasm.Memory.Trackers.TrackerKind.StoreBarrier"/>
    /// tracker then sees every write without page faults). Default on. A module the barrier cannot cover (atomics) is
    /// loaded without it and reports <see cref="IGuestModule.MarksStores"/> false.
    /// </summary>
    public bool StoreBarrier { get; init; } = true;

    /// <summary>
    /// Where compiled code is cached (default: the artifact cache's directory, <c>$XDG_CACHE_HOME/cowwasm</c> or
    /// <c>~/.cache/cowwasm</c>, under <c>wasmtime/</c>). Null entries are never read from a directory not owned by this
    /// user or writable by others.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Use and fill the compiled-code cache. Default on.</summary>
    public bool UseCache { get; init; } = true;
}
