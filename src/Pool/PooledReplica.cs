using CowWasm.Memory.Sync;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>One replica of the pool: a clone of the leader over a <see cref="ReplicaMemory"/>.</summary>
internal sealed class PooledReplica
{
    public PooledReplica(Replica replica, IGuestInstance leader)
    {
        Memory = new ReplicaMemory(replica);
        try
        {
            Instance = leader.Clone(Memory);
        }
        catch
        {
            Memory.Dispose();
            throw;
        }
    }

    public ReplicaMemory Memory { get; }

    public IGuestInstance Instance { get; }

    /// <summary>
    /// <see cref="ReadIsolation.PerCommit"/>: the replica was returned after a read without a reset, so it must be
    /// reset before the next commit. Read and written by the renting read, or under the pool's write gate.
    /// </summary>
    public bool HoldsReadEffects { get; set; }

    /// <summary>Disposes the instance, and with it its memory and the replica.</summary>
    public void Dispose() => Instance.Dispose();
}
