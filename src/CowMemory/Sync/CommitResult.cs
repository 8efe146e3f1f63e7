namespace CowWasm.Memory;

/// <summary>What a commit did.</summary>
/// <param name="DirtyPages">Pages the leader tracker reported and the base received.</param>
/// <param name="DirtyRuns">How many runs they formed.</param>
/// <param name="CommittedPageCount">The committed length after the commit.</param>
/// <param name="Replicas">Replicas brought to the new state.</param>
public readonly record struct CommitResult(long DirtyPages, int DirtyRuns, long CommittedPageCount, int Replicas);
