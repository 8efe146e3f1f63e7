namespace CowWasm.Pool;

/// <summary>
/// A commit does not belong on the state it would be applied onto. Either it names a parent (<see cref="CommitRecord.Parent"/>)
/// that is not that state — it belongs to another history: a leader that came back after a failover and wrote on its own,
/// a log or stream of another lineage than the snapshot — or it names the right parent but applied there does not make
/// the state its leader had (<see cref="Diverged"/>). Applying its pages would mix two heaps, so it is refused and
/// nothing changes.
/// </summary>
public sealed class CommitHistoryException : InvalidOperationException
{
    /// <summary>Creates the exception for commit <paramref name="sequence"/>, which names another parent.</summary>
    /// <param name="sequence">The refused commit.</param>
    /// <param name="parent">The parent it names.</param>
    /// <param name="head">The state it was to be applied onto.</param>
    /// <param name="source">Where the commit came from (for the message), e.g. "the commit log /var/…".</param>
    public CommitHistoryException(long sequence, CommitId parent, CommitId head, string? source = null)
        : this(
            $"Commit {sequence}{(source is null ? "" : $" from {source}")} follows commit {sequence - 1} of identity {parent}, but " +
            $"this state's commit {sequence - 1} is {head}: the two histories forked at or before commit {sequence - 1}, and the " +
            "commit is refused.", sequence, parent, head)
    {
    }

    private CommitHistoryException(string message, long sequence, CommitId parent, CommitId head)
        : base(message)
    {
        Sequence = sequence;
        Parent = parent;
        Head = head;
    }

    /// <summary>
    /// Commit <paramref name="sequence"/> names this state as its parent, but applied here it makes identity
    /// <paramref name="made"/>, not the <paramref name="expected"/> its leader made: this state's pages differ from the
    /// leader's although both name the same commit (damaged memory, or a base written outside the pool).
    /// </summary>
    public static CommitHistoryException Diverged(long sequence, CommitId expected, CommitId made) => new(
        $"Commit {sequence} applied onto this state makes identity {made}, not the {expected} its leader made: this state's pages " +
        $"differ from the leader's although both name the same commit {sequence - 1}. The commit is refused and rolled back.",
        sequence, expected, made);

    /// <summary>The refused commit's sequence.</summary>
    public long Sequence { get; }

    /// <summary>The parent it names (for <see cref="Diverged"/>: the identity its leader made).</summary>
    public CommitId Parent { get; }

    /// <summary>The identity of the state it was to be applied onto (for <see cref="Diverged"/>: the one it made here).</summary>
    public CommitId Head { get; }
}
