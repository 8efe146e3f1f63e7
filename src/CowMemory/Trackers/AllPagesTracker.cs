namespace CowWasm.Memory.Trackers;

/// <summary>Reports every mapped page: the naive full-copy baseline.</summary>
internal sealed class AllPagesTracker(PageMemory memory) : DirtyTracker(memory)
{
    public override TrackerKind Kind => TrackerKind.AllPages;

    private protected override void CollectCore(List<PageRun> runs) => runs.Add(new PageRun(0, Memory.PageCount));

    private protected override void MarkCleanCore(IReadOnlyList<PageRun> runs)
    {
    }

    private protected override void ResetCore()
    {
    }
}
