using CowWasm.Memory.Native;

namespace CowWasm.Memory.Trackers;

/// <summary>
/// Soft-dirty bits: writing <c>4</c> to /proc/self/clear_refs clears bit 55 of every page's pagemap entry
/// and write-protects the page tables; the next write to a page sets the bit again.
/// </summary>
/// <remarks>
/// <para><b>Clearing is process-wide.</b> clear_refs resets the bits of every mapping in the process, so a
/// naive second tracker would silently lose the writes the first one had not collected yet. We make
/// coexistence safe: all soft-dirty trackers register in one <see cref="Registry"/>, and before any clear
/// the registry <i>harvests</i> the set bits of every registered tracker into that tracker's pending set.
/// Each clear therefore costs one pagemap scan per live soft-dirty tracker. Everything else in the process
/// (the GC heap, other libraries, CRIU-style users of soft-dirty) also has its bits cleared and takes a
/// minor write fault per page afterwards — a cost the other trackers do not impose.</para>
/// <para>Kernels built without CONFIG_MEM_SOFT_DIRTY (such as this project's CI machines) accept clear_refs
/// <c>4</c> and never set the bit; creating this tracker there throws
/// <see cref="KernelFeatureNotSupportedException"/> rather than reporting "nothing dirty".</para>
/// </remarks>
internal sealed class SoftDirtyTracker : DirtyTracker
{
    private readonly List<PageRun> _scratch = [];
    private PageBitmap _pending;

    public SoftDirtyTracker(PageMemory memory)
        : base(memory)
    {
        KernelFeatures.Require(KernelFeature.SoftDirty);
        _pending = new PageBitmap(memory.MaxPageCount);
        Registry.Add(this);
    }

    public override TrackerKind Kind => TrackerKind.SoftDirty;

    private protected override void CollectCore(List<PageRun> runs) =>
        Registry.HarvestAndClear(then: () =>
        {
            _pending.ToRuns(0, Memory.PageCount, runs);
            _pending.ClearAll();
        });

    private protected override void MarkCleanCore(IReadOnlyList<PageRun> runs) =>
        Registry.HarvestAndClear(then: () =>
        {
            foreach (PageRun run in runs)
            {
                _pending.Clear(run);
            }
        });

    private protected override void ResetCore() => Registry.HarvestAndClear(then: _pending.ClearAll);

    internal override void OnResized(long oldPageCount, long newPageCount)
    {
        // A new VMA starts soft-dirty: harvest the old pages, clear, then forget the (unwritten) new ones.
        Registry.HarvestAndClear(then: () => _pending.Clear(new PageRun(Math.Min(oldPageCount, newPageCount),
            Memory.MaxPageCount - Math.Min(oldPageCount, newPageCount))));
    }

    private protected override void DisposeCore() => Registry.Remove(this);

    /// <summary>Moves the soft-dirty bits of this tracker's pages into its pending set. Registry lock held.</summary>
    private void HarvestUnsynchronized()
    {
        if (Memory.PageCount == 0)
        {
            return;
        }

        _scratch.Clear();
        Pagemap.Scan(Memory.Address, Memory.ByteLength, PmScanFlags.None, PageCategory.PAGE_IS_SOFT_DIRTY, 0, 0, _scratch);
        foreach (PageRun run in _scratch)
        {
            _pending.Set(run);
        }
    }

    /// <summary>The process-wide set of soft-dirty trackers and the one lock around clear_refs.</summary>
    private static class Registry
    {
        private static readonly Lock s_lock = new();
        private static readonly List<SoftDirtyTracker> s_trackers = [];
        private static SafeFdHandle? s_clearRefs;

        public static void Add(SoftDirtyTracker tracker)
        {
            lock (s_lock)
            {
                s_clearRefs ??= Libc.Open("/proc/self/clear_refs", OpenFlags.O_WRONLY);
                s_trackers.Add(tracker);
            }

            // Start clean: whatever was dirty before the tracker existed is not its business.
            tracker.ResetCore();
        }

        public static void Remove(SoftDirtyTracker tracker)
        {
            lock (s_lock)
            {
                s_trackers.Remove(tracker);
            }
        }

        /// <summary>Harvests every tracker, clears the process's soft-dirty bits, then runs <paramref name="then"/> under the lock.</summary>
        public static void HarvestAndClear(Action then)
        {
            lock (s_lock)
            {
                foreach (SoftDirtyTracker tracker in s_trackers)
                {
                    tracker.HarvestUnsynchronized();
                }

                Libc.WriteAll(s_clearRefs!, "4"u8, "/proc/self/clear_refs, \"4\"");
                then();
            }
        }
    }
}
