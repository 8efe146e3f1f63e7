namespace CowWasm.Runtime.Native;

/// <summary>Options for <see cref="ArtifactCompiler"/>.</summary>
public sealed record ArtifactOptions
{
    /// <summary>The cache directory. Default: $COWWASM_CACHE_DIR, else $XDG_CACHE_HOME/cowwasm, else ~/.cache/cowwasm.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// Re-hash the whole shared object on every cache hit. Default false: a cache hit checks that the library's
    /// size and last-write time are those recorded when it was hashed, and re-hashes only if either changed.
    /// A truncated, replaced or rewritten library is caught either way; only damage that keeps both is not.
    /// </summary>
    public bool VerifyLibraryHash { get; init; }

    /// <summary>
    /// Put the store barrier into the generated code (every guest store marks the memory's
    /// <see cref="CowWasm.Memory.PageMemory.DirtyMap"/>; <c>memory.fill</c> is value-aware). Default true. An artifact
    /// built without it runs guest code without the marks (for measuring what they cost) and cannot serve a
    /// <see cref="CowWasm.Memory.Trackers.TrackerKind.StoreBarrier"/> tracker: <see cref="IGuestModule.MarksStores"/> is false
    /// and pools refuse that tracker for it. Part of the cache key.
    /// </summary>
    public bool StoreBarrier { get; init; } = true;

    /// <summary>
    /// How guest loads and stores are kept inside linear memory. Default <see cref="Native.BoundsChecks.GuardPages"/>:
    /// no check in the generated code, a guard region and the process's chaining fault handler instead.
    /// <see cref="Native.BoundsChecks.Software"/> compares every address with the memory's size. Part of the cache key.
    /// </summary>
    public BoundsChecks BoundsChecks { get; init; } = BoundsChecks.GuardPages;

    /// <summary>
    /// Poll for an interruption (<see cref="WasmInstance.Interrupt"/>) at every loop back-edge, so that a loop that makes
    /// no calls can be stopped too. Default true. Off, only function entries check, and a guest spinning in a call-free
    /// loop cannot be interrupted (for measuring what the polls cost). Part of the cache key.
    /// </summary>
    public bool LoopInterruptChecks { get; init; } = true;

    /// <summary>
    /// Compile with gcc's <c>-fsignaling-nans</c> (default true), so float arithmetic on a signaling NaN returns a quiet
    /// NaN as the Wasm spec requires (without it <c>-O2</c> folds <c>x * 1.0</c> to <c>x</c>). Off only to measure what
    /// the flag costs. Part of the cache key.
    /// </summary>
    public bool SignalingNans { get; init; } = true;

    /// <summary>gcc optimization flag. Part of the cache key.</summary>
    public string OptimizationFlag { get; init; } = "-O2";

    /// <summary>The cache directory these options name, with the defaults applied (see <see cref="CacheDirectory"/>).</summary>
    /// <exception cref="InvalidOperationException">No directory is given and the fallback would be relative (no
    /// <c>HOME</c>): the current directory is never used as a cache.</exception>
    public string ResolveCacheDirectory() =>
        ResolveCacheDirectory(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    internal string ResolveCacheDirectory(Func<string, string?> environment, string home) =>
        CacheRoot.Resolve(CacheDirectory, environment, home);
}
