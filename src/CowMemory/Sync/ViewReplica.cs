using CowWasm.Memory.Trackers;
namespace CowWasm.Memory.Sync;

/// <summary>
/// A replica that is a view of the base, with a tracker that finds what a read scribbled on.
/// <para><b>Clean</b> means: every page either is not a private copy (shows the base), or is a
/// keep-resident private copy listed in <see cref="_resident"/> whose bytes equal the base's.</para>
/// </summary>
internal sealed class ViewReplica : Replica
{
    private readonly CowView _view;
    private readonly DirtyTracker _tracker;
    private readonly List<PageRun> _overlap = [];
    private readonly List<PageRun> _scratch = [];
    private readonly List<PageRun> _resident = [];
    private readonly List<PageRun> _differing = [];
    private readonly long _keepResidentMaxBytes;

    public ViewReplica(SyncStrategy owner, PageBase pageBase, long committedPageCount)
        : base(owner)
    {
        _keepResidentMaxBytes = owner.Options.KeepResidentMaxBytes;
        _view = new CowView(pageBase, committedPageCount, owner.Options.MaxPageCount, zeroFillBeyondBase: true, owner.Options.ReservedBytes);
        try
        {
            _tracker = DirtyTracker.Create(owner.Options.EffectiveReplicaTracker, _view);
        }
        catch
        {
            _view.Dispose();
            throw;
        }
    }

    public override PageMemory Memory => _view;

    /// <summary>Keep-resident resets that found the replica over <see cref="SyncOptions.KeepResidentMaxBytes"/> and discarded.</summary>
    internal int DiscardedOverCap { get; private set; }

    internal override long ResetUnsynchronized(PageBase pageBase, ReplicaResetMode mode, bool contentAware)
    {
        _tracker.Collect(_scratch);
        if (mode == ReplicaResetMode.Madvise)
        {
            _view.ResetToBase(_scratch);
            _tracker.OnDiscarded(_scratch);
            return Pages.CountPages(_scratch);
        }

        // Keep the private copies resident and give them the base's bytes back. With the CoW-file tracker the
        // scribbled set is every private copy (O(resident), as Wasmtime's keep_resident); uffd, compare and
        // the store barrier report only the pages this read wrote.
        long copied = PageComparer.CopyBack(pageBase, _view, _scratch, _differing, contentAware);
        _tracker.MarkClean(_scratch);
        _overlap.Clear();
        Pages.Union(_resident, _scratch, _overlap); // every scribbled page is a private copy now, changed or not
        _resident.Clear();
        _resident.AddRange(_overlap);
        if (Pages.ToBytes(Pages.CountPages(_resident)) > _keepResidentMaxBytes)
        {
            // Over the cap: give every private copy back, as a madvise reset would.
            _view.ResetToBase(_resident);
            _tracker.OnDiscarded(_resident);
            _resident.Clear();
            DiscardedOverCap++;
        }

        return copied;
    }

    internal override void FollowCommitUnsynchronized(PageMemory leader, IReadOnlyList<PageRun> sent, long committedPageCount)
    {
        _view.Resize(committedPageCount);
        if (_resident.Count > 0)
        {
            // Private copies do not see the base change: refresh the ones the commit touched.
            _overlap.Clear();
            Pages.Intersect(_resident, sent, _overlap);
            _view.CopyRunsFrom(leader, _overlap);
            _tracker.MarkClean(_overlap);
        }
    }

    internal override void OnBaseReplacedUnsynchronized()
    {
        _view.Remap(); // the view maps the new base; keep-resident copies are gone with the old mapping
        _resident.Clear();
    }

    internal override void AssertCleanUnsynchronized()
    {
        _view.CollectPrivatePages(_scratch);
        _overlap.Clear();
        Pages.Intersect(_scratch, _resident, _overlap);
        if (Pages.CountPages(_overlap) != Pages.CountPages(_scratch))
        {
            throw new InvalidOperationException(
                $"Invariant violated: a replica holds private pages [{string.Join(", ", _scratch)}] at commit; " +
                "replicas must be reset after every read before the base changes.");
        }
    }

    private protected override void DisposeCore()
    {
        _tracker.Dispose();
        _view.Dispose();
    }
}
