using System.Diagnostics;
using System.Runtime.InteropServices;
using CowWasm.Memory.Trackers;

namespace CowWasm.Memory.Sync;

/// <summary>
/// A leader and its replicas over one committed image. The leader is a <see cref="CowView"/> of the
/// <see cref="Base"/>; writes to it are a transaction that ends in <see cref="Commit()"/> or <see cref="Rollback"/>.
/// </summary>
/// <remarks>
/// <para><b>Invariants.</b> (1) The base holds exactly the committed image; only <see cref="Commit()"/> writes it,
/// under the write lock. (2) Between transactions the leader equals the base (its private copies were
/// discarded at the last commit or rollback). (3) When a commit starts, every replica is clean: reset since its
/// last read (SharedBase: no private copies except keep-resident ones that hold base bytes). The caller (the
/// pool) keeps (3) by resetting each replica after each read; DEBUG builds check it and throw.</para>
/// <para><b>Thread-safety.</b> <see cref="ResetReplica"/> may run concurrently for distinct replicas (a replica
/// reset twice at once throws). Commit, Rollback, GrowLeader, CreateReplica, replica disposal and Dispose are
/// exclusive: they take the write side of a reader/writer lock that resets hold for reading, so a reset never
/// overlaps a commit. Reading and writing the leader's and replicas' bytes is not synchronized here.</para>
/// <para><b>Failure.</b> A commit that fails after it began writing the base (e.g. ENOMEM from pwrite) leaves
/// replicas in an unknown state: the strategy becomes faulted and every later call throws.</para>
/// </remarks>
public abstract class SyncStrategy : IDisposable
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly List<Replica> _replicas = [];

    /// <summary>Why only one replica may use the soft-dirty tracker.</summary>
    public const string SoftDirtyReplicasRefusal =
        "The soft-dirty tracker supports one replica per strategy: its read-and-clear (/proc/self/clear_refs) is per " +
        "process, not per mapping, so resetting one replica would clear the soft-dirty bits of another replica's running " +
        "read, and that replica's next reset would miss pages. Use the StoreBarrier, UffdWriteProtect or CowFile tracker.";
    private readonly List<PageRun> _dirty = [];
    private readonly List<PageRun> _changed = [];
    private readonly CowView _leader;
    private readonly DirtyTracker _leaderTracker;
    private long _committedPageCount;
    private bool _disposed;
    private Exception? _fault;
    private ICommitObserver? _commitObserver;

    private protected SyncStrategy(SyncOptions options, PageBase? image)
    {
        Options = options;
        Base = image ?? PageBase.Create(options.InitialPageCount, options.Name);
        try
        {
            _leader = new CowView(Base, options.InitialPageCount, options.MaxPageCount, options.ReservedBytes);
            try
            {
                _leaderTracker = DirtyTracker.Create(options.LeaderTracker, _leader);
            }
            catch
            {
                _leader.Dispose();
                throw;
            }
        }
        catch
        {
            Base.Dispose();
            throw;
        }

        _committedPageCount = options.InitialPageCount;
        if (options.SkipUnchangedPages)
        {
            Base.MapForReading(options.MaxPageCount); // content compares read the base in place (PageComparer)
        }
    }

    /// <summary>Creates the strategy <paramref name="options"/> names, with an empty (zero) committed image.</summary>
    /// <exception cref="ArgumentException">The options are inconsistent.</exception>
    /// <exception cref="Native.KernelFeatureNotSupportedException">A chosen tracker needs a kernel feature this kernel lacks.</exception>
    public static SyncStrategy Create(SyncOptions options) => Create(options, null);

    /// <summary>
    /// Creates the strategy over an existing committed image (a loaded snapshot's base), which it then owns.
    /// The committed length is the image's; <see cref="SyncOptions.InitialPageCount"/> is ignored. A read-only
    /// image is mapped as it is; the first commit or growth copies it into a memfd (see <see cref="PageBase.IsReadOnly"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The options are inconsistent, or the image is larger than <see cref="SyncOptions.MaxPageCount"/>.</exception>
    public static SyncStrategy Create(SyncOptions options, PageBase? image)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (image is not null)
        {
            if (image.PageCount > options.MaxPageCount)
            {
                throw new ArgumentException(
                    $"The image has {image.PageCount} pages but MaxPageCount is {options.MaxPageCount}.", nameof(image));
            }

            options = options with { InitialPageCount = image.PageCount };
        }

        options.Validate();
        return options.Strategy switch
        {
            SyncStrategyKind.FullCopy => new FullCopyStrategy(options, image),
            SyncStrategyKind.DirtyCopy => new DirtyCopyStrategy(options, image),
            _ => new SharedBaseStrategy(options, image),
        };
    }

    /// <summary>The options this strategy was created with.</summary>
    public SyncOptions Options { get; }

    /// <summary>Which strategy this is.</summary>
    public SyncStrategyKind Kind => Options.Strategy;

    /// <summary>The committed image.</summary>
    public PageBase Base { get; }

    /// <summary>The leader's memory: write to it, then <see cref="Commit()"/> or <see cref="Rollback"/>.</summary>
    public PageMemory Leader => _leader;

    /// <summary>The tracker that finds the leader's dirty pages.</summary>
    public DirtyTracker LeaderTracker => _leaderTracker;

    /// <summary>
    /// Whether a commit failed part-way (after it began writing the base): replicas may hold a mix of old and new
    /// pages, and every later call throws. An exception from <see cref="Commit()"/> while this is false changed
    /// nothing (base and replicas hold the last commit; the leader still holds the transaction), so the caller may
    /// <see cref="Rollback"/>.
    /// </summary>
    public bool IsFaulted => Volatile.Read(ref _fault) is not null;

    /// <summary>The committed length in pages (the leader may be longer inside a transaction).</summary>
    public long CommittedPageCount => Volatile.Read(ref _committedPageCount);

    /// <summary>Live replicas.</summary>
    public int ReplicaCount
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _replicas.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>Creates a replica holding the committed image.</summary>
    /// <exception cref="NotSupportedException">A second replica with the soft-dirty tracker (see <see cref="SoftDirtyReplicasRefusal"/>).</exception>
    public Replica CreateReplica()
    {
        _lock.EnterWriteLock();
        try
        {
            ThrowIfUnusable();
            if (Options.EffectiveReplicaTracker == TrackerKind.SoftDirty && _replicas.Count > 0)
            {
                throw new NotSupportedException(SoftDirtyReplicasRefusal);
            }

            Replica replica = CreateReplicaUnsynchronized(CommittedPageCount);
            _replicas.Add(replica);
            return replica;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// Makes the base one other processes can map and that commits write in place: a snapshot-loaded (read-only, file)
    /// base is copied up into a memfd now, O(size) once, instead of at the first commit. A follower hub calls it.
    /// </summary>
    public void ShareBase()
    {
        _lock.EnterWriteLock();
        try
        {
            ThrowIfUnusable();
            EnsureWritableBaseUnsynchronized();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// Sees every commit from inside it, under the strategy's write lock (null: none): the one hook for whoever drives
    /// what happens around a commit (a pool's commit listeners, or a follower hub used on its own).
    /// </summary>
    public ICommitObserver? CommitObserver
    {
        get => Volatile.Read(ref _commitObserver);
        set
        {
            _lock.EnterWriteLock();
            try
            {
                ThrowIfUnusable();
                _commitObserver = value;
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    /// <summary>
    /// Makes the leader's current bytes (and length) the committed image and brings every replica to it.
    /// Replicas must be clean (see the invariants).
    /// </summary>
    public CommitResult Commit() => Commit(null);

    /// <summary>
    /// <see cref="Commit()"/>, and replaces the contents of <paramref name="writtenRuns"/> with the runs the base received
    /// (what a commit log ships; empty when nothing was written).
    /// </summary>
    public CommitResult Commit(List<PageRun>? writtenRuns)
    {
        writtenRuns?.Clear();
        _lock.EnterWriteLock();
        try
        {
            ThrowIfUnusable();
            AssertReplicasCleanUnsynchronized();
            if (Base.IsReadOnly && !LeaderChangedUnsynchronized())
            {
                // Nothing to commit onto a still-mapped snapshot: keep it mapped (no copy-up), restart the interval.
                _leaderTracker.Collect(_dirty);
                return new CommitResult(0, 0, CommittedPageCount, _replicas.Count);
            }

            EnsureWritableBaseUnsynchronized();
            _leaderTracker.Collect(_dirty);
            long committed = _leader.PageCount;
            long unchanged = 0;
            List<PageRun> written = _dirty;
            if (Options.SkipUnchangedPages)
            {
                unchanged = PageComparer.SplitByContent(Base, _leader, _dirty, _changed, restore: false);
                written = _changed;
            }

            // Before anything changes, so an observer's refusal leaves the strategy as it was (the caller rolls back).
            _commitObserver?.BeforeBaseWrite(written, committed);
            try
            {
                Base.WriteRuns(_leader, written);
                IReadOnlyList<PageRun> sent = RunsToSend(written, committed);
                foreach (Replica replica in _replicas)
                {
                    replica.FollowCommitUnsynchronized(_leader, sent, committed);
                }

                if (Options.LeaderReset == LeaderResetMode.Discard)
                {
                    // The discarded pages now show the base, which holds the bytes the tracker last saw: no re-arming.
                    _leader.ResetToBase(_dirty);
                }

                // Keep-resident: the leader's pages hold exactly what the base now holds; nothing to do.
            }
            catch (Exception e)
            {
                _fault = e;
                throw;
            }

            Volatile.Write(ref _committedPageCount, committed);
            _commitObserver?.AfterBaseWrite(written, committed);
            writtenRuns?.AddRange(written);
            return new CommitResult(Pages.CountPages(written), written.Count, committed, _replicas.Count, unchanged);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Returns the leader to the committed image and length in O(dirty pages). Returns the pages discarded.</summary>
    public long Rollback()
    {
        _lock.EnterWriteLock();
        try
        {
            ThrowIfUnusable();
            _leaderTracker.Collect(_dirty);
            long discarded = Pages.CountPages(_dirty);
            if (_leader.PageCount != CommittedPageCount)
            {
                _leader.Resize(CommittedPageCount); // pages beyond the committed length go first: nothing to restore there
                Pages.Clip(_dirty, CommittedPageCount);
            }

            if (Options.LeaderReset == LeaderResetMode.Discard)
            {
                _leader.ResetToBase(_dirty);
                _leaderTracker.OnDiscarded(_dirty);
            }
            else
            {
                Base.ReadRuns(_leader, _dirty); // copy the committed bytes back, keep the pages
                _leaderTracker.MarkClean(_dirty);
            }

            return discarded;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Grows the leader (inside a transaction) to <paramref name="newPageCount"/> zero-filled pages; replicas follow at commit.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Smaller than the leader or beyond <see cref="SyncOptions.MaxPageCount"/>.</exception>
    public void GrowLeader(long newPageCount)
    {
        _lock.EnterWriteLock();
        try
        {
            ThrowIfUnusable();
            if (newPageCount < _leader.PageCount || newPageCount > Options.MaxPageCount)
            {
                throw new ArgumentOutOfRangeException(nameof(newPageCount), newPageCount,
                    $"The leader can grow from {_leader.PageCount} pages to at most {Options.MaxPageCount}.");
            }

            // Base pages beyond the committed length are zero (PageBase invariant), so the grown view reads zeros.
            EnsureWritableBaseUnsynchronized();
            Base.Grow(Math.Max(Base.PageCount, newPageCount));
            _leader.Resize(newPageCount);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// Returns a replica to the committed image after a read. Returns the pages restored: discarded (madvise) or
    /// copied back (keep-resident and private replicas; with <see cref="SyncOptions.SkipUnchangedPages"/> only the
    /// scribbled pages whose bytes differ from the base's are copied). Safe to call for distinct replicas concurrently.
    /// </summary>
    /// <exception cref="InvalidOperationException">The replica is being reset by another thread.</exception>
    /// <exception cref="ArgumentException">The replica belongs to another strategy.</exception>
    public long ResetReplica(Replica replica) => OnReplica(replica, 0L, static (self, r, _) =>
    {
        long committed = self.CommittedPageCount;
        if (r.Memory.PageCount > committed)
        {
            r.Memory.Resize(committed); // scratch growth from the read is dropped, not restored
        }

        return r.ResetUnsynchronized(self.Base, self.Options.ResetMode, self.Options.SkipUnchangedPages);
    });

    /// <summary>
    /// Grows a replica's memory during a read (Wasm <c>memory.grow</c> inside a query) to
    /// <paramref name="newPageCount"/> zero-filled pages. The growth is scratch: <see cref="ResetReplica"/> cuts the
    /// replica back to the committed length, and nothing reaches the base or other replicas. May run concurrently
    /// for distinct replicas, like resets.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Smaller than the replica or beyond <see cref="SyncOptions.MaxPageCount"/>.</exception>
    /// <exception cref="InvalidOperationException">The replica is being reset or grown on another thread.</exception>
    public void GrowReplica(Replica replica, long newPageCount) => OnReplica(replica, newPageCount, static (self, r, pages) =>
    {
        if (pages < r.Memory.PageCount || pages > self.Options.MaxPageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(newPageCount), pages,
                $"The replica can grow from {r.Memory.PageCount} pages to at most {self.Options.MaxPageCount}.");
        }

        // The base is not touched (growing it needs the write lock): pages the base lacks are mapped as
        // anonymous zeros by the replica's memory; pages it has beyond the committed length are zero.
        r.Memory.Resize(pages);
        return 0L;
    });

    /// <summary>
    /// Runs a per-replica operation under the read side of the lock (so distinct replicas proceed concurrently
    /// and no commit overlaps), with the replica marked busy so that two threads never work on one replica.
    /// </summary>
    private long OnReplica(Replica replica, long argument, Func<SyncStrategy, Replica, long, long> operation)
    {
        ArgumentNullException.ThrowIfNull(replica);
        if (replica.Owner != this)
        {
            throw new ArgumentException("The replica belongs to another strategy.", nameof(replica));
        }

        _lock.EnterReadLock();
        try
        {
            ThrowIfUnusable();
            ObjectDisposedException.ThrowIf(replica.IsDisposed, replica);
            if (!replica.TryEnter())
            {
                throw new InvalidOperationException("The replica is already being reset or grown on another thread.");
            }

            try
            {
                return operation(this, replica, argument);
            }
            finally
            {
                replica.Exit();
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private protected abstract Replica CreateReplicaUnsynchronized(long committedPageCount);

    /// <summary>
    /// What a commit sends to replicas, given the runs it wrote into the base: the dirty runs themselves by default.
    /// A replica that keeps its own copy (private memory) copies exactly these runs from the leader.
    /// </summary>
    private protected virtual IReadOnlyList<PageRun> RunsToSend(IReadOnlyList<PageRun> dirty, long committedPageCount) => dirty;

    internal void Remove(Replica replica)
    {
        _lock.EnterWriteLock();
        try
        {
            _replicas.Remove(replica);
            replica.DisposeUnsynchronized();
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Whether the leader differs from the committed image: a private copy (a written page) or another length.</summary>
    private bool LeaderChangedUnsynchronized()
    {
        var privateRuns = new List<PageRun>();
        _leader.CollectPrivatePages(privateRuns);
        return privateRuns.Count > 0 || _leader.PageCount != CommittedPageCount;
    }

    /// <summary>
    /// A read-only image (a mapped snapshot file) is copied into a memfd before its first change, so the file is
    /// never written. Views are remapped onto the copy: replicas are clean here (the same precondition as a
    /// commit), and the leader's uncommitted private pages are saved and written back, so its tracker reports
    /// them again. O(size) once; a failure faults the strategy.
    /// </summary>
    private unsafe void EnsureWritableBaseUnsynchronized()
    {
        if (!Base.IsReadOnly)
        {
            return;
        }

        byte* saved = null;
        try
        {
            // The leader's uncommitted pages live in its private copies, which the remap drops: keep them in native
            // memory (any size; a managed array stopped at 2 GiB) and write them back after.
            var privateRuns = new List<PageRun>();
            _leader.CollectPrivatePages(privateRuns);
            saved = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, Pages.ToBytes(Pages.CountPages(privateRuns))));
            long at = 0;
            foreach (PageRun run in privateRuns)
            {
                // SAFETY: saved holds every run's bytes back to back; at + run.ByteLength ≤ its length.
                CopyRun(run, saved + at, toLeader: false);
                at += run.ByteLength;
            }

            Base.CopyUp(Options.Name);
            _leader.Remap();
            foreach (Replica replica in _replicas)
            {
                replica.OnBaseReplacedUnsynchronized();
            }

            at = 0;
            foreach (PageRun run in privateRuns)
            {
                CopyRun(run, saved + at, toLeader: true);
                at += run.ByteLength;
            }
        }
        catch (Exception e)
        {
            _fault = e;
            throw;
        }
        finally
        {
            NativeMemory.Free(saved);
        }
    }

    /// <summary>Copies one run between the leader and <paramref name="buffer"/>, in spans of at most 1 GiB.</summary>
    private unsafe void CopyRun(PageRun run, byte* buffer, bool toLeader)
    {
        const long chunk = 1L << 30;
        for (long done = 0; done < run.ByteLength; done += chunk)
        {
            int count = (int)Math.Min(chunk, run.ByteLength - done);
            Span<byte> leader = _leader.GetSpan(run.ByteOffset + done, count);
            var outside = new Span<byte>(buffer + done, count);
            if (toLeader)
            {
                outside.CopyTo(leader);
            }
            else
            {
                leader.CopyTo(outside);
            }
        }
    }

    [Conditional("DEBUG")]
    private void AssertReplicasCleanUnsynchronized()
    {
        foreach (Replica replica in _replicas)
        {
            replica.AssertCleanUnsynchronized();
        }
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_fault is not null)
        {
            throw new InvalidOperationException(
                "A commit failed part-way; replicas may hold a mix of old and new pages. Recreate the strategy.", _fault);
        }
    }

    /// <summary>Frees every replica, the leader, its tracker and the base.</summary>
    public void Dispose()
    {
        _lock.EnterWriteLock();
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (Replica replica in _replicas)
            {
                replica.DisposeUnsynchronized();
            }

            _replicas.Clear();
            _leaderTracker.Dispose();
            _leader.Dispose();
            Base.Dispose();
        }
        finally
        {
            _lock.ExitWriteLock();
        }

        GC.SuppressFinalize(this);
    }
}
