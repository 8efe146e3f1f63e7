namespace CowWasm.Replication;

/// <summary>
/// Replication cannot go on without diverging: a gap or reordering in the commit stream, a delta that fails its
/// checksum or does not decode, a delta or snapshot of another module, or a log that stopped taking commits. The
/// follower (or publisher) stops with this as its cause.
/// </summary>
public sealed class ReplicationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ReplicationException(string message, Exception? innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for commit <paramref name="sequence"/>.</summary>
    public ReplicationException(long sequence, string message, Exception? innerException = null) : base(message, innerException) =>
        Sequence = sequence;

    /// <summary>Creates the exception.</summary>
    public ReplicationException() : this("Replication stopped.")
    {
    }

    /// <summary>Creates the exception.</summary>
    public ReplicationException(string message) : this(message, null)
    {
    }

    /// <summary>The commit at which replication stopped, when one is known.</summary>
    public long? Sequence { get; }
}
