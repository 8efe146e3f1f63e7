namespace CowWasm.Runtime;

/// <summary>
/// Directories only this user may write, as the compiled-code caches keep them (mode 0700). For layers above the
/// runtime that keep files beside the caches (the Trealla package's wasm).
/// </summary>
public static class PrivateDirectory
{
    /// <summary>Creates <paramref name="path"/> with mode 0700 (nothing changes if it exists).</summary>
    /// <exception cref="PlatformNotSupportedException">Not Linux.</exception>
    public static void Create(string path) => FileTrust.CreatePrivateDirectory(path);
}
