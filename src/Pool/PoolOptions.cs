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

    /// <summary>The pool's name: the <c>pool</c> tag on its metrics. Default: unique per pool.</summary>
    public string Name { get; init; } = $"pool-{Interlocked.Increment(ref s_pools)}";

    private static int s_pools;

    /// <summary>Per-instance options (WASI). The memory factory is the pool's own and must be left default.</summary>
    public InstanceOptions Instance { get; init; } = new();

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
