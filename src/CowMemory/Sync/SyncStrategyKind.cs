namespace CowWasm.Memory.Sync;

/// <summary>How a committed leader state reaches the replicas.</summary>
public enum SyncStrategyKind
{
    /// <summary>The seed's way: every commit copies the leader's whole memory into every replica's private memory. O(size × replicas).</summary>
    FullCopy,

    /// <summary>The leader's dirty runs are copied into every replica's private memory. O(dirty × replicas).</summary>
    DirtyCopy,

    /// <summary>Replicas are clean MAP_PRIVATE views of the base; a commit writes the dirty runs into the base once. O(dirty).</summary>
    SharedBase,
}
