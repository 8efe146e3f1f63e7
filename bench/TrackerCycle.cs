using CowWasm.Memory;
using CowWasm.Memory.Trackers;

namespace CowWasm.Bench;

/// <summary>
/// A leader view of <c>pageCount</c> pages with every page mapped for reading (present, file-backed) and a tracker
/// on it. One <see cref="Run"/> writes one byte to each of N pages spread evenly, then collects (and, for the
/// CoW-file tracker, returns the pages to the base — its way of re-arming). The cycle includes the write faults the
/// tracker itself causes (uffd write-protect faults, CoW faults), because that is what tracking costs a writer.
/// Per scanned page = Run(0) / pages; per dirty page = (Run(N) − Run(0)) / N.
/// </summary>
internal sealed class TrackerCycle : IDisposable
{
    private readonly List<PageRun> _runs = [];
    private readonly PageBase _base;
    private readonly CowView _leader;
    private readonly DirtyTracker _tracker;
    private readonly TrackerKind _kind;

    public TrackerCycle(TrackerKind kind, long pageCount)
    {
        _kind = kind;
        PageCount = pageCount;
        _base = PageBase.Create(pageCount);
        _leader = new CowView(_base, pageCount, pageCount);
        // Warm-up outside any measurement: every page of the base gets its page-cache page and every page of the
        // view its page-table entry (first touch costs ~14 µs a page on these VMs).
        for (long page = 0; page < pageCount; page++)
        {
            _leader.GetPage(page)[0] = 1;
        }

        _base.WriteRuns(_leader, [new PageRun(0, pageCount)]);
        _leader.ResetToBase();
        int sum = 0;
        for (long page = 0; page < pageCount; page++)
        {
            sum += Volatile.Read(ref _leader.GetPage(page)[0]);
        }

        if (sum != pageCount)
        {
            throw new InvalidOperationException($"warm-up read {sum}, expected {pageCount}");
        }

        _tracker = DirtyTracker.Create(kind, _leader);
    }

    public long PageCount { get; }

    /// <summary>Writes <paramref name="dirtyPages"/> spread pages, collects; returns the number of runs reported.</summary>
    public int Run(int dirtyPages)
    {
        long stride = dirtyPages == 0 ? 1 : PageCount / dirtyPages;
        for (int i = 0; i < dirtyPages; i++)
        {
            _leader.GetPage(i * stride)[8]++;
        }

        _tracker.Collect(_runs);
        if (_kind == TrackerKind.CowFile)
        {
            _leader.ResetToBase(_runs);
        }

        return _runs.Count;
    }

    public void Dispose()
    {
        _tracker.Dispose();
        _leader.Dispose();
        _base.Dispose();
    }
}
