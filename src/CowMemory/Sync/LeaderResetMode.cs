namespace CowWasm.Memory.Sync;

/// <summary>What the leader does with the pages a transaction wrote, once it commits or rolls back.</summary>
public enum LeaderResetMode
{
    /// <summary>
    /// <c>MADV_DONTNEED</c> them: after a commit they show the base (which now holds the same bytes), after a rollback
    /// the committed bytes. Memory is returned; the next transaction's writes fault the pages in again.
    /// </summary>
    Discard,

    /// <summary>
    /// Keep them resident: a commit only writes them into the base; a rollback copies the base's bytes back into
    /// them. The next transaction writes without faults. Needs a leader tracker that reports writes rather than
    /// private copies (not <see cref="Trackers.TrackerKind.CowFile"/>, which would report every resident page forever).
    /// </summary>
    KeepResident,
}
