namespace CowWasm.Memory.Trackers;

/// <summary>The ways of finding the pages a writer dirtied.</summary>
public enum TrackerKind
{
    /// <summary>PAGEMAP_SCAN "present and not file-backed" over a <see cref="CowView"/>: the private CoW copies. Views only.</summary>
    CowFile,

    /// <summary>userfaultfd write-protect (async) + PAGEMAP_SCAN with WP_MATCHING. Any memory; Linux ≥ 6.7.</summary>
    UffdWriteProtect,

    /// <summary>Soft-dirty bits (clear_refs <c>4</c> + pagemap bit 55). Any memory; needs CONFIG_MEM_SOFT_DIRTY. Clearing is process-wide.</summary>
    SoftDirty,

    /// <summary>Page-by-page comparison against a shadow copy (vectorized). Any memory, any kernel; costs O(size) per collect.</summary>
    Compare,

    /// <summary>Reports every page: the naive baseline.</summary>
    AllPages,

    /// <summary>
    /// A dirty map (a byte per page) that every writer marks: generated guest code on each store and bulk op, the
    /// engine's write APIs for the host. No faults, no syscalls; any memory, any kernel. Collect is O(pages) bytes.
    /// </summary>
    StoreBarrier,
}
