using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>
/// One commit of a <see cref="GuestPool"/> as data, enough to reproduce it on another pool of the same module that
/// holds the previous commit (<see cref="GuestPool.ApplyCommitAsync"/>): the pages the base received (whole, or as
/// patches against the state before, <see cref="Encoding"/>), the committed memory length and the globals. Immutable by
/// convention: the arrays are not copied, so do not change them.
/// </summary>
/// <param name="Sequence">The pool's <see cref="GuestPool.CommitSequence"/> after this commit.</param>
/// <param name="Parent">The identity of the commit this one follows (<see cref="GuestPool.Head"/> before it):
/// <see cref="GuestPool.ApplyCommitAsync"/> applies it only onto that state. <see cref="CommitId.Unknown"/> only for
/// records a build before the hash chain logged.</param>
/// <param name="MemoryByteLength">The committed linear memory's length in bytes.</param>
/// <param name="Globals">Every global's value after the commit (raw 64-bit slots).</param>
/// <param name="Runs">The pages written, ascending and disjoint.</param>
/// <param name="Pages">The runs' bytes in order: 4096 bytes per page (<see cref="PageEncoding.Full"/>), or one patch per
/// page (<see cref="PageEncoding.Patches"/>).</param>
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
        Encoding = original.Encoding;
    }

    /// <summary>How <see cref="Pages"/> holds the runs' bytes (default <see cref="PageEncoding.Full"/>).</summary>
    public PageEncoding Encoding { get; init; }

    /// <summary>
    /// This commit's identity (<see cref="CommitId"/>: the parent's, and the content with the pages as they are after it).
    /// Of a <see cref="PageEncoding.Full"/> record it is computed from the record; a patched one carries the identity its
    /// leader computed (<see cref="HasId"/>), which the pool applying it checks against the pages it ends up with.
    /// </summary>
    /// <exception cref="InvalidOperationException">A patched record without its identity.</exception>
    public CommitId Id => _id ??= Encoding == PageEncoding.Full
        ? CommitId.Of(Parent, this)
        : throw new InvalidOperationException($"Patched commit {Sequence} carries no identity: it is known once applied onto its parent.");

    /// <summary>Whether <see cref="Id"/> is known (always for a full record).</summary>
    public bool HasId => _id is not null || Encoding == PageEncoding.Full;

    /// <summary>The same record, stating its identity (computed by the pool that made it, or carried by its encoding).</summary>
    public CommitRecord WithId(CommitId id) => (this with { }).StatingId(id);

    /// <summary>States the identity of a record this assembly has just made and nobody else holds yet (no copy: one record
    /// per commit, on the commit path).</summary>
    internal CommitRecord StatingId(CommitId id)
    {
        _id = id;
        return this;
    }
}
