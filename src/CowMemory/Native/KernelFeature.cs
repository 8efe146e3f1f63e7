namespace CowWasm.Memory.Native;

/// <summary>Kernel features the trackers depend on.</summary>
public enum KernelFeature
{
    /// <summary>The PAGEMAP_SCAN ioctl on /proc/self/pagemap (Linux ≥ 6.7).</summary>
    PagemapScan,

    /// <summary>userfaultfd write-protect in async mode with WP_UNPOPULATED (Linux ≥ 6.7), checked end to end.</summary>
    UserfaultfdWriteProtectAsync,

    /// <summary>Soft-dirty pagemap bit 55 and clear_refs <c>4</c> (needs CONFIG_MEM_SOFT_DIRTY).</summary>
    SoftDirty,
}
