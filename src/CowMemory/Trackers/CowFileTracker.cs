namespace CowWasm.Memory.Trackers;

/// <summary>
/// The private CoW copies of a <see cref="CowView"/> are exactly the pages written since they were last
/// clean: PAGEMAP_SCAN (present or swapped or migrating, and not file-backed) finds them
/// (see <see cref="CowView.CollectPrivatePages"/>).
/// </summary>
/// <remarks>
/// No arming is needed and nothing can be "forgotten": a page stays reported until it returns to the base
/// (<see cref="CowView.ResetToBase(IReadOnlyList{PageRun})"/>), which is what commit and rollback do with
/// every collected run. <see cref="DirtyTracker.MarkClean"/> and <see cref="DirtyTracker.Reset"/> therefore
/// do nothing: the answer is always "the pages that may differ from the base".
/// </remarks>
internal sealed class CowFileTracker(CowView view) : DirtyTracker(view)
{
    public override TrackerKind Kind => TrackerKind.CowFile;

    private protected override void CollectCore(List<PageRun> runs) => view.CollectPrivatePages(runs);

    private protected override void MarkCleanCore(IReadOnlyList<PageRun> runs)
    {
    }

    private protected override void ResetCore()
    {
    }
}
