using CowWasm.Memory;
using CowWasm.Memory.Sync;

namespace CowWasm.Pool;

/// <summary>
/// The pool's one ordered list of <see cref="ICommitListener"/>s: phase 1 runs from inside the strategy's commit (the pool
/// is the strategy's only <see cref="ICommitObserver"/>), phase 2 after it, and the writer awaits their durability waits
/// outside the gate.
/// </summary>
/// <remarks>
/// Fields here: <c>_listeners</c> is replaced (never mutated) under the write gate and read by commits, which hold the gate;
/// <c>_durable</c> carries one commit's waits from the commit to its own write, and <c>_patches</c> the commit's page
/// patches from phase 1 to the record; those and the scratch buffers are used under the gate only.
/// </remarks>
public sealed partial class GuestPool
{
    private ICommitListener[] _listeners = [];
    private ValueTask _durable;
    private byte[]? _patches; // the commit's page patches, made in phase 1 while the base still holds the pages before it
    private byte[] _patchScratch = [];
    private byte[] _baseScratch = [];
    private const int BaseChunkPages = 256;
    private const int MaxKeptScratchBytes = 16 << 20;

    /// <summary>The listeners, in the order their phases run (a copy).</summary>
    public IReadOnlyList<ICommitListener> Listeners => [.. Volatile.Read(ref _listeners)];

    /// <summary>
    /// Appends <paramref name="listener"/> to the list: it sees every later commit. Waits for transactions in flight, and
    /// returns the sequence and identity of the committed state the listener starts after.
    /// </summary>
    /// <exception cref="InvalidOperationException">The listener is already in the list, or the pool is faulted.</exception>
    public async ValueTask<(long Sequence, CommitId Head)> AddListenerAsync(ICommitListener listener, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfFaulted();
            AddListenerUnsynchronized(listener);
            return (_sequence, _committed.Id);
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

    /// <summary>Removes <paramref name="listener"/> (if present): it sees no later commit. Waits for transactions in flight.</summary>
    public async ValueTask RemoveListenerAsync(ICommitListener listener, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(listener);
        await _gate.EnterWriteAsync(cancellationToken).ConfigureAwait(false); // also after disposal began: nothing to wait for then
        try
        {
            RemoveListenerUnsynchronized(listener);
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

    private void AddListenerUnsynchronized(ICommitListener listener)
    {
        if (Array.IndexOf(_listeners, listener) >= 0)
        {
            throw new InvalidOperationException("The listener is already in the pool's list.");
        }

        Volatile.Write(ref _listeners, [.. _listeners, listener]);
    }

    private void RemoveListenerUnsynchronized(ICommitListener listener) =>
        Volatile.Write(ref _listeners, [.. _listeners.Where(l => !ReferenceEquals(l, listener))]);

    /// <summary>Whether phase 2 gets the pages: some listener needs them (a foreign commit brings its own).</summary>
    private bool ListenersNeedPages()
    {
        foreach (ICommitListener listener in _listeners)
        {
            if (listener.NeedsPages)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Phase 2 for every listener; their waits become the write's (<see cref="TakeDurableUnsynchronized"/>).</summary>
    private void AfterBaseWriteUnsynchronized(CommitRecord record)
    {
        ValueTask first = default;
        bool waiting = false;
        List<Task>? more = null;
        foreach (ICommitListener listener in _listeners)
        {
            ValueTask wait;
            try
            {
                wait = listener.AfterBaseWrite(record);
            }
            catch (Exception e)
            {
                Fault(new InvalidOperationException(
                    $"Commit {record.Sequence} happened, but the listener {listener.GetType().Name} failed to take it; the pool stops " +
                    "rather than build on a commit that listener may lack.", e));
                throw;
            }

            if (wait.IsCompletedSuccessfully)
            {
                continue;
            }

            if (!waiting)
            {
                first = wait;
                waiting = true;
            }
            else
            {
                (more ??= []).Add(wait.AsTask());
            }
        }

        _durable = more is null ? first : new ValueTask(Task.WhenAll([first.AsTask(), .. more]));
    }

    /// <summary>Under the write gate: the waits the commit just made (completed when there are none).</summary>
    private ValueTask TakeDurableUnsynchronized()
    {
        ValueTask durable = _durable;
        _durable = default;
        return durable;
    }

    /// <summary>After the gate: waits for the commit to be durable at every listener's level.</summary>
    private static async ValueTask WhenDurableAsync(ValueTask durable)
    {
        if (!durable.IsCompletedSuccessfully)
        {
            await durable.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Phase 1, before the base changes: the patches that turn the base's pages of <paramref name="runs"/> (the state
    /// before the commit) into the leader's (the state after it). Pages beyond the base's end were zeros.
    /// </summary>
    private byte[] DiffAgainstBase(IReadOnlyList<PageRun> runs)
    {
        long pages = Pages.CountPages(runs);
        long bound = pages * PagePatches.MaxPageBytes;
        if (_patchScratch.Length < bound)
        {
            _patchScratch = GC.AllocateUninitializedArray<byte>(checked((int)Math.Max(bound, 2L * _patchScratch.Length)));
        }

        if (_baseScratch.Length == 0)
        {
            _baseScratch = GC.AllocateUninitializedArray<byte>(BaseChunkPages * Pages.Size);
        }

        int at = 0;
        long basePages = _strategy.Base.PageCount;
        foreach (PageRun run in runs)
        {
            // The previous bytes, up to 256 pages a pread (pages past the base's end were zeros).
            for (long first = run.StartPage; first < run.EndPage; first += BaseChunkPages)
            {
                long count = Math.Min(BaseChunkPages, run.EndPage - first);
                long inBase = Math.Clamp(basePages - first, 0, count);
                Span<byte> old = _baseScratch.AsSpan(0, checked((int)Pages.ToBytes(count)));
                if (inBase > 0)
                {
                    _strategy.Base.Read(new PageRun(first, inBase), old[..checked((int)Pages.ToBytes(inBase))]);
                }

                old[checked((int)Pages.ToBytes(inBase))..].Clear();
                for (long page = 0; page < count; page++)
                {
                    at += PagePatches.Diff(_strategy.Leader.ReadSpan(Pages.ToBytes(first + page), Pages.Size),
                        old.Slice(checked((int)Pages.ToBytes(page)), Pages.Size), _patchScratch.AsSpan(at));
                }
            }
        }

        byte[] patches = _patchScratch.AsSpan(0, at).ToArray();
        if (_patchScratch.Length > MaxKeptScratchBytes)
        {
            _patchScratch = []; // a huge commit's buffer is not kept for the pool's lifetime
        }

        return patches;
    }

    /// <summary>The strategy's observer: phase 1 of every listener, from inside the commit.</summary>
    private sealed class BaseWriteDispatcher(GuestPool pool) : ICommitObserver
    {
        public void BeforeBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount)
        {
            ICommitListener[] listeners = pool._listeners;
            long sequence = pool._sequence + 1;
            pool._patches = pool._applying is null && pool.ListenersNeedPages() ? pool.DiffAgainstBase(runs) : null;
            for (int i = 0; i < listeners.Length; i++)
            {
                try
                {
                    listeners[i].BeforeBaseWrite(sequence, runs, committedPageCount);
                }
                catch
                {
                    for (int j = 0; j < i; j++)
                    {
                        listeners[j].Abandoned(sequence);
                    }

                    throw;
                }
            }
        }

        public void AfterBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount)
        {
            // Phase 2 runs once the pool has the commit's record (CommitUnsynchronized), still under the gate.
        }
    }
}
