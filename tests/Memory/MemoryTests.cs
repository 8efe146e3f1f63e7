using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Memory;

public sealed unsafe class MemoryTests
{
    [Fact]
    public void CowView_Grow_KeepsAddressAndBytesAndShowsBasePages()
    {
        using var pageBase = PageBase.Create(16);
        pageBase.Write(new PageRun(10, 1), Enumerable.Repeat((byte)9, Pages.Size).ToArray());
        using var view = new CowView(pageBase, 8, 64);
        byte* before = view.Pointer;
        Bytes.Fill(view, 7, 3);

        view.Resize(16);

        Assert.True(before == view.Pointer);
        Assert.Equal(3, view.GetPage(7)[0]);
        Assert.Equal(9, view.GetPage(10)[0]);
        Assert.Equal(16 * Pages.Size, view.ByteLength);
    }

    [Fact]
    public void CowView_AfterBaseWrite_CleanPagesShowNewBytesAndPrivateCopiesKeepTheirs()
    {
        using var pageBase = PageBase.Create(4);
        using var view = new CowView(pageBase, 4, 4);
        _ = view.GetPage(0)[0];  // mapped for reading: stays clean
        Bytes.Fill(view, 1, 5);  // private copy
        byte[] seven = Enumerable.Repeat((byte)7, 2 * Pages.Size).ToArray();

        pageBase.Write(new PageRun(0, 2), seven);

        Assert.Equal(7, view.GetPage(0)[0]);
        Assert.Equal(5, view.GetPage(1)[0]);
        view.ResetToBase();
        Assert.Equal(7, view.GetPage(1)[0]);
    }

    [Fact]
    public void CowView_ResetToBaseRuns_DropsOnlyThosePrivateCopies()
    {
        using var pageBase = PageBase.Create(8);
        using var view = new CowView(pageBase, 8, 8);
        Bytes.Fill(view, 2, 1);
        Bytes.Fill(view, 5, 1);
        view.ResetToBase([new PageRun(2, 1)]);
        var runs = new List<PageRun>();
        view.CollectPrivatePages(runs);
        Assert.Equal([new PageRun(5, 1)], runs);
        Assert.Equal(0, view.GetPage(2)[0]);
    }

    [Fact]
    public void Resize_BeyondTheReservation_IsRejected()
    {
        using var pageBase = PageBase.Create(64);
        using var view = new CowView(pageBase, 4, 8);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => view.Resize(9));
        Assert.Contains("reservation holds 8 pages", e.Message);
        Assert.Equal(4, view.PageCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => view.Resize(-1));
    }

    [Fact]
    public void CowView_BeyondItsBase_IsRejectedBeforeMapping()
    {
        using var pageBase = PageBase.Create(4);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CowView(pageBase, 5, 8));
        Assert.Contains("grow the base first", e.Message);
        using var view = new CowView(pageBase, 4, 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => view.Resize(6));
        Assert.Equal(4, view.PageCount);
    }

    [Fact]
    public void Shrink_ThenGrow_PrivateMemoryReadsZeros()
    {
        using var memory = new PrivateMemory(8, 8);
        Bytes.Fill(memory, 6, 1);
        memory.Resize(4);
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.GetPage(6));
        memory.Resize(8);
        Assert.Equal(0, memory.GetPage(6)[0]);
    }

    [Fact]
    public void BadSizes_AreRejectedWithTheirParameterName()
    {
        Assert.Equal("pageCount", Assert.Throws<ArgumentOutOfRangeException>(() => PageBase.Create(-1)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => PageBase.Create(Pages.MaxPageCount + 1));
        Assert.Equal("maxPageCount", Assert.Throws<ArgumentOutOfRangeException>(() => new PrivateMemory(0, -1)).ParamName);
        Assert.Equal("reservedBytes", Assert.Throws<ArgumentOutOfRangeException>(() => new PrivateMemory(0, 4, -1)).ParamName);
        using (var guarded = new PrivateMemory(1, 2, reservedBytes: (1L << 33) + 1))
        {
            Assert.Equal((1L << 33) + Pages.Size, guarded.ReservedBytes); // rounded up to a page
            Assert.Equal(2, guarded.MaxPageCount);
            Assert.Throws<ArgumentOutOfRangeException>(() => guarded.Resize(3)); // the guard region is never mapped
        }

        using var pageBase = PageBase.Create(4);
        Assert.Throws<ArgumentOutOfRangeException>(() => pageBase.Grow(3));
        Assert.Throws<ArgumentException>(() => pageBase.Write(new PageRun(0, 1), new byte[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => pageBase.Read(new PageRun(3, 2), new byte[2 * Pages.Size]));
        using var memory = new PrivateMemory(2, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => memory.GetSpan(Pages.Size, Pages.Size + 1));
    }

    [Fact]
    public void PageBase_GrowThenRead_NewPagesAreZeroAndOldBytesKept()
    {
        using var pageBase = PageBase.Create(1);
        pageBase.Write(new PageRun(0, 1), Enumerable.Repeat((byte)4, Pages.Size).ToArray());
        pageBase.Grow(3);
        byte[] all = new byte[3 * Pages.Size];
        pageBase.Read(new PageRun(0, 3), all);
        Assert.All(all.AsSpan(0, Pages.Size).ToArray(), b => Assert.Equal(4, b));
        Assert.All(all.AsSpan(Pages.Size).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public void UseAfterDispose_ThrowsObjectDisposed()
    {
        var pageBase = PageBase.Create(2);
        var view = new CowView(pageBase, 2, 4);
        view.Dispose();
        Assert.True(view.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => view.GetPage(0));
        Assert.Throws<ObjectDisposedException>(() => view.Resize(1));
        Assert.Throws<ObjectDisposedException>(() => view.ResetToBase());
        Assert.Throws<ObjectDisposedException>(() => view.CollectPrivatePages([]));
        pageBase.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pageBase.Grow(4));
        Assert.Throws<ObjectDisposedException>(() => new CowView(pageBase, 1, 2));
    }

    [Fact]
    public void FailedSyscall_ThrowsTypedExceptionNamingOperationAndErrno()
    {
        var e = Assert.Throws<NativeCallException>(() =>
            Libc.Mmap(0, 1L << 62, Prot.PROT_READ, MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS, -1, 0));
        Assert.Equal("ENOMEM", e.ErrnoName);
        Assert.StartsWith("mmap(", e.Operation);
        Assert.Contains("len=4611686018427387904", e.Message);
        Assert.Contains("ENOMEM", e.Message);
    }

    [Fact]
    public void PageRuns_IntersectAndCoalesce()
    {
        var output = new List<PageRun>();
        Pages.Intersect([new(0, 4), new(10, 5)], [new(2, 10), new(14, 3)], output);
        Assert.Equal([new(2, 2), new(10, 2), new(14, 1)], output);
        var runs = new List<PageRun>();
        Pages.AppendCoalesced(runs, 0, 2);
        Pages.AppendCoalesced(runs, 2, 1);
        Pages.AppendCoalesced(runs, 5, 1);
        Assert.Equal([new(0, 3), new(5, 1)], runs);
        var union = new List<PageRun>();
        Pages.Union([new(0, 2), new(8, 2)], [new(1, 3), new(5, 1), new(10, 1)], union);
        Assert.Equal([new(0, 4), new(5, 1), new(8, 3)], union);
    }
}
