using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// A replica of a <see cref="LeaderMemory"/>'s strategy as a clone's memory. A replica follows the leader's
/// length at commits. memory.grow inside a read grows it as scratch, which the reset after the read drops.
/// </summary>
public sealed class ReplicaMemory(Replica replica) : ILinearMemory
{
    /// <summary>The replica.</summary>
    public Replica Replica { get; } = replica ?? throw new ArgumentNullException(nameof(replica));

    /// <inheritdoc/>
    public PageMemory Memory => Replica.Memory;

    /// <summary>
    /// Grows the replica for the rest of the read (scratch; the reset after the read cuts it back to the committed
    /// length). False beyond the strategy's maximum.
    /// </summary>
    public bool TryGrow(long pageCount)
    {
        if (pageCount > Replica.Owner.Options.MaxPageCount)
        {
            return false;
        }

        Replica.Owner.GrowReplica(Replica, pageCount);
        return true;
    }

    /// <summary>Disposes the replica.</summary>
    public void Dispose() => Replica.Dispose();
}
