namespace CowWasm.Memory;

/// <summary>
/// A replica with its own private anonymous memory (FullCopy and DirtyCopy). Its tracker finds what a read
/// scribbled on; a reset copies base bytes back into exactly those runs.
/// </summary>
internal sealed class PrivateReplica : Replica
{
    private readonly PrivateMemory _memory;
    private readonly DirtyTracker _tracker;
    private readonly List<PageRun> _scratch = [];

    public PrivateReplica(SyncStrategy owner, PageBase pageBase, long committedPageCount)
        : base(owner)
    {
        _memory = new PrivateMemory(committedPageCount, owner.Options.MaxPageCount);
        try
        {
            // Fill before the tracker exists, so the copy is not reported as a read's scribbles.
            pageBase.ReadRuns(_memory, [new PageRun(0, committedPageCount)]);
            _tracker = DirtyTracker.Create(owner.Options.EffectiveReplicaTracker, _memory);
        }
        catch
        {
            _memory.Dispose();
            throw;
        }
    }

    public override PageMemory Memory => _memory;

    internal DirtyTracker Tracker => _tracker;

    internal override long ResetUnsynchronized(PageBase pageBase, ReplicaResetMode mode)
    {
        _tracker.Collect(_scratch);
        pageBase.ReadRuns(_memory, _scratch);
        _tracker.MarkClean(_scratch);
        return Pages.CountPages(_scratch);
    }

    internal override void FollowCommitUnsynchronized(PageMemory leader, IReadOnlyList<PageRun> dirty, long committedPageCount)
    {
        _memory.Resize(committedPageCount);
        if (Owner.Kind == SyncStrategyKind.FullCopy)
        {
            // The seed's way: the whole memory, whatever changed.
            _memory.CopyRunsFrom(leader, [new PageRun(0, committedPageCount)]);
            _tracker.Reset();
        }
        else
        {
            _memory.CopyRunsFrom(leader, dirty);
            _tracker.MarkClean(dirty);
        }
    }

    private protected override void DisposeCore()
    {
        _tracker.Dispose();
        _memory.Dispose();
    }
}

/// <summary>After each commit, memcpy the leader's whole memory into every replica (the trealla-prolog/go pool's method).</summary>
internal sealed class FullCopyStrategy(SyncOptions options, PageBase? image) : SyncStrategy(options, image)
{
    private protected override Replica CreateReplicaUnsynchronized(long committedPageCount) =>
        new PrivateReplica(this, Base, committedPageCount);
}

/// <summary>After each commit, copy the leader's dirty runs into every replica: O(dirty × replicas).</summary>
internal sealed class DirtyCopyStrategy(SyncOptions options, PageBase? image) : SyncStrategy(options, image)
{
    private protected override Replica CreateReplicaUnsynchronized(long committedPageCount) =>
        new PrivateReplica(this, Base, committedPageCount);
}
