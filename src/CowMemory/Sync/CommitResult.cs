namespace CowWasm.Memory.Sync;

/// <summary>What a commit did.</summary>
/// <param name="DirtyPages">Pages the base received (the tracker's report, less <paramref name="UnchangedPages"/>).</param>
/// <param name="DirtyRuns">How many runs they formed.</param>
/// <param name="CommittedPageCount">The committed length after the commit.</param>
/// <param name="Replicas">Replicas brought to the new state.</param>
/// <param name="UnchangedPages">Reported pages whose bytes equalled the base's, so neither written nor sent
/// (<see cref="SyncOptions.SkipUnchangedPages"/>; 0 without it).</param>
public readonly record struct CommitResult(long DirtyPages, int DirtyRuns, long CommittedPageCount, int Replicas, long UnchangedPages = 0);
