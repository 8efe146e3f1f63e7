using CowWasm.Memory.Trackers;
namespace CowWasm.Memory.Sync;

/// <summary>Configuration of a <see cref="SyncStrategy"/>.</summary>
public sealed record SyncOptions
{
    /// <summary>The strategy. Default: <see cref="SyncStrategyKind.SharedBase"/>.</summary>
    public SyncStrategyKind Strategy { get; init; } = SyncStrategyKind.SharedBase;

    /// <summary>How the leader's dirty pages are found. Default: <see cref="TrackerKind.CowFile"/> (the leader is always a view of the base).</summary>
    public TrackerKind LeaderTracker { get; init; } = TrackerKind.CowFile;

    /// <summary>
    /// How each replica finds the pages a read scribbled on. Null picks <see cref="TrackerKind.UffdWriteProtect"/>
    /// where the kernel has it, else <see cref="TrackerKind.CowFile"/> for SharedBase replicas (views) and
    /// <see cref="TrackerKind.Compare"/> for FullCopy/DirtyCopy replicas (private memory, where CowFile does not apply).
    /// SharedBase replicas cannot use Compare (identical-byte writes leave private copies it cannot see).
    /// </summary>
    /// <remarks>
    /// uffd is the default because its scan is far cheaper per mapped page than the CoW-file scan
    /// (1.3 vs 28 ns a page on 64 MiB, bench/TrackerCostBenchmarks, 2026-11-21), and it knows which
    /// keep-resident pages a read rewrote, so keep-resident resets cost O(pages scribbled), not O(resident).
    /// </remarks>
    public TrackerKind? ReplicaTracker { get; init; }

    /// <summary>SharedBase replicas' reset after a read. Private replicas are always restored by copy-back (MADV_DONTNEED would zero them).</summary>
    public ReplicaResetMode ResetMode { get; init; } = ReplicaResetMode.Madvise;

    /// <summary>
    /// Content-aware sync. At commit, each reported page is compared with the base, and the ones whose bytes did not
    /// change (a guest that rewrites memory with the same bytes, as Trealla's scratch does) are neither written to
    /// the base nor sent to replicas. At a copy-back reset (keep-resident SharedBase replicas, FullCopy/DirtyCopy
    /// replicas), only the scribbled pages that differ from the base are copied back. Costs a pread of the base and a
    /// compare per reported page; saves a base write and every replica's copy of it. Madvise resets are unaffected.
    /// Default false.
    /// </summary>
    public bool SkipUnchangedPages { get; init; }

    /// <summary>What the leader does with a transaction's pages at commit and rollback. Default: <see cref="LeaderResetMode.Discard"/>.</summary>
    public LeaderResetMode LeaderReset { get; init; } = LeaderResetMode.Discard;

    /// <summary>
    /// With <see cref="ReplicaResetMode.KeepResident"/>: the most private memory a replica keeps between reads (default
    /// 64 MiB). A reset that would leave more discards all of the replica's private copies instead (as
    /// <see cref="ReplicaResetMode.Madvise"/> does), so N replicas can never grow to N × the memory.
    /// </summary>
    public long KeepResidentMaxBytes { get; init; } = 64L << 20;

    /// <summary>Pages the committed image starts with (zero-filled).</summary>
    public long InitialPageCount { get; init; }

    /// <summary>Pages every memory reserves (address space only): the most the leader can grow to. Default 4 GiB.</summary>
    public long MaxPageCount { get; init; } = 1L << 20;

    /// <summary>
    /// Address space every memory (leader view, replicas) reserves when that is more than <see cref="MaxPageCount"/>
    /// pages: the rest is a guard region that stays <c>PROT_NONE</c>. Default 0 (just <see cref="MaxPageCount"/>); a
    /// pool of a guard-page Wasm module sets it to 8 GiB + 64 KiB (<c>GuardPages.ReservationBytes</c>).
    /// </summary>
    public long ReservedBytes { get; init; }

    /// <summary>The memfd's name (visible in /proc/self/maps).</summary>
    public string Name { get; init; } = "cowwasm-base";

    /// <summary>The replica tracker actually used.</summary>
    public TrackerKind EffectiveReplicaTracker => ReplicaTracker
        ?? (DirtyTracker.IsSupported(TrackerKind.UffdWriteProtect) ? TrackerKind.UffdWriteProtect
            : Strategy == SyncStrategyKind.SharedBase ? TrackerKind.CowFile : TrackerKind.Compare);

    internal void Validate()
    {
        if (!Enum.IsDefined(Strategy))
        {
            throw new ArgumentOutOfRangeException(nameof(Strategy), Strategy, "Unknown strategy.");
        }

        if (!Enum.IsDefined(LeaderTracker))
        {
            throw new ArgumentOutOfRangeException(nameof(LeaderTracker), LeaderTracker, "Unknown tracker kind.");
        }

        if (ReplicaTracker is { } replicaTracker && !Enum.IsDefined(replicaTracker))
        {
            throw new ArgumentOutOfRangeException(nameof(ReplicaTracker), replicaTracker, "Unknown tracker kind.");
        }

        if (!Enum.IsDefined(ResetMode))
        {
            throw new ArgumentOutOfRangeException(nameof(ResetMode), ResetMode, "Unknown reset mode.");
        }

        Pages.ValidatePageCount(MaxPageCount, nameof(MaxPageCount));
        if (KeepResidentMaxBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(KeepResidentMaxBytes), KeepResidentMaxBytes, "The cap cannot be negative.");
        }

        if (ReservedBytes < 0 || ReservedBytes > PageMemory.MaxReservedBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(ReservedBytes), ReservedBytes,
                $"A reservation lies in [0, {PageMemory.MaxReservedBytes}] bytes.");
        }

        if (InitialPageCount < 0 || InitialPageCount > MaxPageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(InitialPageCount), InitialPageCount,
                $"The initial size must lie in [0, {MaxPageCount}] pages.");
        }

        if (Strategy != SyncStrategyKind.SharedBase && !DirtyTracker.AppliesToPrivateMemory(EffectiveReplicaTracker))
        {
            throw new ArgumentException(
                $"{Strategy} replicas are private memory; the {EffectiveReplicaTracker} tracker only watches views.",
                nameof(ReplicaTracker));
        }

        if (LeaderReset == LeaderResetMode.KeepResident && LeaderTracker == TrackerKind.CowFile)
        {
            throw new ArgumentException(
                "A keep-resident leader needs a tracker that reports writes (StoreBarrier, UffdWriteProtect, Compare or AllPages): " +
                "the CoW-file tracker reports every private copy, so it would report every resident page at every commit.",
                nameof(LeaderReset));
        }

        if (Strategy == SyncStrategyKind.SharedBase && EffectiveReplicaTracker == TrackerKind.Compare)
        {
            // A read that stores the bytes already there makes a private CoW copy the comparison cannot see;
            // it would survive the reset and hide the next commit's bytes from that replica.
            throw new ArgumentException(
                "SharedBase replicas cannot use the Compare tracker: a write of identical bytes still makes a private " +
                "copy that comparison cannot see, and that copy would not follow later commits.", nameof(ReplicaTracker));
        }

        ArgumentException.ThrowIfNullOrEmpty(Name);
    }
}
