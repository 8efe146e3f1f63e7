using CowWasm.Memory.Native;

namespace CowWasm.Memory;

/// <summary>
/// A <c>MAP_PRIVATE | MAP_FIXED</c> view of a <see cref="PageBase"/> inside a never-moving reservation.
/// Reading shares the base's page-cache pages; the first write to a page makes a private copy (CoW).
/// </summary>
/// <remarks>
/// A page of a view is <b>clean</b> when it is not a private copy: it then shows the base's <i>current</i>
/// bytes, including bytes written to the base after the view was mapped. <see cref="ResetToBase()"/> makes
/// pages clean again with <c>MADV_DONTNEED</c>; <see cref="CollectPrivatePages"/> lists the private copies.
/// </remarks>
public sealed unsafe class CowView : PageMemory
{
    /// <summary>
    /// Maps the first <paramref name="pageCount"/> pages of <paramref name="pageBase"/> in a reservation of
    /// <paramref name="maxPageCount"/> pages, or of <paramref name="reservedBytes"/> if that is larger (a guard region).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The page count exceeds the reservation or the base.</exception>
    public CowView(PageBase pageBase, long pageCount, long maxPageCount, long reservedBytes = 0)
        : this(pageBase, pageCount, maxPageCount, zeroFillBeyondBase: false, reservedBytes)
    {
    }

    /// <param name="pageBase">The base.</param>
    /// <param name="pageCount">Pages to map now.</param>
    /// <param name="maxPageCount">The reservation's size.</param>
    /// <param name="zeroFillBeyondBase">Replicas only: pages beyond the base's length are mapped as private
    /// anonymous zero pages (scratch a read may grow into) instead of being refused.</param>
    /// <param name="reservedBytes">Address space to reserve if more than <paramref name="maxPageCount"/> pages.</param>
    internal CowView(PageBase pageBase, long pageCount, long maxPageCount, bool zeroFillBeyondBase, long reservedBytes)
        : base(maxPageCount, reservedBytes)
    {
        ArgumentNullException.ThrowIfNull(pageBase);
        Base = pageBase;
        _zeroFillBeyondBase = zeroFillBeyondBase;
        try
        {
            Resize(pageCount);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private readonly bool _zeroFillBeyondBase;
    [ThreadStatic]
    private static List<PageRun>? t_swapped; // CollectPrivatePages' scratch: no allocation per commit, no shared state

    /// <summary>The base this view maps.</summary>
    public PageBase Base { get; }

    private protected override void MapPages(long fromPage, long toPage)
    {
        long basePages = Base.PageCount;
        if (toPage > basePages && !_zeroFillBeyondBase)
        {
            throw new ArgumentOutOfRangeException(nameof(toPage), toPage,
                $"A view cannot map {toPage} pages of a base that has {basePages}: grow the base first.");
        }

        long fileEnd = Math.Min(toPage, basePages);
        if (fileEnd > fromPage)
        {
            using var _ = Base.Handle.Use(out int fd);
            Libc.Mmap(Address + (nint)Pages.ToBytes(fromPage), Pages.ToBytes(fileEnd - fromPage),
                Prot.PROT_READ | Prot.PROT_WRITE, MapFlags.MAP_PRIVATE | MapFlags.MAP_FIXED, fd, Base.DataOffset + Pages.ToBytes(fromPage));
        }

        long zeroStart = Math.Max(fromPage, basePages);
        if (toPage > zeroStart)
        {
            // Beyond the file a MAP_SHARED-file view would SIGBUS; a replica's scratch is anonymous zero pages.
            Libc.Mmap(Address + (nint)Pages.ToBytes(zeroStart), Pages.ToBytes(toPage - zeroStart),
                Prot.PROT_READ | Prot.PROT_WRITE, MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS | MapFlags.MAP_FIXED, -1, 0);
        }
    }

    /// <summary>Drops every private copy: the whole view shows the base again (one <c>madvise</c>).</summary>
    public void ResetToBase()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (PageCount > 0)
        {
            Libc.Madvise(Address, ByteLength, Advice.MADV_DONTNEED);
        }
    }

    /// <summary>Drops the private copies in <paramref name="runs"/> (one <c>madvise</c> a run).</summary>
    public void ResetToBase(IReadOnlyList<PageRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        for (int i = 0; i < runs.Count; i++)
        {
            CheckRun(runs[i]);
            Libc.Madvise(Address + (nint)runs[i].ByteOffset, runs[i].ByteLength, Advice.MADV_DONTNEED);
        }
    }

    /// <summary>
    /// Makes the pages of <paramref name="runs"/> (clipped to the mapped pages) private copies of what they show now,
    /// without changing a byte (<c>MADV_POPULATE_WRITE</c>, Linux ≥ 5.14): later writes to the base no longer show
    /// through them. A follower pins a commit's pages this way before its owner writes them, so reads in flight keep
    /// the state they started with.
    /// </summary>
    public void Pin(IReadOnlyList<PageRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        long mapped = PageCount;
        for (int i = 0; i < runs.Count; i++)
        {
            long start = runs[i].StartPage, end = Math.Min(runs[i].EndPage, mapped);
            if (start >= 0 && end > start)
            {
                Libc.Madvise(Address + (nint)Pages.ToBytes(start), Pages.ToBytes(end - start), Advice.MADV_POPULATE_WRITE);
            }
        }
    }

    /// <summary>
    /// Replaces the contents of <paramref name="runs"/> with the private copies of this view's pages that are
    /// private copies (written since mapped or since last reset to base), as sorted coalesced runs.
    /// Uses PAGEMAP_SCAN (present and not file-backed); on kernels without it, reads pagemap entries.
    /// </summary>
    /// <remarks>
    /// Swapped-out private copies are <b>not</b> reported: PAGEMAP_SCAN cannot tell a swap entry from the PTE
    /// markers userfaultfd's WP_UNPOPULATED leaves on untouched pages (both are "swapped"), and counting markers
    /// would report every untouched page of a uffd-tracked view. Run without swap, or lock the memory.
    /// </remarks>
    public void CollectPrivatePages(List<PageRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        runs.Clear();
        if (PageCount == 0)
        {
            return;
        }

        // A private copy may also be swapped out, or in the middle of a migration (compaction, NUMA balancing): its
        // entry is then a swap entry, not a present page. Those count too — except where a userfaultfd tracker watches
        // this view, whose write-protect markers are swap-type entries as well.
        bool countSwapped = !HasUffdTracker;
        if (KernelFeatures.IsSupported(KernelFeature.PagemapScan) && !ForcePagemapReadFallback)
        {
            Pagemap.Scan(Address, ByteLength, PmScanFlags.None, PageCategory.PAGE_IS_PRESENT | PageCategory.PAGE_IS_FILE,
                PageCategory.PAGE_IS_FILE, 0, runs);
            if (countSwapped)
            {
                // Swap and migration entries of anonymous pages (a file page's migration entry is PAGE_IS_FILE).
                List<PageRun> swapped = t_swapped ??= [];
                swapped.Clear();
                Pagemap.Scan(Address, ByteLength, PmScanFlags.None, PageCategory.PAGE_IS_SWAPPED | PageCategory.PAGE_IS_FILE,
                    PageCategory.PAGE_IS_FILE, 0, swapped);
                MergeInto(runs, swapped);
            }
        }
        else
        {
            Pagemap.ScanByRead(Address, ByteLength, countSwapped ? IsPrivateCopy : IsResidentPrivateCopy, runs);
        }
    }

    /// <summary>A pagemap entry of a private copy: present or swapped (or migrating), and not a file page (bits 63, 62, 61).</summary>
    internal static bool IsPrivateCopy(ulong entry) =>
        (entry & (Pagemap.PresentBit | Pagemap.SwapBit)) != 0 && (entry & Pagemap.FileOrSharedBit) == 0;

    private static bool IsResidentPrivateCopy(ulong entry) =>
        (entry & Pagemap.PresentBit) != 0 && (entry & Pagemap.FileOrSharedBit) == 0;

    /// <summary>Unions <paramref name="extra"/> into <paramref name="runs"/> (both sorted, disjoint).</summary>
    internal static void MergeInto(List<PageRun> runs, List<PageRun> extra)
    {
        if (extra.Count == 0)
        {
            return;
        }

        var union = new List<PageRun>(runs.Count + extra.Count);
        Pages.Union(runs, extra, union);
        runs.Clear();
        runs.AddRange(union);
    }

    /// <summary>Test hook: use the pagemap-read fallback even where PAGEMAP_SCAN exists.</summary>
    internal static bool ForcePagemapReadFallback { get; set; }
}
