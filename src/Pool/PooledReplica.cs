using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>One replica of the pool: a clone of the leader over a <see cref="ReplicaMemory"/>.</summary>
internal sealed class PooledReplica
{
    public PooledReplica(Memory.Replica replica, IGuestInstance leader)
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

    /// <summary>Disposes the instance, and with it its memory and the replica.</summary>
    public void Dispose() => Instance.Dispose();
}
