namespace CowWasm.Runtime;

/// <summary>
/// Where the backends cache compiled code: an explicit directory, else <c>COWWASM_CACHE_DIR</c>, else
/// <c>$XDG_CACHE_HOME/cowwasm</c>, else <c>~/.cache/cowwasm</c>. Never a relative path: compiled code is not loaded from
/// wherever the process happens to run. The native backend keeps <c>artifacts/</c> there, Wasmtime <c>wasmtime/</c>.
/// </summary>
internal static class CacheRoot
{
    public static string Resolve(string? explicitDirectory) =>
        Resolve(explicitDirectory, Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <exception cref="InvalidOperationException">No absolute directory can be chosen.</exception>
    public static string Resolve(string? explicitDirectory, Func<string, string?> environment, string home)
    {
        if (explicitDirectory is { Length: > 0 })
        {
            return Path.GetFullPath(explicitDirectory);
        }

        string? chosen = environment("COWWASM_CACHE_DIR") is { Length: > 0 } fromEnv
            ? fromEnv
            : environment("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? Path.Combine(xdg, "cowwasm")
                : home.Length > 0 ? Path.Combine(home, ".cache", "cowwasm") : null;
        return chosen is not null && Path.IsPathRooted(chosen)
            ? chosen
            : throw new InvalidOperationException(
                $"No cache directory for compiled code: {(chosen is null ? "HOME is not set" : $"'{chosen}' is relative")}, and CowWasm does not " +
                "load native code from a directory relative to wherever the process happens to run. Set ArtifactOptions.CacheDirectory " +
                "(or WasmtimeOptions.CacheDirectory), COWWASM_CACHE_DIR or XDG_CACHE_HOME to an absolute path.");
    }
}
