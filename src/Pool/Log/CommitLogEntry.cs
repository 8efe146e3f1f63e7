namespace CowWasm.Pool.Log;

/// <summary>One record of a <see cref="CommitLog"/>: a commit's sequence number and its encoded bytes.</summary>
public readonly record struct CommitLogEntry(long Sequence, ReadOnlyMemory<byte> Payload);
