namespace CowWasm.Runtime.Native;

/// <summary>
/// An artifact cannot be opened: its embedded metadata is missing, corrupt or out of bounds, or it was built
/// for another runtime ABI. Nothing stays loaded when this is thrown.
/// </summary>
public sealed class ArtifactFormatException(string path, string problem) : IOException($"Artifact '{path}': {problem}")
{
    /// <summary>The shared object.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong, without the path.</summary>
    public string Problem { get; } = problem;
}
