using CowWasm.Memory;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// Applying commits made by another pool of the same module (a leader this pool follows, or the log it replays): each as
/// one write transaction, checked against this pool's history (<see cref="CommitHistoryException"/>).
/// </summary>
public sealed partial class GuestPool
{
    /// <summary>
    /// Applies a commit made by another pool of the same module (a leader this pool follows, e.g. through a log): the
    /// pages, length and globals of <paramref name="record"/> become this pool's committed state, as one write
    /// transaction. Exactly the next sequence is accepted, so nothing is applied twice or skipped.
    /// </summary>
    /// <exception cref="ArgumentException">The record does not fit this pool's module (globals, memory limits, pages).</exception>
    /// <exception cref="InvalidOperationException">The record is not the next commit (<see cref="CommitSequence"/> + 1).</exception>
    /// <exception cref="CommitHistoryException">The record follows another commit than this pool's <see cref="Head"/>: it
    /// belongs to another history (a fork), and applying its pages would mix two heaps.</exception>
    /// <exception cref="NotSupportedException">The leader's committed tables differ from instantiation (table elements
    /// are native addresses of its process).</exception>
    public async ValueTask ApplyCommitAsync(CommitRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        ValidateForeign(record);
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);
        ValueTask durable;
        try
        {
            ThrowIfFaulted();
            if (record.Sequence != _sequence + 1)
            {
                throw new InvalidOperationException(
                    $"Commit {record.Sequence} cannot follow commit {_sequence}: only {_sequence + 1} is next.");
            }

            if (!record.Parent.IsUnknown && record.Parent != _committed.Id)
            {
                throw new CommitHistoryException(record.Sequence, record.Parent, _committed.Id);
            }

            // A record from a build before the hash chain (the commit log only) continues this pool's history.
            CommitRecord foreign = record.Parent.IsUnknown ? record with { Parent = _committed.Id } : record;

            try
            {
                long pageCount = record.MemoryByteLength / Pages.Size;
                if (pageCount < _strategy.CommittedPageCount)
                {
                    throw new ArgumentException(
                        $"Commit {record.Sequence} has {pageCount} pages; memory never shrinks below the {_strategy.CommittedPageCount} committed.",
                        nameof(record));
                }

                if (pageCount > _strategy.Leader.PageCount)
                {
                    _strategy.GrowLeader(pageCount);
                    _leader.RefreshMemorySize();
                }

                if (foreign.Encoding == PageEncoding.Patches)
                {
                    PagePatches.Apply(foreign.Pages.Span, foreign.Runs, page => _strategy.Leader.GetPage(page));
                }
                else
                {
                    int offset = 0;
                    foreach (PageRun run in foreign.Runs)
                    {
                        for (long page = run.StartPage; page < run.EndPage; page++, offset += Pages.Size)
                        {
                            foreign.Pages.Span.Slice(offset, Pages.Size).CopyTo(_strategy.Leader.GetPage(page));
                        }
                    }
                }

                _leader.RestoreGlobals(foreign.Globals.ToArray());

                // The identity of what this pool now holds: the leader's, unless this state was not the commit's parent
                // after all (a patch applies only onto the bytes it was made against).
                CommitId made = CommitId.Of(foreign.Parent, foreign.Sequence, foreign.MemoryByteLength, foreign.TablesChanged,
                    foreign.Globals, foreign.Runs, DigestLeaderPages(foreign.Runs));
                if (foreign.HasId && made != foreign.Id)
                {
                    throw CommitHistoryException.Diverged(foreign.Sequence, foreign.Id, made);
                }

                foreign = foreign.HasId ? foreign : foreign.WithId(made); // equal when it had one: no copy
            }
            catch
            {
                RollbackUnsynchronized();
                throw;
            }

            CommitOrRollbackUnsynchronized(foreign);
            durable = TakeDurableUnsynchronized();
        }
        finally
        {
            _gate.ExitWrite();
        }

        await WhenDurableAsync(durable).ConfigureAwait(false);
    }

    /// <summary>What can be checked of a foreign commit without the gate.</summary>
    private void ValidateForeign(CommitRecord record)
    {
        if (record.TablesChanged)
        {
            throw new NotSupportedException(
                $"Commit {record.Sequence} follows a write that changed the leader's tables; table elements are native addresses " +
                "of the leader's process, so they cannot be applied here.");
        }

        int globals = _module.Info.Globals.Count;
        if (record.Globals.Count != globals)
        {
            throw new ArgumentException($"Commit {record.Sequence} has {record.Globals.Count} globals; the module has {globals}.", nameof(record));
        }

        long maxBytes = Pages.ToBytes(_strategy.Options.MaxPageCount);
        if (record.MemoryByteLength % ILinearMemory.WasmPageSize != 0 || record.MemoryByteLength > maxBytes || record.MemoryByteLength <= 0)
        {
            throw new ArgumentException(
                $"Commit {record.Sequence} has a memory of {record.MemoryByteLength} bytes; this pool's memory takes Wasm-page multiples up to {maxBytes}.",
                nameof(record));
        }

        long pageCount = record.MemoryByteLength / Pages.Size;
        long pages = 0;
        long end = 0;
        foreach (PageRun run in record.Runs)
        {
            if (run.StartPage < end || run.PageCount <= 0 || run.EndPage > pageCount)
            {
                throw new ArgumentException(
                    $"Commit {record.Sequence} has run {run}, out of order or outside its {pageCount} pages.", nameof(record));
            }

            end = run.EndPage;
            pages += run.PageCount;
        }

        if (record.Encoding == PageEncoding.Patches)
        {
            if (PagePatches.Check(record.Pages.Span, pages) is { } problem)
            {
                throw new ArgumentException($"Commit {record.Sequence} has corrupt page patches: {problem}.", nameof(record));
            }
        }
        else if (Pages.ToBytes(pages) != record.Pages.Length)
        {
            throw new ArgumentException(
                $"Commit {record.Sequence} has {record.Pages.Length} bytes of pages for runs of {pages} pages.", nameof(record));
        }
    }
}
