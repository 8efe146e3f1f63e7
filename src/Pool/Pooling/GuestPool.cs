using System.Diagnostics;
using System.Threading.Channels;
using CowWasm.Memory;
using CowWasm.Pool.Wasm;

namespace CowWasm.Pool.Pooling;

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
/// discarded after it, also when it traps.</para>
/// <para><b>Fairness:</b> reads run concurrently with each other, writes alone. A waiting writer blocks reads
/// that arrive after it and waits for admitted reads to finish; writers are served in arrival order.</para>
/// <para><b>Thread-safety:</b> every member is thread-safe. Dispose waits for transactions in flight; waiting
/// ones are cancelled with <see cref="ObjectDisposedException"/>.</para>
/// </remarks>
public sealed class GuestPool : IDisposable, IAsyncDisposable
{
    private readonly PoolGate _gate = new();
    private readonly Channel<PooledReplica> _idle;
    private readonly List<PooledReplica> _replicas = [];
    private readonly IGuestModule _module;
    private readonly IGuestInstance _leader;
    private readonly SyncStrategy _strategy;
    private readonly PoolMetrics _metrics;
    private readonly CancellationTokenSource _disposing = new();
    private readonly TagList _tags;
    private ulong[] _committedGlobals;
    private int _waiting;
    private int _disposed;

    private GuestPool(IGuestModule module, Linker linker, PoolOptions options, Snapshot? snapshot = null)
    {
        Options = options;
        _module = module;
        _metrics = new PoolMetrics(() => Volatile.Read(ref _waiting));
        _tags = new TagList { { "pool", options.Name }, { "strategy", options.Sync.Strategy.ToString() } };
        _idle = Channel.CreateBounded<PooledReplica>(new BoundedChannelOptions(options.ReplicaCount)
        {
            SingleReader = false,
            SingleWriter = false,
        });
        LinearMemoryFactory leaderMemory = snapshot is null ? LeaderMemory.For(options.Sync) : (initial, max) =>
        {
            PageBase image = snapshot.TakeImage();
            try
            {
                return new LeaderMemory(SyncStrategy.Create(options.Sync with { MaxPageCount = max }, image));
            }
            catch
            {
                image.Dispose();
                throw;
            }
        };
        _leader = module.Instantiate(linker, options.Instance with { Memory = leaderMemory });
        try
        {
            _strategy = ((LeaderMemory?)_leader.LinearMemory ?? throw new ArgumentException(
                "The module has no linear memory; a pool of it would have no state to share.", nameof(module))).Strategy;
            if (snapshot is null)
            {
                _strategy.Commit(); // data segments and the start function's writes become the committed image
            }
            else
            {
                // The snapshot is the committed state: drop what instantiation wrote (data segments, start function).
                _strategy.Rollback();
                _leader.RefreshMemorySize();
                int globalCount = _leader.CaptureGlobals().Length;
                if (snapshot.Header.Globals.Count != globalCount)
                {
                    throw new SnapshotFormatException(snapshot.Path,
                        $"holds {snapshot.Header.Globals.Count} globals but the module has {globalCount}.");
                }

                _leader.RestoreGlobals(snapshot.Header.Globals.ToArray());
            }

            _committedGlobals = _leader.CaptureGlobals();
            for (int i = 0; i < options.ReplicaCount; i++)
            {
                var replica = new PooledReplica(_strategy.CreateReplica(), _leader);
                _replicas.Add(replica);
                _idle.Writer.TryWrite(replica);
            }
        }
        catch
        {
            DisposeInstances();
            _metrics.Dispose();
            throw;
        }
    }

    /// <summary>Creates the leader, commits its initial state and clones the replicas (O(1) each in memory size).</summary>
    /// <exception cref="ArgumentOutOfRangeException">ReplicaCount is below 1.</exception>
    public static GuestPool Create(IGuestModule module, Linker linker, PoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(linker);
        options ??= new PoolOptions();
        options.Validate();
        return new GuestPool(module, linker, options);
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
        options.Validate();
        using Snapshot snapshot = SnapshotFile.Open(path, ModuleHash(module));
        if (verifyData)
        {
            snapshot.VerifyData();
        }

        return new GuestPool(module, linker, options, snapshot);
    }

    /// <summary>
    /// Saves the committed state (pages, memory length, globals, module identity) to <paramref name="path"/>,
    /// atomically (temp file, fsync, rename). Waits for transactions in flight and holds new ones off while it writes.
    /// </summary>
    public async ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] moduleHash = ModuleHash(_module);
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);

        try
        {
            SnapshotFile.Save(path, _strategy.Base, _strategy.CommittedPageCount, moduleHash, _committedGlobals);
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

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

    /// <summary>Synchronous form of <see cref="SaveSnapshotAsync"/>.</summary>
    public void SaveSnapshot(string path) => SaveSnapshotAsync(path).AsTask().GetAwaiter().GetResult();

    private static byte[] ModuleHash(IGuestModule module) => module.Info.ModuleHash.Length == 64
        ? Convert.FromHexString(module.Info.ModuleHash)
        : throw new ArgumentException("The module has no identity hash (WasmModuleInfo.ModuleHash); snapshots need one.", nameof(module));

    /// <summary>The options the pool was created with.</summary>
    public PoolOptions Options { get; }

    /// <summary>The strategy moving commits to replicas.</summary>
    public SyncStrategy Strategy => _strategy;

    /// <summary>The replicas' memories (a snapshot of the current set), for footprint measurements.</summary>
    internal IReadOnlyList<ReplicaMemory> ReplicaMemories
    {
        get
        {
            lock (_replicas)
            {
                return _replicas.Select(r => r.Memory).ToList();
            }
        }
    }

    /// <summary>The meter name for <see cref="System.Diagnostics.Metrics.MeterListener"/>s.</summary>
    public static string MeterName => PoolMetrics.MeterName;

    /// <summary>Runs <paramref name="work"/> on an idle replica holding the committed state.</summary>
    /// <exception cref="WasmTrapException">The guest trapped (the replica is reset and returned).</exception>
    /// <exception cref="OperationCanceledException">Cancelled while waiting.</exception>
    /// <exception cref="ObjectDisposedException">The pool is disposed.</exception>
    public async ValueTask<T> ReadAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        using CancellationTokenSource? linked = Link(cancellationToken, out CancellationToken token);
        Interlocked.Increment(ref _waiting);
        PooledReplica replica;
        try
        {
            await _gate.EnterReadAsync(token).ConfigureAwait(false);
            try
            {
                replica = await _idle.Reader.ReadAsync(token).ConfigureAwait(false);
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

        try
        {
            return await work(replica.Instance).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                ResetOrReplace(replica);
            }
            finally
            {
                _gate.ExitRead();
            }
        }
    }

    /// <summary>Synchronous read.</summary>
    public T Read<T>(Func<IGuestInstance, T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return Wait(ReadAsync(g => ValueTask.FromResult(work(g)), cancellationToken));
    }

    /// <summary>Runs <paramref name="work"/> on the leader, alone; commits if it returns, rolls back if it throws or traps.</summary>
    /// <exception cref="WasmTrapException">The guest trapped (rolled back).</exception>
    public async ValueTask<T> WriteAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);

        try
        {
            T result;
            try
            {
                result = await work(_leader).ConfigureAwait(false);
            }
            catch
            {
                RollbackUnsynchronized();
                throw;
            }

            CommitUnsynchronized();
            return result;
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

    /// <summary>Synchronous write.</summary>
    public T Write<T>(Func<IGuestInstance, T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return Wait(WriteAsync(g => ValueTask.FromResult(work(g)), cancellationToken));
    }

    /// <summary>Blocks on a transaction; no Task is allocated when it already completed (the uncontended case).</summary>
    private static T Wait<T>(ValueTask<T> pending) =>
        pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();

    private void CommitUnsynchronized()
    {
        long start = Stopwatch.GetTimestamp();
        CommitResult result = _strategy.Commit();
        _committedGlobals = _leader.CaptureGlobals();
        foreach (PooledReplica replica in _replicas)
        {
            replica.Instance.RefreshMemorySize();
            replica.Instance.RestoreGlobals(_committedGlobals);
        }

        _metrics.Commits.Add(1, in _tags);
        _metrics.DirtyPages.Record(result.DirtyPages, in _tags);
        _metrics.CommitDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds, in _tags);
    }

    private void RollbackUnsynchronized()
    {
        _strategy.Rollback();
        _leader.RefreshMemorySize();
        _leader.RestoreGlobals(_committedGlobals);
        _leader.Wasi?.ClearOutput();
        _metrics.Rollbacks.Add(1, in _tags);
    }

    /// <summary>
    /// Resets a replica after a read and returns it to the idle set. If the reset fails, the replica's state is
    /// unknown: it is disposed and replaced by a fresh clone of the leader (the gate's read side keeps writes out,
    /// so the leader holds the committed state), and the reset's error is rethrown to this read's caller. If no
    /// replacement can be made either, the pool has one replica fewer; with none left, waiting reads fail.
    /// </summary>
    private void ResetOrReplace(PooledReplica replica)
    {
        try
        {
            Reset(replica);
            _idle.Writer.TryWrite(replica);
            return;
        }
        catch (Exception resetError)
        {
            lock (_replicas)
            {
                _replicas.Remove(replica);
                replica.Instance.Dispose();
                try
                {
                    var fresh = new PooledReplica(_strategy.CreateReplica(), _leader);
                    fresh.Instance.RestoreGlobals(_committedGlobals);
                    _replicas.Add(fresh);
                    _idle.Writer.TryWrite(fresh);
                }
                catch (Exception replaceError)
                {
                    var error = new InvalidOperationException(
                        $"A replica's reset failed and no replacement could be created; the pool now has {_replicas.Count} replica(s).",
                        new AggregateException(resetError, replaceError));
                    if (_replicas.Count == 0)
                    {
                        _idle.Writer.TryComplete(error);
                    }

                    throw error;
                }
            }

            throw;
        }
    }

    private void Reset(PooledReplica replica)
    {
        long start = Stopwatch.GetTimestamp();
        _strategy.ResetReplica(replica.Memory.Replica);
        replica.Instance.RefreshMemorySize();
        replica.Instance.RestoreGlobals(_committedGlobals);
        replica.Instance.Wasi?.ClearOutput();
        _metrics.ResetDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds, in _tags);
    }

    /// <summary>The token waits observe: the caller's and disposal. No allocation when the caller's cannot cancel.</summary>
    private CancellationTokenSource? Link(CancellationToken cancellationToken, out CancellationToken token)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
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
        DisposeInstances();
        _metrics.Dispose();
        _disposing.Dispose();
    }

    /// <summary>Synchronous form of <see cref="DisposeAsync"/>.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private void DisposeInstances()
    {
        lock (_replicas)
        {
            foreach (PooledReplica replica in _replicas)
            {
                replica.Instance.Dispose(); // disposes its ReplicaMemory and so the replica
            }

            _replicas.Clear();
        }

        _leader.Dispose(); // disposes the LeaderMemory: strategy, base, leader view
    }

    private sealed class PooledReplica
    {
        public PooledReplica(Replica replica, IGuestInstance leader)
        {
            Memory = new ReplicaMemory(replica);
            try
            {
                Instance = leader.Clone(Memory);
            }
            catch
            {
                Memory.Dispose();
                throw;
            }
        }

        public ReplicaMemory Memory { get; }

        public IGuestInstance Instance { get; }
    }
}
