namespace CowWasm.Pool.Log;

/// <summary>A commit log file is damaged other than by a torn last append, or belongs to another module.</summary>
public sealed class CommitLogFormatException(string path, long offset, string problem)
    : IOException($"The commit log {path} is damaged at byte {offset}: {problem}. Start-up stops rather than skip a commit; " +
                  "restore the file, or start from a snapshot without it.")
{
    /// <summary>The segment file.</summary>
    public string Path { get; } = path;

    /// <summary>Where in it.</summary>
    public long Offset { get; } = offset;
}
