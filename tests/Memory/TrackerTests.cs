using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Trackers;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Memory;

public sealed class TrackerTests
{
    private const long PageCount = 32;

    /// <summary>Every supported tracker over every kind of memory it applies to.</summary>
    public static TheoryData<TrackerKind, bool> TrackersAndMemories()
    {
        var rows = new TheoryData<TrackerKind, bool>();
        foreach (TrackerKind kind in Trackers.Supported)
        {
            rows.Add(kind, true);
            if (DirtyTracker.AppliesToPrivateMemory(kind))
            {
                rows.Add(kind, false);
            }
        }

        return rows;
    }

    private sealed class Fixture : IDisposable
    {
        public Fixture(TrackerKind kind, bool view, long pageCount = PageCount)
        {
            Base = PageBase.Create(pageCount * 2);
            Memory = view ? new CowView(Base, pageCount, pageCount * 2) : new PrivateMemory(pageCount, pageCount * 2);
            Tracker = DirtyTracker.Create(kind, Memory);
        }

        public PageBase Base { get; }

        public PageMemory Memory { get; }

        public DirtyTracker Tracker { get; }

        /// <summary>What a collect must report: everything for AllPages, the written runs otherwise.</summary>
        public PageRun[] Expect(params PageRun[] written) =>
            Tracker.Kind == TrackerKind.AllPages ? [new PageRun(0, Memory.PageCount)] : written;

        /// <summary>The owner's end of an interval: CoW-file pages count as collected once returned to the base.</summary>
        public void EndInterval(IReadOnlyList<PageRun> collected)
        {
            if (Tracker.Kind == TrackerKind.CowFile)
            {
                ((CowView)Memory).ResetToBase(collected);
            }
        }

        public void Dispose()
        {
            Tracker.Dispose();
            Memory.Dispose();
            Base.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(TrackersAndMemories))]
    public void Collect_AfterWritesToKnownPages_ReportsExactlyThoseRuns(TrackerKind kind, bool view)
    {
        using var f = new Fixture(kind, view);
        Bytes.Fill(f.Memory, 3, 1);
        Bytes.Fill(f.Memory, 4, 1);
        f.Memory.GetPage(9)[100] = 7;
        f.Memory.GetPage(31)[4095] = 7;
        _ = f.Memory.ReadSpan(Pages.ToBytes(12), 1)[0]; // reads are not writes (GetPage is the writable API: a store barrier counts it)

        IReadOnlyList<PageRun> first = f.Tracker.Collect();
        Assert.Equal(f.Expect(new(3, 2), new(9, 1), new(31, 1)), first);
        f.EndInterval(first);

        Bytes.Fill(f.Memory, 0, 5);
        Bytes.Fill(f.Memory, 10, 5);
        Assert.Equal(f.Expect(new(0, 1), new(10, 1)), f.Tracker.Collect());
    }

    [Theory]
    [MemberData(nameof(TrackersAndMemories))]
    public void Collect_WithNoWritesSinceLastCollect_ReportsNothing(TrackerKind kind, bool view)
    {
        using var f = new Fixture(kind, view);
        Bytes.Fill(f.Memory, 5, 1);
        f.EndInterval(f.Tracker.Collect());
        Assert.Equal(kind == TrackerKind.AllPages ? f.Expect() : [], f.Tracker.Collect());
    }

    [Theory]
    [MemberData(nameof(TrackersAndMemories))]
    public void Collect_AfterGrowAndShrink_FollowsTheMemory(TrackerKind kind, bool view)
    {
        using var f = new Fixture(kind, view);
        f.Memory.Resize(PageCount + 8);
        Bytes.Fill(f.Memory, PageCount + 6, 9);
        IReadOnlyList<PageRun> grown = f.Tracker.Collect();
        Assert.Equal(f.Expect(new PageRun(PageCount + 6, 1)), grown);
        f.EndInterval(grown);

        f.Memory.Resize(20);
        Bytes.Fill(f.Memory, 19, 9);
        Assert.Equal(f.Expect(new PageRun(19, 1)), f.Tracker.Collect());
    }

    [Theory]
    [MemberData(nameof(TrackersAndMemories))]
    public void MarkClean_AfterOwnerRewritesPages_DoesNotReportThem(TrackerKind kind, bool view)
    {
        if (kind == TrackerKind.CowFile)
        {
            return; // by design a private copy stays reported until returned to the base (see CowFileTracker)
        }

        using var f = new Fixture(kind, view);
        Bytes.Fill(f.Memory, 6, 3);
        Bytes.Fill(f.Memory, 7, 3);
        f.Tracker.MarkClean([new PageRun(6, 1)]);
        Assert.Equal(f.Expect(new PageRun(7, 1)), f.Tracker.Collect());
    }

    [Theory]
    [MemberData(nameof(TrackersAndMemories))]
    public void Reset_ForgetsEveryWriteSoFar(TrackerKind kind, bool view)
    {
        if (kind == TrackerKind.CowFile)
        {
            return; // cannot forget a private copy: ResetToBase is the CoW-file reset
        }

        using var f = new Fixture(kind, view);
        Bytes.Fill(f.Memory, 2, 3);
        f.Tracker.Reset();
        Bytes.Fill(f.Memory, 8, 3);
        Assert.Equal(f.Expect(new PageRun(8, 1)), f.Tracker.Collect());
    }

    [Theory]
    [MemberData(nameof(TrackersAndMemories))]
    public void OnDiscarded_AfterCollectAndDontNeed_PagesStayClean(TrackerKind kind, bool view)
    {
        if (!view)
        {
            return; // discarding to a base only exists for views
        }

        using var f = new Fixture(kind, view);
        Bytes.Fill(f.Memory, 3, 1);
        IReadOnlyList<PageRun> runs = f.Tracker.Collect();
        ((CowView)f.Memory).ResetToBase(runs);
        f.Tracker.OnDiscarded(runs);
        Assert.Equal(kind == TrackerKind.AllPages ? f.Expect() : [], f.Tracker.Collect());
        Bytes.Fill(f.Memory, 3, 2); // and a later write to a discarded page is seen again
        Assert.Equal(f.Expect(new PageRun(3, 1)), f.Tracker.Collect());
    }

    [Fact]
    public void Compare_WriteOfTheSameBytes_IsNotReported()
    {
        using var f = new Fixture(TrackerKind.Compare, view: false);
        f.Memory.GetPage(4)[0] = 0;
        f.Memory.GetPage(5)[0] = 1;
        Assert.Equal([new PageRun(5, 1)], f.Tracker.Collect());
    }

    [Fact]
    public void CowFile_OnPrivateMemory_IsRejectedClearly()
    {
        using var memory = new PrivateMemory(4, 8);
        var e = Assert.Throws<ArgumentException>(() => DirtyTracker.Create(TrackerKind.CowFile, memory));
        Assert.Contains("CowView", e.Message);
    }

    [Fact]
    public void SoftDirty_WhereTheKernelLacksIt_ThrowsNotSupportedInsteadOfReportingNothing()
    {
        using var memory = new PrivateMemory(4, 8);
        if (KernelFeatures.IsSupported(KernelFeature.SoftDirty))
        {
            using DirtyTracker tracker = DirtyTracker.Create(TrackerKind.SoftDirty, memory);
            Bytes.Fill(memory, 1, 1);
            Assert.Equal([new PageRun(1, 1)], tracker.Collect());
            return;
        }

        var e = Assert.Throws<KernelFeatureNotSupportedException>(() => DirtyTracker.Create(TrackerKind.SoftDirty, memory));
        Assert.Equal(KernelFeature.SoftDirty, e.Feature);
        Assert.Contains("CONFIG_MEM_SOFT_DIRTY", e.Message);
    }

    [KernelFact(KernelFeature.SoftDirty)]
    public void SoftDirty_TwoTrackers_ClearingForOneKeepsTheOthersWrites()
    {
        using var a = new PrivateMemory(8, 8);
        using var b = new PrivateMemory(8, 8);
        using DirtyTracker ta = DirtyTracker.Create(TrackerKind.SoftDirty, a);
        using DirtyTracker tb = DirtyTracker.Create(TrackerKind.SoftDirty, b);
        Bytes.Fill(a, 2, 1);
        Bytes.Fill(b, 5, 1);
        Assert.Equal([new PageRun(2, 1)], ta.Collect()); // clears the process's bits
        Assert.Equal([new PageRun(5, 1)], tb.Collect()); // b's write survived the clear
    }

    [Fact]
    public void CollectPrivatePages_PagemapReadFallback_AgreesWithPagemapScan()
    {
        using var pageBase = PageBase.Create(64);
        using var view = new CowView(pageBase, 64, 64);
        foreach (int page in new[] { 0, 1, 2, 17, 40, 63 })
        {
            Bytes.Fill(view, page, 1);
        }

        _ = view.GetPage(30)[0];
        var scanned = new List<PageRun>();
        var read = new List<PageRun>();
        view.CollectPrivatePages(scanned);
        try
        {
            CowView.ForcePagemapReadFallback = true;
            view.CollectPrivatePages(read);
        }
        finally
        {
            CowView.ForcePagemapReadFallback = false;
        }

        Assert.Equal([new(0, 3), new(17, 1), new(40, 1), new(63, 1)], scanned);
        Assert.Equal(scanned, read);
    }

    [Fact]
    public void Tracker_UseAfterDispose_Throws()
    {
        using var memory = new PrivateMemory(4, 8);
        DirtyTracker tracker = DirtyTracker.Create(TrackerKind.Compare, memory);
        tracker.Dispose();
        Assert.Throws<ObjectDisposedException>(() => tracker.Collect());
        Assert.Throws<ObjectDisposedException>(tracker.Reset);
        memory.Resize(6); // a disposed tracker no longer follows the memory
    }
}
