namespace CowWasm.Memory.Sync;

/// <summary>How a <see cref="SyncStrategyKind.SharedBase"/> replica returns to the committed state after a read.</summary>
public enum ReplicaResetMode
{
    /// <summary><c>MADV_DONTNEED</c> of the replica's private copies: memory is returned, the next write faults again.</summary>
    Madvise,

    /// <summary>
    /// Copy the base's bytes back into the private copies and keep them (Wasmtime's <c>keep_resident</c>):
    /// no page faults on the next read's writes, at the price of resident memory per replica.
    /// </summary>
    KeepResident,
}
