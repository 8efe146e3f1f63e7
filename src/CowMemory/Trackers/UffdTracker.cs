using CowWasm.Memory.Native;

namespace CowWasm.Memory.Trackers;

/// <summary>
/// userfaultfd write-protect in async mode: every mapped page is write-protected; the first write to a page is
/// resolved by the kernel (no handler thread) and leaves it "written". Collect is one PAGEMAP_SCAN with
/// WP_MATCHING that returns the written pages and protects them again in the same call.
/// </summary>
/// <remarks>
/// Works for any memory (anonymous or a private file view). One userfaultfd per tracker; closing it
/// unregisters the ranges. <c>MADV_DONTNEED</c> of a page that is write-protected keeps it clean
/// (WP_UNPOPULATED leaves a marker), so commit's collect-then-discard needs no re-arming; copying bytes into
/// a page does count as a write, hence <see cref="DirtyTracker.MarkClean"/> re-protects the runs.
/// </remarks>
internal sealed class UffdTracker : DirtyTracker
{
    private readonly Userfaultfd _uffd;

    public UffdTracker(PageMemory memory)
        : base(memory)
    {
        KernelFeatures.Require(KernelFeature.UserfaultfdWriteProtectAsync);
        _uffd = Userfaultfd.OpenWriteProtectAsync();
        try
        {
            Arm(0, memory.PageCount);
        }
        catch
        {
            _uffd.Dispose();
            throw;
        }
    }

    public override TrackerKind Kind => TrackerKind.UffdWriteProtect;

    private protected override void CollectCore(List<PageRun> runs) =>
        Pagemap.Scan(Memory.Address, Memory.ByteLength,
            PmScanFlags.PM_SCAN_WP_MATCHING | PmScanFlags.PM_SCAN_CHECK_WPASYNC,
            PageCategory.PAGE_IS_WRITTEN, 0, 0, runs);

    private protected override void MarkCleanCore(IReadOnlyList<PageRun> runs)
    {
        for (int i = 0; i < runs.Count; i++)
        {
            _uffd.WriteProtect(Memory.Address + (nint)runs[i].ByteOffset, runs[i].ByteLength);
        }
    }

    private protected override void ResetCore() => _uffd.WriteProtect(Memory.Address, Memory.ByteLength);

    internal override void OnResized(long oldPageCount, long newPageCount)
    {
        // Pages cut off went away with their VMA (and its registration); new pages form a new VMA to register.
        if (newPageCount > oldPageCount)
        {
            Arm(oldPageCount, newPageCount);
        }
    }

    // A MAP_FIXED remap replaced the VMAs and with them the registration.
    internal override void OnRemapped() => Arm(0, Memory.PageCount);

    private void Arm(long fromPage, long toPage)
    {
        if (toPage > fromPage)
        {
            nint start = Memory.Address + (nint)Pages.ToBytes(fromPage);
            long length = Pages.ToBytes(toPage - fromPage);
            _uffd.RegisterWriteProtect(start, length);
            _uffd.WriteProtect(start, length);
        }
    }

    private protected override void DisposeCore() => _uffd.Dispose();
}
