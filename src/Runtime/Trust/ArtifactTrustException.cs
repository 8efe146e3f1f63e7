namespace CowWasm.Runtime;

/// <summary>
/// The artifact cache (or a library in it) could have been written by someone else, so CowWasm will not load native code
/// from it: a directory or file owned by another user, writable by group or others, or a symbolic link where a
/// directory or the library should be. Nothing is loaded, and nothing in the cache is changed or deleted.
/// </summary>
public sealed class ArtifactTrustException(string path, string problem)
    : IOException($"Refusing the artifact cache at '{path}': {problem}.")
{
    /// <summary>The directory or file that failed the check.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; } = problem;
}
