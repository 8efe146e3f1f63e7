namespace CowWasm.Memory.Sync;

/// <summary>
/// Replicas are MAP_PRIVATE views of the base. A commit writes the dirty runs into the base once; every clean
/// page of every replica shows the new bytes at once, so the cost is O(dirty) whatever the replica count.
/// Creating a replica is one mmap, independent of memory size.
/// </summary>
internal sealed class SharedBaseStrategy(SyncOptions options, PageBase? image) : SyncStrategy(options, image)
{
    private protected override Replica CreateReplicaUnsynchronized(long committedPageCount) =>
        new ViewReplica(this, Base, committedPageCount);
}
