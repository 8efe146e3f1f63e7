namespace CowWasm.Pool;

/// <summary>
/// A commit names a parent (<see cref="CommitRecord.Parent"/>) that is not the state it would be applied onto: it belongs
/// to another history — a leader that came back after a failover and wrote on its own, a log or stream of another lineage
/// than the snapshot. Applying its pages would mix two heaps, so it is refused and nothing changes.
/// </summary>
public sealed class CommitHistoryException : InvalidOperationException
{
    /// <summary>Creates the exception for commit <paramref name="sequence"/>.</summary>
    /// <param name="sequence">The refused commit.</param>
    /// <param name="parent">The parent it names.</param>
    /// <param name="head">The state it was to be applied onto.</param>
    /// <param name="source">Where the commit came from (for the message), e.g. "the commit log /var/…".</param>
    public CommitHistoryException(long sequence, CommitId parent, CommitId head, string? source = null)
        : base($"Commit {sequence}{(source is null ? "" : $" from {source}")} follows commit {sequence - 1} of identity {parent}, but " +
               $"this state's commit {sequence - 1} is {head}: the two histories forked at or before commit {sequence - 1}, and the " +
               "commit is refused.")
    {
        Sequence = sequence;
        Parent = parent;
        Head = head;
    }

    /// <summary>The refused commit's sequence.</summary>
    public long Sequence { get; }

    /// <summary>The parent it names.</summary>
    public CommitId Parent { get; }

    /// <summary>The identity of the state it was to be applied onto.</summary>
    public CommitId Head { get; }
}
