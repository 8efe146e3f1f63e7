namespace CowWasm.Memory.Native;

/// <summary>
/// Probes each <see cref="KernelFeature"/> once per process (a real round trip, not a version check) and
/// caches the answer. Thread-safe.
/// </summary>
public static class KernelFeatures
{
    private static readonly Lazy<(bool, string)>[] s_probes =
    [
        new(ProbePagemapScan),
        new(ProbeUffdWriteProtectAsync),
        new(ProbeSoftDirty),
    ];

    /// <summary>Whether <paramref name="feature"/> works on this kernel.</summary>
    public static bool IsSupported(KernelFeature feature) => s_probes[(int)feature].Value.Item1;

    /// <summary>What the probe found (why a feature is missing, or "ok").</summary>
    public static string Describe(KernelFeature feature) => s_probes[(int)feature].Value.Item2;

    /// <summary>Throws <see cref="KernelFeatureNotSupportedException"/> unless <paramref name="feature"/> works.</summary>
    public static void Require(KernelFeature feature)
    {
        (bool ok, string reason) = s_probes[(int)feature].Value;
        if (!ok)
        {
            throw new KernelFeatureNotSupportedException(feature, reason);
        }
    }

    private static (bool, string) ProbePagemapScan()
    {
        using var page = ProbePage.Create();
        int result = Pagemap.TryScanProbe(page.Address, Pages.Size);
        return result >= 0 ? (true, "ok") : (false, $"PAGEMAP_SCAN answered {Errno.Name(-result)} (needs Linux ≥ 6.7)");
    }

    private static unsafe (bool, string) ProbeUffdWriteProtectAsync()
    {
        if (!IsSupported(KernelFeature.PagemapScan))
        {
            return (false, "needs PAGEMAP_SCAN to read the written bits");
        }

        try
        {
            using var uffd = Userfaultfd.OpenWriteProtectAsync();
            using var page = ProbePage.Create(pageCount: 2);
            uffd.RegisterWriteProtect(page.Address, 2 * Pages.Size);
            uffd.WriteProtect(page.Address, 2 * Pages.Size);
            // SAFETY: page maps two writable pages we own.
            *(byte*)(page.Address + Pages.Size) = 1;
            var runs = new List<PageRun>();
            Pagemap.Scan(page.Address, 2 * Pages.Size,
                PmScanFlags.PM_SCAN_WP_MATCHING | PmScanFlags.PM_SCAN_CHECK_WPASYNC,
                PageCategory.PAGE_IS_WRITTEN, 0, 0, runs);
            return runs is [{ StartPage: 1, PageCount: 1 }]
                ? (true, "ok")
                : (false, $"a write to page 1 was reported as [{string.Join(", ", runs)}]");
        }
        catch (Exception e) when (e is NativeCallException or KernelFeatureNotSupportedException)
        {
            return (false, e.Message);
        }
    }

    private static unsafe (bool, string) ProbeSoftDirty()
    {
        if (!File.Exists("/proc/self/clear_refs"))
        {
            return (false, "/proc/self/clear_refs is missing");
        }

        // A new VMA starts soft-dirty on kernels with CONFIG_MEM_SOFT_DIRTY, so a written fresh page must show
        // bit 55 without touching clear_refs (which would disturb live soft-dirty trackers). Kernels without
        // the option accept clear_refs "4" silently and never set the bit: this is what we must detect.
        using var page = ProbePage.Create();
        // SAFETY: page maps one writable page we own.
        *(byte*)page.Address = 1;
        ulong entry = Pagemap.ReadEntry(page.Address);
        return (entry & Pagemap.SoftDirtyBit) != 0
            ? (true, "ok")
            : (false, "a freshly written page has no soft-dirty bit (kernel built without CONFIG_MEM_SOFT_DIRTY)");
    }

    /// <summary>A small private anonymous mapping for probes.</summary>
    private readonly struct ProbePage(nint address, int pageCount) : IDisposable
    {
        public nint Address => address;

        public static ProbePage Create(int pageCount = 1) =>
            new(Libc.Mmap(0, pageCount * Pages.Size, Prot.PROT_READ | Prot.PROT_WRITE,
                MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS, -1, 0), pageCount);

        public void Dispose() => Libc.TryMunmap(address, pageCount * Pages.Size);
    }
}
