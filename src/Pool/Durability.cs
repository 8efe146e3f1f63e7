namespace CowWasm.Pool;

/// <summary>When a write's reply may go out: what must hold its commit first.</summary>
public enum Durability
{
    /// <summary>Nothing: the commit is in memory (and in a snapshot once one is saved). A crash loses it.</summary>
    None,

    /// <summary>
    /// The commit log on local disk (<see cref="Log.CommitLog"/>, fsynced; concurrent writers share fsyncs): a
    /// <c>kill -9</c> or power loss keeps every acknowledged write.
    /// </summary>
    Log,

    /// <summary>
    /// The commit log, and NATS JetStream: the reply waits until the commit is in the local log and the stream
    /// acknowledged it (stored on a majority with three stream replicas), so a leader lost with its disk still leaves
    /// every acknowledged write to its followers, and a restarted leader catches up from the stream.
    /// </summary>
    Replicated,
}
