using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using CowWasm.Memory;

namespace CowWasm.Bench;

/// <summary>
/// One tracking cycle of a leader: write one byte to each of <see cref="DirtyPages"/> pages (spread evenly),
/// then Collect (and, for the CoW-file tracker, return the pages to the base — its way of re-arming).
/// The cycle includes the write faults the tracker itself causes (uffd write-protect faults, CoW faults),
/// because that is what tracking costs a writer. Per scanned page = Cycle(0) / PageCount;
/// per dirty page = (Cycle(N) − Cycle(0)) / N. <see cref="DirtyPages"/> = 0 is each tracker's baseline.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class TrackerCostBenchmarks
{
    private readonly List<PageRun> _runs = [];
    private PageBase _base = null!;
    private CowView _leader = null!;
    private DirtyTracker _tracker = null!;
    private long _stride;

    [Params(TrackerKind.CowFile, TrackerKind.UffdWriteProtect, TrackerKind.Compare, TrackerKind.AllPages)]
    public TrackerKind Tracker { get; set; }

    [Params(16384, 65536)]
    public long PageCount { get; set; }

    [Params(0, 64, 1024)]
    public int DirtyPages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _base = PageBase.Create(PageCount);
        _leader = new CowView(_base, PageCount, PageCount);
        // Warm-up outside the measurement: every page of the base gets its page-cache page and every page of the
        // view its page-table entry (first touch costs ~14 µs a page on these VMs).
        for (long page = 0; page < PageCount; page++)
        {
            _leader.GetPage(page)[0] = 1;
        }

        _base.WriteRuns(_leader, [new PageRun(0, PageCount)]);
        _leader.ResetToBase();
        // Map every page for reading again (present, file-backed): the scan then walks real page-table entries.
        int sum = 0;
        for (long page = 0; page < PageCount; page++)
        {
            sum += Volatile.Read(ref _leader.GetPage(page)[0]);
        }

        if (sum != PageCount)
        {
            throw new InvalidOperationException($"warm-up read {sum}, expected {PageCount}");
        }

        _tracker = DirtyTracker.Create(Tracker, _leader);
        _stride = DirtyPages == 0 ? 1 : PageCount / DirtyPages;
    }

    [Benchmark]
    public int Cycle()
    {
        for (int i = 0; i < DirtyPages; i++)
        {
            _leader.GetPage(i * _stride)[8]++;
        }

        _tracker.Collect(_runs);
        if (Tracker == TrackerKind.CowFile)
        {
            _leader.ResetToBase(_runs);
        }

        return _runs.Count;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tracker.Dispose();
        _leader.Dispose();
        _base.Dispose();
    }

    private sealed class Config : ManualConfig
    {
        public Config() => AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(4).WithIterationCount(10));
    }
}
