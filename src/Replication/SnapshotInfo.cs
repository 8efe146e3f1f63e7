namespace CowWasm.Replication;

/// <summary>The metadata a published snapshot carries in the object store.</summary>
internal static class SnapshotInfo
{
    /// <summary>The commit sequence of the snapshot's state.</summary>
    public const string SequenceKey = "cw-sequence";

    /// <summary>A stream sequence at or before the first message of the next commit: where a follower starts reading.</summary>
    public const string StreamStartKey = "cw-stream-start";

    /// <summary>The module's SHA-256 (hex).</summary>
    public const string ModuleKey = "cw-module";
}
