using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>
/// One commit of a <see cref="GuestPool"/> as data, enough to reproduce it on another pool of the same module that
/// holds the previous commit (<see cref="GuestPool.ApplyCommitAsync"/>): the pages the base received, the committed
/// memory length and the globals. Immutable by convention: the arrays are not copied, so do not change them.
/// </summary>
/// <param name="Sequence">The pool's <see cref="GuestPool.CommitSequence"/> after this commit.</param>
/// <param name="Parent">The identity of the commit this one follows (<see cref="GuestPool.Head"/> before it):
/// <see cref="GuestPool.ApplyCommitAsync"/> applies it only onto that state. <see cref="CommitId.Unknown"/> only for
/// records a build before the hash chain logged.</param>
/// <param name="MemoryByteLength">The committed linear memory's length in bytes.</param>
/// <param name="Globals">Every global's value after the commit (raw 64-bit slots).</param>
/// <param name="Runs">The pages written, ascending and disjoint.</param>
/// <param name="Pages">The runs' bytes, concatenated in order (4096 bytes per page).</param>
/// <param name="TablesChanged">The committed tables differ from what instantiation makes; a foreign pool cannot
/// apply the commit (table elements are native addresses).</param>
public sealed record CommitRecord(long Sequence, CommitId Parent, long MemoryByteLength, IReadOnlyList<ulong> Globals,
    IReadOnlyList<PageRun> Runs, ReadOnlyMemory<byte> Pages, bool TablesChanged)
{
    private CommitId? _id;

    /// <summary>A copy (<c>with</c>): its identity is computed again, since a changed field changes it.</summary>
    private CommitRecord(CommitRecord original)
    {
        Sequence = original.Sequence;
        Parent = original.Parent;
        MemoryByteLength = original.MemoryByteLength;
        Globals = original.Globals;
        Runs = original.Runs;
        Pages = original.Pages;
        TablesChanged = original.TablesChanged;
    }

    /// <summary>This commit's identity (computed once, from <see cref="Parent"/> and the content; see <see cref="CommitId"/>).
    /// For a record of unknown parent it is computed from <see cref="CommitId.Unknown"/>: the pool that applies such a record
    /// computes the identity from its own head instead.</summary>
    public CommitId Id => _id ??= CommitId.Of(Parent, this);

    /// <summary>A record whose identity is already known (the pool computed it from the pages it committed).</summary>
    internal CommitRecord WithId(CommitId id)
    {
        _id = id;
        return this;
    }
}
