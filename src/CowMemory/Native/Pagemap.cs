using System.Runtime.InteropServices;

namespace CowWasm.Memory.Native;

/// <summary>PAGEMAP_SCAN page categories (<c>include/uapi/linux/fs.h</c>).</summary>
[Flags]
internal enum PageCategory : ulong
{
    PAGE_IS_WPALLOWED = 1,
    PAGE_IS_WRITTEN = 2,
    PAGE_IS_FILE = 4,
    PAGE_IS_PRESENT = 8,
    PAGE_IS_SWAPPED = 16,
    PAGE_IS_PFNZERO = 32,
    PAGE_IS_HUGE = 64,
    PAGE_IS_SOFT_DIRTY = 128,
}

/// <summary>PAGEMAP_SCAN flags.</summary>
[Flags]
internal enum PmScanFlags : ulong
{
    None = 0,
    PM_SCAN_WP_MATCHING = 1,
    PM_SCAN_CHECK_WPASYNC = 2,
}

/// <summary>
/// /proc/self/pagemap: the PAGEMAP_SCAN ioctl (Linux ≥ 6.7) and, as the fallback, reading the 8-byte entries.
/// One process-wide read-only fd; both paths are safe to call from many threads at once
/// (ioctl and pread carry no file position).
/// </summary>
internal static unsafe class Pagemap
{
    private const ulong PAGEMAP_SCAN = 0xC0606610;
    private const int RegionBatch = 128;

    // Entry bits (Documentation/admin-guide/mm/pagemap.rst).
    public const ulong PresentBit = 1UL << 63;
    public const ulong FileOrSharedBit = 1UL << 61;
    public const ulong SwapBit = 1UL << 62;
    public const ulong SoftDirtyBit = 1UL << 55;

    private static readonly Lazy<SafeFdHandle> s_fd =
        new(() => Libc.Open("/proc/self/pagemap", OpenFlags.O_RDONLY), LazyThreadSafetyMode.ExecutionAndPublication);

    internal static SafeFdHandle Fd => s_fd.Value;

    [StructLayout(LayoutKind.Sequential)]
    private struct PmScanArg
    {
        public ulong Size, Flags, Start, End, WalkEnd, Vec, VecLen, MaxPages;
        public ulong CategoryInverted, CategoryMask, CategoryAnyofMask, ReturnMask;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PageRegion
    {
        public ulong Start, End, Categories;
    }

    /// <summary>
    /// Appends to <paramref name="runs"/> the coalesced runs of pages in [<paramref name="start"/>,
    /// start + byteLength) whose categories match: <c>((categories ^ inverted) &amp; mask) == mask</c> and, when
    /// <paramref name="anyOf"/> is non-zero, have at least one of its categories.
    /// Page indices are relative to <paramref name="start"/>. With <see cref="PmScanFlags.PM_SCAN_WP_MATCHING"/>
    /// the matched pages are write-protected again in the same call.
    /// </summary>
    public static void Scan(nint start, long byteLength, PmScanFlags flags, PageCategory mask, PageCategory inverted,
        PageCategory anyOf,
        List<PageRun> runs)
    {
        ulong end = (ulong)start + (ulong)byteLength;
        ulong cursor = (ulong)start;
        PageRegion* regions = stackalloc PageRegion[RegionBatch];
        while (cursor < end)
        {
            var arg = new PmScanArg
            {
                Size = (ulong)sizeof(PmScanArg),
                Flags = (ulong)flags,
                Start = cursor,
                End = end,
                Vec = (ulong)regions,
                VecLen = RegionBatch,
                CategoryInverted = (ulong)inverted,
                CategoryMask = (ulong)mask,
                CategoryAnyofMask = (ulong)anyOf,
                ReturnMask = (ulong)(mask | anyOf),
            };

            // SAFETY: arg and regions live on this frame for the whole call; the kernel writes at most VecLen regions.
            int count = Libc.Ioctl(Fd, PAGEMAP_SCAN, &arg, "PAGEMAP_SCAN");
            for (int i = 0; i < count; i++)
            {
                long first = (long)(regions[i].Start - (ulong)start) >> Pages.Shift;
                long pages = (long)(regions[i].End - regions[i].Start) >> Pages.Shift;
                Pages.AppendCoalesced(runs, first, pages);
            }

            if (arg.WalkEnd <= cursor)
            {
                throw new InvalidOperationException($"PAGEMAP_SCAN made no progress at 0x{cursor:x}.");
            }

            cursor = arg.WalkEnd;
        }
    }

    /// <summary>Probe: whether the PAGEMAP_SCAN ioctl exists (it answers ENOTTY/EINVAL before Linux 6.7).</summary>
    public static int TryScanProbe(nint start, long byteLength)
    {
        PageRegion region;
        var arg = new PmScanArg
        {
            Size = (ulong)sizeof(PmScanArg),
            Start = (ulong)start,
            End = (ulong)start + (ulong)byteLength,
            Vec = (ulong)&region,
            VecLen = 1,
            CategoryMask = (ulong)PageCategory.PAGE_IS_PRESENT,
            ReturnMask = (ulong)PageCategory.PAGE_IS_PRESENT,
        };

        // SAFETY: arg and region are locals that outlive the call; VecLen = 1 bounds the kernel's writes.
        return Libc.TryIoctl(Fd, PAGEMAP_SCAN, &arg);
    }

    /// <summary>
    /// Fallback for kernels without PAGEMAP_SCAN: reads the pagemap entries (8 bytes a page) in batches and
    /// appends the runs of pages for which <paramref name="predicate"/> holds.
    /// </summary>
    public static void ScanByRead(nint start, long byteLength, Func<ulong, bool> predicate, List<PageRun> runs)
    {
        const int Batch = 512;
        ulong* entries = stackalloc ulong[Batch];
        long firstPage = (long)((ulong)start >> Pages.Shift);
        long pageCount = byteLength >> Pages.Shift;
        for (long done = 0; done < pageCount; done += Batch)
        {
            int n = (int)Math.Min(Batch, pageCount - done);
            // SAFETY: entries holds Batch ulongs; we read n ≤ Batch entries.
            Libc.PreadExactly(Fd, (byte*)entries, n * sizeof(ulong), (firstPage + done) * sizeof(ulong));
            for (int i = 0; i < n; i++)
            {
                if (predicate(entries[i]))
                {
                    Pages.AppendCoalesced(runs, done + i, 1);
                }
            }
        }
    }

    /// <summary>Reads one page's pagemap entry.</summary>
    public static ulong ReadEntry(nint address)
    {
        ulong entry;
        // SAFETY: entry is a local of the right size.
        Libc.PreadExactly(Fd, (byte*)&entry, sizeof(ulong), (long)((ulong)address >> Pages.Shift) * sizeof(ulong));
        return entry;
    }
}
