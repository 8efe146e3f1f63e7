using System.Diagnostics;
using CowWasm.Memory;
using CowWasm.Memory.Sharing;
using CowWasm.Memory.Sync;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// One leader instance that takes writes and N replica instances that serve reads in parallel, over one
/// <see cref="SyncStrategy"/>. Write transactions commit to every replica or roll back; every read starts from
/// the committed state.
/// </summary>
/// <remarks>
/// <para><b>Scoped work only:</b> the delegates receive an <see cref="IGuestInstance"/> valid for the call;
/// keeping it afterwards is a bug (it is reset and handed to someone else).</para>
/// <para><b>Transactions:</b> a write that returns commits (memory, length and globals reach every replica);
/// a write that throws or traps rolls back — leader memory, length and globals return to the last commit,
/// replicas are untouched — and the exception propagates. A read's changes (memory, globals, WASI output) are
/// discarded after it, also when it traps — or, with <see cref="ReadIsolation.PerCommit"/>, kept on its replica
/// until the next commit (see <see cref="ReadIsolation"/>).</para>
/// <para><b>Fairness:</b> reads run concurrently with each other, writes alone. A waiting writer blocks reads
/// that arrive after it and waits for admitted reads to finish; writers are served in arrival order.</para>
/// <para><b>A failed commit:</b> if the commit throws before it began changing the base, the leader is rolled back
/// and the exception propagates (nothing of the write is committed, then or by a later write). If it failed
/// part-way (<see cref="SyncStrategy.IsFaulted"/>) or the rollback fails too, the pool is <i>faulted</i>: waiting
/// and later reads and writes throw <see cref="InvalidOperationException"/> with the cause as inner exception;
/// only <see cref="Dispose"/> remains useful.</para>
/// <para><b>Thread-safety:</b> every member is thread-safe. Dispose waits for transactions in flight; waiting
/// ones are cancelled with <see cref="ObjectDisposedException"/>.</para>
/// <para><b>Where things are:</b> this file holds the transactions (the gate, the leader, the replicas) and reads;
/// beside them, in their own files, the commit listeners (GuestPool.Listeners.cs), the commit log (GuestPool.Log.cs),
/// snapshots (GuestPool.Snapshots.cs), follower serving (GuestPool.Followers.cs) and applying foreign commits
/// (GuestPool.Apply.cs).</para>
/// <para><b>Which lock guards what</b> (the write gate is <c>_gate</c>'s write side, held by writes, commits, snapshot
/// saves and every change of listeners):</para>
/// <list type="table">
/// <item><term>read-only after construction</term><description><c>_module</c>, <c>_leader</c>, <c>_strategy</c>,
/// <c>_replicas</c> (the set locks itself), <c>_metrics</c>, <c>_tags</c>, <c>_instantiatedTables</c>, <c>Options</c>.</description></item>
/// <item><term>write gate</term><description>the leader instance and its memory; <c>_runs</c>, <c>_applying</c>,
/// <c>_patches</c>, <c>_patchScratch</c>, <c>_durable</c>; writes of <c>_committed</c>, <c>_sequence</c>,
/// <c>_listeners</c>, <c>_log</c>, <c>_logListener</c>.</description></item>
/// <item><term>no lock (one reference or word, read with <c>Volatile</c>)</term><description>reads of
/// <c>_committed</c> (replaced whole by each commit; a read inside a read transaction sees the state it runs on),
/// <c>_sequence</c>, <c>_listeners</c>, <c>_log</c>; <c>_fault</c> (set once, by compare-exchange); <c>_waiting</c>
/// and <c>_disposed</c> (interlocked).</description></item>
/// <item><term><c>_hubLock</c></term><description><c>_hub</c>, <c>_hubListener</c> (also under the gate when they
/// change).</description></item>
/// </list>
/// </remarks>
public sealed partial class GuestPool : IDisposable, IAsyncDisposable
{
    private readonly PoolGate _gate = new();
    private readonly IGuestModule _module;
    private readonly IGuestInstance _leader;
    private readonly SyncStrategy _strategy;
    private readonly ReplicaSet _replicas;
    private readonly PoolMetrics _metrics;
    private readonly CancellationTokenSource _disposing = new();
    private readonly TagList _tags;
    private CommittedState _committed;
    private FollowerHub? _hub;
    private HubListener? _hubListener;
    private readonly Lock _hubLock = new();
    private TableState _instantiatedTables;
    private long _sequence;
    private long _committedPages;
    private readonly List<PageRun> _runs = []; // the runs of the commit being made (under the write gate)
    private CommitRecord? _applying; // the foreign commit being committed (under the write gate)
    private int _waiting;
    private int _disposed;
    private Exception? _fault;

    /// <summary>
    /// The one constructor path: instantiate the leader (over a fresh strategy, or over the snapshot's image when
    /// <paramref name="seed"/> is given), make its state the committed one, then clone the replicas.
    /// </summary>
    private GuestPool(IGuestModule module, Linker linker, PoolOptions options, PoolSnapshot? seed)
    {
        Options = options;
        _module = module;
        _metrics = new PoolMetrics(() => Volatile.Read(ref _waiting), () => FaultCause is null ? 0 : 1);
        _tags = new TagList { { "pool", options.Name }, { "strategy", options.Sync.Strategy.ToString() } };
        try
        {
            _leader = module.Instantiate(linker, options.Instance with { Memory = LeaderMemoryFactory(options, seed) });
            try
            {
                _strategy = ((LeaderMemory?)_leader.LinearMemory ?? throw new ArgumentException(
                    "The module has no linear memory; a pool of it would have no state to share.", nameof(module))).Strategy;
                _strategy.CommitObserver = new BaseWriteDispatcher(this); // phase 1 of the commit listeners
                if (seed is null)
                {
                    _strategy.Commit(); // data segments and the start function's writes become the committed image
                }
                else
                {
                    // The snapshot is the committed state: drop what instantiation wrote (data segments, start function).
                    _strategy.Rollback();
                    _leader.RefreshMemorySize();
                    _leader.RestoreGlobals(seed.Globals.ToArray());
                    _sequence = seed.Sequence;
                }

                _committed = CommittedState.Capture(_leader, seed?.Head ?? GenesisOf(module));
                _instantiatedTables = _committed.Tables;
                _replicas = new ReplicaSet(_strategy, _leader, options.ReplicaCount, _metrics, _tags);
            }
            catch
            {
                _leader.Dispose(); // disposes the LeaderMemory: strategy, base, leader view
                throw;
            }
        }
        catch
        {
            _metrics.Dispose();
            _gate.Dispose();
            _disposing.Dispose();
            throw;
        }
    }

    /// <summary>Commit 0 of a pool made by instantiation (a module without an identity hash gets the zero hash's).</summary>
    private static CommitId GenesisOf(IGuestModule module) =>
        CommitId.Genesis(module.Info.ModuleHash.Length == 64 ? Convert.FromHexString(module.Info.ModuleHash) : new byte[32]);

    private static LinearMemoryFactory LeaderMemoryFactory(PoolOptions options, PoolSnapshot? seed) => (initial, max, reserved) =>
    {
        SyncOptions sync = options.Sync;
        long capped = options.CapPages(max);
        long needed = Math.Max(initial, seed is null ? 0 : seed.MemoryByteLength / Memory.Pages.Size);
        if (needed > capped)
        {
            throw new ArgumentException(
                $"The pool's memory cap (PoolOptions.MaxMemoryBytes = {options.MaxMemoryBytes:N0} bytes) is below the " +
                $"{(seed is null ? "module's initial memory" : "snapshot's memory")} ({Memory.Pages.ToBytes(needed):N0} bytes).", nameof(options));
        }

        if (seed is null)
        {
            return new LeaderMemory(sync, initial, capped, reserved);
        }

        PageBase image = seed.TakeBase();
        try
        {
            return new LeaderMemory(SyncStrategy.Create(
                sync with { MaxPageCount = capped, ReservedBytes = Math.Max(sync.ReservedBytes, reserved) }, image));
        }
        catch
        {
            image.Dispose();
            throw;
        }
    };

    /// <summary>Creates the leader, commits its initial state and clones the replicas (O(1) each in memory size).</summary>
    /// <exception cref="ArgumentOutOfRangeException">ReplicaCount is below 1.</exception>
    public static GuestPool Create(IGuestModule module, Linker linker, PoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(linker);
        options ??= new PoolOptions();
        options.Validate(module);
        return new GuestPool(module, linker, options, seed: null);
    }

    /// <summary>
    /// Creates a pool whose committed state is the snapshot at <paramref name="path"/> (saved by
    /// <see cref="SaveSnapshotAsync"/>, possibly in another process). Nothing is read or copied: the leader and
    /// SharedBase replicas are MAP_PRIVATE views of the file. The file is never modified; the first write
    /// transaction copies the image into memory (O(size), once). The header is always checked;
    /// <paramref name="verifyData"/> also hashes every page (O(size)).
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="SnapshotFormatException">Corrupt or truncated file, wrong format version, page size or module, or (with
    /// <paramref name="verifyData"/>) damaged data. Nothing stays mapped or open.</exception>
    public static GuestPool CreateFromSnapshot(IGuestModule module, Linker linker, string path, PoolOptions? options = null, bool verifyData = false)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(linker);
        options ??= new PoolOptions();
        options.Validate(module);
        using PoolSnapshot snapshot = PoolSnapshot.Open(path, module);
        if (verifyData)
        {
            snapshot.VerifyData();
        }

        return new GuestPool(module, linker, options, snapshot);
    }

    /// <summary>The options the pool was created with.</summary>
    public PoolOptions Options { get; }

    /// <summary>The module the pool runs.</summary>
    public IGuestModule Module => _module;

    /// <summary>
    /// How many commits made the committed state: 0 after <see cref="Create"/>, the snapshot's sequence after
    /// <see cref="CreateFromSnapshot"/>, plus one per commit since. Inside a read it is the sequence the read sees
    /// (commits wait for reads).
    /// </summary>
    public long CommitSequence => Volatile.Read(ref _sequence);

    /// <summary>
    /// Pages written to the base by the commits since this pool was created (the commits' dirty pages; pages written
    /// with the bytes they held are not counted). With <see cref="CommitSequence"/>, what a monitor needs for pages per
    /// commit over an interval.
    /// </summary>
    public long CommittedPages => Interlocked.Read(ref _committedPages);

    /// <summary>
    /// The identity of the committed state (<see cref="CommitId"/>): the module's genesis after <see cref="Create"/>, the
    /// snapshot's after <see cref="CreateFromSnapshot"/>, then each commit's. Read it inside a transaction to pair it with
    /// <see cref="CommitSequence"/>.
    /// </summary>
    public CommitId Head => Volatile.Read(ref _committed).Id;

    /// <summary>
    /// Why the pool is faulted (a commit failed and its state could not be restored), or null while it serves. A faulted
    /// pool throws on every call; dispose it and create a new one.
    /// </summary>
    public Exception? FaultCause => Volatile.Read(ref _fault);

    /// <summary>The strategy moving commits to replicas.</summary>
    public SyncStrategy Strategy => _strategy;

    /// <summary>The replicas' memories (a snapshot of the current set), for footprint measurements.</summary>
    internal IReadOnlyList<ReplicaMemory> ReplicaMemories => _replicas.Memories;

    /// <summary>The meter name for <see cref="System.Diagnostics.Metrics.MeterListener"/>s.</summary>
    public static string MeterName => PoolMetrics.MeterName;

    /// <summary>
    /// Runs <paramref name="work"/> on an idle replica holding the committed state, for at most
    /// <see cref="PoolOptions.TransactionTimeout"/>.
    /// </summary>
    /// <exception cref="WasmTrapException">The guest trapped (the replica is reset and returned).</exception>
    /// <exception cref="OperationCanceledException">Cancelled while waiting, or while running (the guest was interrupted;
    /// the replica is reset and returned).</exception>
    /// <exception cref="TimeoutException">The work ran past the timeout (the guest was interrupted; the replica is reset
    /// and returned).</exception>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public ValueTask<T> ReadAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default) =>
        ReadAsync(work, Options.TransactionTimeout, cancellationToken);

    /// <summary>Runs <paramref name="work"/> on an idle replica, for at most <paramref name="timeout"/> (overriding
    /// <see cref="PoolOptions.TransactionTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/> for none).</summary>
    /// <inheritdoc cref="ReadAsync{T}(Func{IGuestInstance, ValueTask{T}}, CancellationToken)"/>
    public async ValueTask<T> ReadAsync<T>(Func<IGuestInstance, ValueTask<T>> work, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        PoolOptions.ValidateTimeout(timeout, nameof(timeout));
        using CancellationTokenSource? linked = Link(cancellationToken, out CancellationToken token);
        Interlocked.Increment(ref _waiting);
        PooledReplica replica;
        try
        {
            await _gate.EnterReadAsync(token).ConfigureAwait(false);
            try
            {
                replica = await _replicas.RentAsync(token).ConfigureAwait(false);
            }
            catch
            {
                _gate.ExitRead();
                throw;
            }
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(GuestPool));
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        bool returned = false;
        try
        {
            T result;
            using (RunningGuest running = RunningGuest.Start(replica.Instance, cancellationToken, timeout))
            {
                try
                {
                    result = await work(replica.Instance).ConfigureAwait(false);
                }
                catch (Exception e) when (running.Translate(e) is { } interrupted)
                {
                    throw interrupted; // the replica is reset below like after any failed read
                }
            }

            returned = true;
            return result;
        }
        finally
        {
            try
            {
                _replicas.Return(replica, _committed, keepReadEffects: returned && Options.Isolation == ReadIsolation.PerCommit &&
                    replica.Memory.Memory.ByteLength - Memory.Pages.ToBytes(_strategy.CommittedPageCount) <= Options.MaxRetainedReadBytes);
            }
            finally
            {
                _gate.ExitRead();
                _metrics.Reads.Add(1, in _tags);
            }
        }
    }

    /// <summary>Synchronous read.</summary>
    public T Read<T>(Func<IGuestInstance, T> work, CancellationToken cancellationToken = default) =>
        Read(work, Options.TransactionTimeout, cancellationToken);

    /// <summary>Synchronous read with its own timeout.</summary>
    public T Read<T>(Func<IGuestInstance, T> work, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return Wait(ReadAsync(g => ValueTask.FromResult(work(g)), timeout, cancellationToken));
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the leader, alone, for at most <see cref="PoolOptions.TransactionTimeout"/>;
    /// commits if it returns, rolls back if it throws, traps, is cancelled or times out.
    /// </summary>
    /// <exception cref="WasmTrapException">The guest trapped (rolled back).</exception>
    /// <exception cref="OperationCanceledException">Cancelled while waiting, or while running (the guest was interrupted;
    /// rolled back).</exception>
    /// <exception cref="TimeoutException">The work ran past the timeout (the guest was interrupted; rolled back).</exception>
    public ValueTask<T> WriteAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default) =>
        WriteAsync(work, Options.TransactionTimeout, cancellationToken);

    /// <summary>Runs <paramref name="work"/> on the leader, for at most <paramref name="timeout"/> (overriding
    /// <see cref="PoolOptions.TransactionTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/> for none).</summary>
    /// <inheritdoc cref="WriteAsync{T}(Func{IGuestInstance, ValueTask{T}}, CancellationToken)"/>
    public async ValueTask<T> WriteAsync<T>(Func<IGuestInstance, ValueTask<T>> work, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        PoolOptions.ValidateTimeout(timeout, nameof(timeout));
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);
        T result;
        ValueTask durable;
        try
        {
            ThrowIfFaulted(); // a write that waited behind the one that faulted the pool
            try
            {
                using RunningGuest running = RunningGuest.Start(_leader, cancellationToken, timeout);
                try
                {
                    result = await work(_leader).ConfigureAwait(false);
                }
                catch (Exception e) when (running.Translate(e) is { } interrupted)
                {
                    throw interrupted;
                }
            }
            catch
            {
                RollbackUnsynchronized();
                throw;
            }

            CommitOrRollbackUnsynchronized();
            durable = TakeDurableUnsynchronized();
        }
        finally
        {
            _gate.ExitWrite();
        }

        await WhenDurableAsync(durable).ConfigureAwait(false); // outside the gate: the next write overlaps this fsync
        return result;
    }

    /// <summary>Synchronous write.</summary>
    public T Write<T>(Func<IGuestInstance, T> work, CancellationToken cancellationToken = default) =>
        Write(work, Options.TransactionTimeout, cancellationToken);

    /// <summary>Synchronous write with its own timeout.</summary>
    public T Write<T>(Func<IGuestInstance, T> work, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return Wait(WriteAsync(g => ValueTask.FromResult(work(g)), timeout, cancellationToken));
    }

    /// <summary>Blocks on a transaction; no Task is allocated when it already completed (the uncontended case).</summary>
    private static T Wait<T>(ValueTask<T> pending) =>
        pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();

    /// <summary>Enters the gate's write side; disposal while waiting surfaces as <see cref="ObjectDisposedException"/>.</summary>
    private async ValueTask EnterWriteAsync(CancellationToken cancellationToken)
    {
        using CancellationTokenSource? linked = Link(cancellationToken, out CancellationToken token);
        try
        {
            await _gate.EnterWriteAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(GuestPool));
        }
    }

    /// <summary>
    /// Commits (at <see cref="ReadIsolation.PerCommit"/>, after resetting the replicas that kept reads' effects: they
    /// must be clean before the base changes). If that throws before the strategy began changing the base (it is not
    /// faulted), rolls the leader back so that no later write commits these changes, and rethrows. If the strategy is
    /// faulted, or the rollback fails too, the pool becomes faulted: every later call throws, naming the cause.
    /// </summary>
    /// <param name="foreign">The commit being applied from another pool (<see cref="ApplyCommitAsync"/>), which listeners get
    /// as it is and whose identity the pool takes; null for the leader's own.</param>
    private void CommitOrRollbackUnsynchronized(CommitRecord? foreign = null)
    {
        try
        {
            if (Options.Isolation == ReadIsolation.PerCommit)
            {
                _replicas.ResetForCommit(_committed);
            }

            CommitUnsynchronized(foreign);
        }
        catch (Exception commitError)
        {
            if (_strategy.IsFaulted || Volatile.Read(ref _fault) is not null)
            {
                Fault(commitError);
                throw;
            }

            try
            {
                RollbackUnsynchronized();
            }
            catch (Exception rollbackError)
            {
                Fault(new AggregateException("The commit failed and so did the rollback after it.", commitError, rollbackError));
            }

            throw;
        }
    }

    private void Fault(Exception cause)
    {
        Interlocked.CompareExchange(ref _fault, cause, null);
        _replicas.Fault(_fault);
    }

    private void ThrowIfFaulted()
    {
        if (Volatile.Read(ref _fault) is { } cause)
        {
            throw new InvalidOperationException(
                "The pool is faulted: a commit failed and its state could not be restored. Dispose it and create a new one.", cause);
        }
    }

    private void CommitUnsynchronized(CommitRecord? foreign)
    {
        long start = Stopwatch.GetTimestamp();
        CommitResult result;
        _applying = foreign; // phase 1 makes no patches for a commit that brings its own
        try
        {
            result = _strategy.Commit(_runs);
        }
        finally
        {
            _applying = null;
        }

        bool tablesChanged = _leader.TablesChanged;
        CommitId parent = _committed.Id;
        long sequence = _sequence + 1;
        ulong[] globals = _leader.CaptureGlobals();
        TableState tables = tablesChanged ? _leader.CaptureTables() : _committed.Tables;
        bool foreignTables = !tables.Equals(_instantiatedTables);
        long memoryBytes = Pages.ToBytes(result.CommittedPageCount);
        // A foreign commit keeps the identity it was checked against (ApplyCommitAsync); the leader's own digests the
        // pages it committed, where the leader holds them.
        CommitId id = foreign?.Id ?? CommitId.Of(parent, sequence, memoryBytes, foreignTables, globals, _runs, DigestLeaderPages(_runs));
        _committed = new CommittedState(globals, tables, id);
        try
        {
            _replicas.FollowCommit(_committed, tablesChanged);
        }
        catch (Exception followError)
        {
            // The base holds the commit, but a replica could not adopt its tables (an allocation failed): the replicas
            // no longer agree with the committed state and rolling back cannot help.
            Fault(new InvalidOperationException("A commit succeeded but a replica could not adopt its tables.", followError));
            throw;
        }

        Volatile.Write(ref _sequence, sequence);
        if (_listeners.Length > 0)
        {
            // The record listeners get: a foreign commit as it came; the leader's own with the patches phase 1 made (none
            // when no listener needs pages: then it says what changed but not how).
            byte[]? patches = _patches;
            _patches = null;
            AfterBaseWriteUnsynchronized(foreign ?? new CommitRecord(sequence, parent, memoryBytes, globals,
                patches is null ? [] : [.. _runs], patches ?? ReadOnlyMemory<byte>.Empty, foreignTables)
            {
                Encoding = PageEncoding.Patches,
            }.StatingId(id));
        }

        _leader.ResetHostState(); // host state (WASI files and output) is per transaction, like on replicas
        Interlocked.Add(ref _committedPages, result.DirtyPages);
        _metrics.Commits.Add(1, in _tags);
        _metrics.DirtyPages.Record(result.DirtyPages, in _tags);
        _metrics.UnchangedPages.Add(result.UnchangedPages, in _tags);
        _metrics.CommitDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds, in _tags);
    }

    /// <summary>The digest of <paramref name="runs"/>' pages as the leader holds them (<see cref="CommitId.DigestPages"/>).</summary>
    private UInt128 DigestLeaderPages(IReadOnlyList<PageRun> runs)
    {
        var digest = new System.IO.Hashing.XxHash128();
        foreach (PageRun run in runs)
        {
            for (long page = run.StartPage; page < run.EndPage; page++)
            {
                digest.Append(_strategy.Leader.ReadSpan(Pages.ToBytes(page), Pages.Size));
            }
        }

        return digest.GetCurrentHashAsUInt128();
    }

    private void RollbackUnsynchronized()
    {
        _strategy.Rollback();
        _leader.RefreshMemorySize();
        _committed.Apply(_leader);
        _leader.ResetHostState();
        _metrics.Rollbacks.Add(1, in _tags);
    }

    /// <summary>The token waits observe: the caller's and disposal. No allocation when the caller's cannot cancel.</summary>
    private CancellationTokenSource? Link(CancellationToken cancellationToken, out CancellationToken token)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ThrowIfFaulted();
        if (!cancellationToken.CanBeCanceled)
        {
            token = _disposing.Token;
            return null;
        }

        CancellationTokenSource linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        token = linked.Token;
        return linked;
    }

    /// <summary>Cancels waiting transactions, waits for those in flight, then frees every instance, view and fd.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        await _gate.EnterWriteAsync(CancellationToken.None).ConfigureAwait(false); // in-flight work has drained
        lock (_hubLock)
        {
            _hub?.Dispose(); // tells the followers, before the base they map goes away here
        }

        _replicas.Dispose();
        _leader.Dispose(); // disposes the LeaderMemory: strategy, base, leader view
        _metrics.Dispose();
        _gate.Dispose();
        _disposing.Dispose();
    }

    /// <summary>Synchronous form of <see cref="DisposeAsync"/>.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
