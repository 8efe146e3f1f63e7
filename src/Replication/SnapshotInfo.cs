using System.Globalization;
using NATS.Client.ObjectStore.Models;

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

    /// <summary>Reads the snapshot's commit and stream start; false when either is missing or malformed.</summary>
    public static bool TryRead(ObjectMetadata info, out long sequence, out ulong streamStart)
    {
        streamStart = 0;
        sequence = 0;
        Dictionary<string, string> meta = info.Metadata ?? [];
        return meta.TryGetValue(SequenceKey, out string? sequenceText)
            && long.TryParse(sequenceText, NumberStyles.None, CultureInfo.InvariantCulture, out sequence)
            && meta.TryGetValue(StreamStartKey, out string? startText)
            && ulong.TryParse(startText, NumberStyles.None, CultureInfo.InvariantCulture, out streamStart) && streamStart >= 1;
    }
}
