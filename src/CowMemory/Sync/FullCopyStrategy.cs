namespace CowWasm.Memory.Sync;

/// <summary>
/// After each commit, memcpy the leader's whole memory into every replica (the trealla-prolog/go pool's method):
/// O(size × replicas), whatever changed. Replicas are private anonymous memory (<see cref="PrivateReplica"/>).
/// </summary>
internal sealed class FullCopyStrategy(SyncOptions options, PageBase? image) : SyncStrategy(options, image)
{
    private protected override Replica CreateReplicaUnsynchronized(long committedPageCount) =>
        new PrivateReplica(this, Base, committedPageCount);

    /// <summary>The whole committed image, whatever the transaction dirtied.</summary>
    private protected override IReadOnlyList<PageRun> RunsToSend(IReadOnlyList<PageRun> dirty, long committedPageCount) =>
        committedPageCount == 0 ? [] : [new PageRun(0, committedPageCount)];
}
