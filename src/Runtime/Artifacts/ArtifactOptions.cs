namespace CowWasm.Runtime;

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

    /// <summary>gcc optimization flag. Part of the cache key.</summary>
    public string OptimizationFlag { get; init; } = "-O2";

    /// <summary>The cache directory these options name, with the defaults applied (see <see cref="CacheDirectory"/>).</summary>
    public string ResolveCacheDirectory()
    {
        if (CacheDirectory is { Length: > 0 } explicitDir)
        {
            return explicitDir;
        }

        if (Environment.GetEnvironmentVariable("COWWASM_CACHE_DIR") is { Length: > 0 } fromEnv)
        {
            return fromEnv;
        }

        string xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x
            ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(xdg, "cowwasm");
    }
}
