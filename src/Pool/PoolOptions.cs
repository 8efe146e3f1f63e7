using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>Configuration of a <see cref="GuestPool"/>.</summary>
public sealed record PoolOptions
{
    /// <summary>Replicas serving reads. Default: <see cref="Environment.ProcessorCount"/>; at least 1.</summary>
    public int ReplicaCount { get; init; } = Environment.ProcessorCount;

    /// <summary>How commits reach replicas (strategy, trackers, reset mode). Sizes come from the module.</summary>
    public SyncOptions Sync { get; init; } = new();

    /// <summary>What a read may observe of earlier reads on its replica. Default: <see cref="ReadIsolation.PerRead"/>.</summary>
    public ReadIsolation Isolation { get; init; } = ReadIsolation.PerRead;

    /// <summary>
    /// How long a transaction's work (the delegate given to a read or a write, not the wait for a replica or the write
    /// gate) may run before the guest is interrupted: the read then fails with <see cref="TimeoutException"/> and its
    /// replica is reset; the write fails the same way and is rolled back. Default 30 s;
    /// <see cref="Timeout.InfiniteTimeSpan"/> for none. A call's own timeout argument overrides it.
    /// </summary>
    public TimeSpan TransactionTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The most linear memory the leader and each replica may have, below the module's own maximum (null: the module's;
    /// Trealla declares none, so 4 GiB). A <c>memory.grow</c> past it returns -1 to the guest, which reports it as a
    /// resource error (a read's replica is then reset; a write rolls back). Rounded down to whole Wasm pages; it must hold
    /// the module's initial memory and any snapshot or log the pool starts from.
    /// </summary>
    public long? MaxMemoryBytes { get; init; }

    /// <summary>
    /// <see cref="ReadIsolation.PerCommit"/> only: a read that returns keeps its effects on its replica only while the
    /// replica's memory has grown by at most this many bytes over the committed length; past it the replica is reset
    /// after the read, as under <see cref="ReadIsolation.PerRead"/>, so one read cannot leave a replica holding
    /// gigabytes until the next commit. Default 64 MiB.
    /// </summary>
    public long MaxRetainedReadBytes { get; init; } = 64L << 20;

    /// <summary>The pool's name: the <c>pool</c> tag on its metrics. Default: unique per pool.</summary>
    public string Name { get; init; } = $"pool-{Interlocked.Increment(ref s_pools)}";

    private static int s_pools;

    /// <summary>Per-instance options (WASI). The memory factory is the pool's own and must be left default.</summary>
    public InstanceOptions Instance { get; init; } = new();

    /// <summary>
    /// The most 4 KiB pages an instance of a module that declares <paramref name="modulePages"/> may have under
    /// <see cref="MaxMemoryBytes"/> (whole Wasm pages); what a pool's strategy is created with.
    /// </summary>
    public long CapPages(long modulePages) => MaxMemoryBytes is { } cap
        ? Math.Min(modulePages, cap / ILinearMemory.WasmPageSize * ILinearMemory.PagesPerWasmPage)
        : modulePages;

    internal void Validate(IGuestModule module)
    {
        if (ReplicaCount < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ReplicaCount), ReplicaCount, "A pool needs at least one replica.");
        }

        if (!Enum.IsDefined(Isolation))
        {
            throw new ArgumentOutOfRangeException(nameof(Isolation), Isolation, "Unknown isolation level.");
        }

        ValidateTimeout(TransactionTimeout, nameof(TransactionTimeout));
        if (MaxMemoryBytes is < ILinearMemory.WasmPageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMemoryBytes), MaxMemoryBytes, "At least one Wasm page (64 KiB), or null.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(MaxRetainedReadBytes);
        ArgumentNullException.ThrowIfNull(Sync);
        if (ReplicaCount > 1 && Sync.EffectiveReplicaTracker == TrackerKind.SoftDirty)
        {
            throw new ArgumentException(SyncStrategy.SoftDirtyReplicasRefusal, nameof(Sync));
        }

        ArgumentNullException.ThrowIfNull(Instance);
        if (!module.MarksStores && (Sync.LeaderTracker == TrackerKind.StoreBarrier || Sync.EffectiveReplicaTracker == TrackerKind.StoreBarrier))
        {
            throw new ArgumentException(
                "The StoreBarrier tracker needs a module whose stores mark pages, but this module was built without the store " +
                "barrier (ArtifactOptions.StoreBarrier = false); it would miss every guest store. Choose another tracker.", nameof(Sync));
        }
    }

    internal static void ValidateTimeout(TimeSpan timeout, string name)
    {
        if (timeout != Timeout.InfiniteTimeSpan && (timeout <= TimeSpan.Zero || timeout.TotalMilliseconds > int.MaxValue))
        {
            throw new ArgumentOutOfRangeException(name, timeout, "A timeout is positive (at most ~24.8 days) or Timeout.InfiniteTimeSpan.");
        }
    }
}
