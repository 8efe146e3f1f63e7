using CowWasm.Memory.Trackers;
namespace CowWasm.Memory.Sync;

/// <summary>
/// A replica with its own private anonymous memory (FullCopy and DirtyCopy). Its tracker finds what a read
/// scribbled on; a reset copies base bytes back into exactly those runs.
/// </summary>
internal sealed class PrivateReplica : Replica
{
    private readonly PrivateMemory _memory;
    private readonly DirtyTracker _tracker;
    private readonly List<PageRun> _scratch = [];
    private readonly List<PageRun> _differing = [];

    public PrivateReplica(SyncStrategy owner, PageBase pageBase, long committedPageCount)
        : base(owner)
    {
        _memory = new PrivateMemory(committedPageCount, owner.Options.MaxPageCount, owner.Options.ReservedBytes);
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

    internal override long ResetUnsynchronized(PageBase pageBase, ReplicaResetMode mode, bool contentAware)
    {
        _tracker.Collect(_scratch);
        long copied = PageComparer.CopyBack(pageBase, _memory, _scratch, _differing, contentAware);
        _tracker.MarkClean(_scratch);
        return copied;
    }

    internal override void FollowCommitUnsynchronized(PageMemory leader, IReadOnlyList<PageRun> sent, long committedPageCount)
    {
        _memory.Resize(committedPageCount);
        _memory.CopyRunsFrom(leader, sent);
        _tracker.MarkClean(sent);
    }

    private protected override void DisposeCore()
    {
        _tracker.Dispose();
        _memory.Dispose();
    }
}
