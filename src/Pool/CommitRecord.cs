using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>
/// One commit of a <see cref="GuestPool"/> as data, enough to reproduce it on another pool of the same module that
/// holds the previous commit (<see cref="GuestPool.ApplyCommitAsync"/>): the pages the base received, the committed
/// memory length and the globals. Immutable by convention: the arrays are not copied, so do not change them.
/// </summary>
/// <param name="Sequence">The pool's <see cref="GuestPool.CommitSequence"/> after this commit.</param>
/// <param name="MemoryByteLength">The committed linear memory's length in bytes.</param>
/// <param name="Globals">Every global's value after the commit (raw 64-bit slots).</param>
/// <param name="Runs">The pages written, ascending and disjoint.</param>
/// <param name="Pages">The runs' bytes, concatenated in order (4096 bytes per page).</param>
/// <param name="TablesChanged">The committed tables differ from what instantiation makes; a foreign pool cannot
/// apply the commit (table elements are native addresses).</param>
public sealed record CommitRecord(long Sequence, long MemoryByteLength, IReadOnlyList<ulong> Globals, IReadOnlyList<PageRun> Runs,
    ReadOnlyMemory<byte> Pages, bool TablesChanged);

/// <summary>
/// Sees a <see cref="GuestPool"/>'s commits (<see cref="GuestPool.SetCommitSinkAsync"/>), on the committing thread with
/// the pool's write gate held, so calls never overlap and come in sequence order. Keep both calls short: every
/// transaction waits for them.
/// </summary>
public interface ICommitSink
{
    /// <summary>Before commit <paramref name="sequence"/> changes anything; throwing refuses it (the write rolls back
    /// and the caller gets the exception).</summary>
    void BeforeCommit(long sequence);

    /// <summary>After the commit; the record is the sink's to keep. Must not throw: the commit has happened.</summary>
    void Committed(CommitRecord record);
}
