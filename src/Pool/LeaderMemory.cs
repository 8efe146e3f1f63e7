using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// The leader side of a <see cref="SyncStrategy"/>: the instance's memory is the strategy's leader and grows
/// through <see cref="SyncStrategy.GrowLeader"/>. Replicas of the strategy can then host clones of the instance.
/// </summary>
/// <remarks>
/// A <see cref="SyncStrategy.Rollback"/> that undoes growth shrinks the leader: call
/// <see cref="IGuestInstance.RefreshMemorySize"/> on the instance afterwards (and restore its globals), or the
/// guest would address pages that are no longer mapped. Likewise call it on clones after a commit grew them.
/// </remarks>
public sealed class LeaderMemory : ILinearMemory
{
    /// <summary>Creates the strategy with the instance's initial size and reservation (for the leader and every replica).</summary>
    public LeaderMemory(SyncOptions options, long initialPageCount, long maxPageCount, long reservedBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(options);
        Strategy = SyncStrategy.Create(options with
        {
            InitialPageCount = initialPageCount, MaxPageCount = maxPageCount, ReservedBytes = Math.Max(options.ReservedBytes, reservedBytes),
        });
    }

    /// <summary>Leads an existing strategy (e.g. one created over a snapshot's image), which it then owns.</summary>
    public LeaderMemory(SyncStrategy strategy) => Strategy = strategy ?? throw new ArgumentNullException(nameof(strategy));

    /// <summary>A factory for the given strategy options.</summary>
    public static LinearMemoryFactory For(SyncOptions options) => (initial, max, reserved) => new LeaderMemory(options, initial, max, reserved);

    /// <summary>The strategy this memory leads.</summary>
    public SyncStrategy Strategy { get; }

    /// <inheritdoc/>
    public PageMemory Memory => Strategy.Leader;

    /// <inheritdoc/>
    public bool TryGrow(long pageCount)
    {
        if (pageCount > Strategy.Options.MaxPageCount)
        {
            return false;
        }

        Strategy.GrowLeader(pageCount);
        return true;
    }

    /// <summary>Disposes the strategy and every replica it made.</summary>
    public void Dispose() => Strategy.Dispose();
}
