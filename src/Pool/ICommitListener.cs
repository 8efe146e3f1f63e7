using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>
/// Sees a <see cref="GuestPool"/>'s commits, in two phases around the moment the base changes. The pool keeps one ordered
/// list of listeners (<see cref="GuestPool.AddListenerAsync"/>): the commit log, the same-host follower hub, the JetStream
/// publisher, or your own. Every call comes on the committing thread with the pool's write gate held, so calls never
/// overlap and come in sequence order; keep them short, every transaction waits for them.
/// </summary>
/// <remarks>
/// <para><b>Phase 1</b>, <see cref="BeforeBaseWrite"/>: inside the commit, before a byte of the base changes, in list order.
/// Throwing refuses the commit: the listeners before it get <see cref="Abandoned"/>, the write rolls back and its caller
/// gets the exception.</para>
/// <para><b>Phase 2</b>, <see cref="AfterBaseWrite"/>: once the base holds the commit, in list order. It returns the wait
/// for the commit to be durable at this listener's level (completed when there is nothing to wait for): the write's
/// caller awaits every listener's wait after the pool's gate is released, so the next write runs meanwhile. A wait that
/// fails fails that write; a listener that cannot keep later commits either refuses them in phase 1.</para>
/// </remarks>
public interface ICommitListener
{
    /// <summary>
    /// Whether <see cref="AfterBaseWrite"/> needs the commit's page bytes (the default). A listener that shares the base
    /// itself (the same-host hub) says false; when no listener needs them, the pool copies no pages and the record it
    /// passes has no runs and no pages (its <see cref="CommitRecord.Id"/> is still the commit's).
    /// </summary>
    bool NeedsPages => true;

    /// <summary>Phase 1: commit <paramref name="sequence"/> is about to write <paramref name="runs"/> into the base and make
    /// the committed length <paramref name="committedPageCount"/> pages. Throw to refuse it.</summary>
    void BeforeBaseWrite(long sequence, IReadOnlyList<PageRun> runs, long committedPageCount)
    {
    }

    /// <summary>Phase 1 of commit <paramref name="sequence"/> ran here, but a later listener refused the commit: the base did
    /// not change.</summary>
    void Abandoned(long sequence)
    {
    }

    /// <summary>
    /// Phase 2: the base holds <paramref name="record"/> (the listener's to keep). Returns the wait for the commit to be
    /// durable at this listener's level. Throwing here faults the pool: the commit has happened, and what the listener
    /// keeps may lack it.
    /// </summary>
    ValueTask AfterBaseWrite(CommitRecord record);
}
