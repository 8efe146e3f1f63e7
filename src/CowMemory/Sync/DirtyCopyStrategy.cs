namespace CowWasm.Memory.Sync;

/// <summary>
/// After each commit, copy the leader's dirty runs into every replica: O(dirty × replicas). Replicas are private
/// anonymous memory (<see cref="PrivateReplica"/>).
/// </summary>
internal sealed class DirtyCopyStrategy(SyncOptions options, PageBase? image) : SyncStrategy(options, image)
{
    private protected override Replica CreateReplicaUnsynchronized(long committedPageCount) =>
        new PrivateReplica(this, Base, committedPageCount);
}
