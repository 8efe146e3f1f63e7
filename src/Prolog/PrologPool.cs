using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Pool.Log;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Prolog;

/// <summary>
/// A pool of Trealla interpreters: program changes (consult, assert, retract, any goal run as a write) are write
/// transactions on the leader; queries are read transactions on replicas, each starting from the committed program.
/// </summary>
/// <remarks>
/// <para><b>Transactions:</b> a write goal that succeeds or fails commits (Prolog keeps side effects of a failed
/// goal, and so do we); one that raises a Prolog error, traps or throws rolls back: the clause is not added, and
/// <see cref="PrologException"/> (or the trap) propagates. Whatever a query does — even <c>assertz</c> — is gone
/// after it.</para>
/// <para><b>Thread-safety:</b> every member is thread-safe, as <see cref="GuestPool"/>'s. The interpreters handed to
/// <see cref="ReadAsync{T}(Func{PrologInterpreter, T}, CancellationToken)"/>/<see cref="WriteAsync{T}(Func{PrologInterpreter, T}, CancellationToken)"/> are valid only inside the delegate.</para>
/// </remarks>
public sealed class PrologPool : IDisposable, IAsyncDisposable
{
    private readonly GuestPool _pool;
    private readonly uint _handle;
    private readonly CommitLog? _log; // owned when the pool was opened durable: disposed after the pool
    private readonly string? _durableSnapshot; // the snapshot a durable pool starts from: saving it truncates the log
    private AutomaticSnapshots? _automatic;

    private PrologPool(GuestPool pool, uint handle, CommitLog? log = null, string? durableSnapshot = null)
    {
        _pool = pool;
        _handle = handle;
        _log = log;
        _durableSnapshot = durableSnapshot is null ? null : Path.GetFullPath(durableSnapshot);
    }

    /// <summary>
    /// Opens a durable pool: the newest state is the snapshot at <paramref name="snapshotPath"/> (when it exists) plus
    /// every commit in the commit log in <paramref name="logDirectory"/> after it, and every later write is durable in
    /// that log before it returns (<see cref="GuestPool.AttachLogAsync"/>). A fresh start logs the interpreter's set-up
    /// as commit 1, so a start from the log alone replays it instead of running it again. Saving the snapshot to
    /// <paramref name="snapshotPath"/> (by <see cref="SaveSnapshotAsync"/>, or every <paramref name="snapshotEvery"/>
    /// commits in the background) deletes the log segments it covers; a snapshot saved elsewhere leaves the log alone.
    /// The pool owns the log.
    /// </summary>
    /// <param name="module">A Trealla module. Not owned.</param>
    /// <param name="logDirectory">The commit log's directory (created 0700 if missing).</param>
    /// <param name="snapshotPath">The snapshot to start from, if it exists.</param>
    /// <param name="options">Pool options; default <see cref="DefaultOptions"/>.</param>
    /// <param name="tornTail">Told when the log's last record was torn by a crash and cut off (file, offset, reason).</param>
    /// <param name="cancellationToken">Cancels the replay.</param>
    /// <param name="snapshotEvery">Save the snapshot to <paramref name="snapshotPath"/> in the background after this many
    /// commits since the last (0: only when asked), so the log and the next start-up's replay stay short.</param>
    /// <exception cref="CommitLogFormatException">The log is damaged (file and offset named) or of another module.</exception>
    /// <exception cref="InvalidOperationException">The log is missing commits the snapshot has.</exception>
    /// <exception cref="CommitHistoryException">The log belongs to another history than the snapshot.</exception>
    public static async Task<PrologPool> OpenDurableAsync(IGuestModule module, string logDirectory, string? snapshotPath = null,
        PoolOptions? options = null, Action<string, long, string>? tornTail = null, CancellationToken cancellationToken = default,
        long snapshotEvery = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(snapshotEvery);
        if (snapshotEvery > 0 && snapshotPath is null)
        {
            throw new ArgumentException("Automatic snapshots need a snapshot path.", nameof(snapshotEvery));
        }

        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(logDirectory);
        options ??= DefaultOptions;
        Linker linker = TreallaGuest.CreateLinker(module.Info);
        GuestPool pool = snapshotPath is not null && File.Exists(snapshotPath)
            ? GuestPool.CreateFromSnapshot(module, linker, snapshotPath, options)
            : GuestPool.Create(module, linker, options);
        CommitLog? log = null;
        try
        {
            log = CommitLog.Open(logDirectory, PoolSnapshot.ModuleHashOf(module), emptyAfter: pool.CommitSequence, tornTail: tornTail);
            await pool.ReplayAsync(log, cancellationToken).ConfigureAwait(false);
            await pool.AttachLogAsync(log, cancellationToken).ConfigureAwait(false);
            uint handle = pool.CommitSequence == 0
                ? pool.Write(guest => PrologInterpreter.Initialize(guest).Handle, cancellationToken) // logged as commit 1
                : pool.Read(guest => PrologInterpreter.Initialize(guest).Handle); // the interpreter exists: pl_global returns it
            var prolog = new PrologPool(pool, handle, log, snapshotPath);
            if (snapshotEvery > 0)
            {
                prolog._automatic = new AutomaticSnapshots(prolog, snapshotPath!, snapshotEvery);
                await pool.AddListenerAsync(prolog._automatic, cancellationToken).ConfigureAwait(false);
            }

            return prolog;
        }
        catch
        {
            await pool.DisposeAsync().ConfigureAwait(false);
            log?.Dispose();
            throw;
        }
    }

    /// <summary>The last automatic snapshot's failure (it is tried again after as many commits), or null.</summary>
    public Exception? AutomaticSnapshotFault => _automatic?.Fault;

    /// <summary>
    /// Saves the durable snapshot every N commits: a commit listener that, in phase 2, starts one background save when N
    /// commits have passed since the last and none is running (the save waits for the write gate like a write).
    /// </summary>
    private sealed class AutomaticSnapshots(PrologPool pool, string path, long every) : ICommitListener
    {
        private long _last = pool._pool.CommitSequence;
        private Task _saving = Task.CompletedTask;

        public Exception? Fault { get; private set; }

        public bool NeedsPages => false;

        public ValueTask AfterBaseWrite(CommitRecord record)
        {
            if (record.Sequence - _last >= every && _saving.IsCompleted)
            {
                _last = record.Sequence; // not due again for N commits, even if this one fails
                _saving = Task.Run(async () =>
                {
                    try
                    {
                        await pool.SaveSnapshotAsync(path).ConfigureAwait(false);
                        Fault = null;
                    }
                    catch (Exception e) when (e is not ObjectDisposedException)
                    {
                        Fault = e;
                    }
                    catch (ObjectDisposedException)
                    {
                        // The pool closed first.
                    }
                });
            }

            return ValueTask.CompletedTask;
        }

        public Task Saving => _saving;
    }

    /// <summary>Creates the pool and sets up the interpreter on the leader (committed before any read).</summary>
    /// <param name="module">A Trealla module, e.g. from <see cref="TreallaGuest.LoadAsync(IProgress{string}?, CancellationToken)"/>. Not owned.</param>
    /// <param name="options">Pool options; default <see cref="DefaultOptions"/>.</param>
    public static PrologPool Create(IGuestModule module, PoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        options ??= DefaultOptions;
        GuestPool pool = GuestPool.Create(module, TreallaGuest.CreateLinker(module.Info), options);
        try
        {
            uint handle = pool.Write(guest => PrologInterpreter.Initialize(guest).Handle);
            return new PrologPool(pool, handle);
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates a pool from a snapshot saved by <see cref="SaveSnapshotAsync"/> (in this process or another): the
    /// consulted program and asserted clauses are there, nothing is re-consulted, and nothing is copied until the
    /// first write (see <see cref="GuestPool.CreateFromSnapshot"/>).
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="SnapshotFormatException">Not a usable snapshot of this module.</exception>
    public static PrologPool CreateFromSnapshot(IGuestModule module, string path, PoolOptions? options = null, bool verifyData = false)
    {
        ArgumentNullException.ThrowIfNull(module);
        GuestPool pool = GuestPool.CreateFromSnapshot(module, TreallaGuest.CreateLinker(module.Info), path, options ?? DefaultOptions, verifyData);
        try
        {
            // The interpreter already exists in the snapshot's memory; pl_global returns it. Asking on a replica
            // (a read) keeps the snapshot mapped: a write would copy it up.
            uint handle = pool.Read(guest => PrologInterpreter.Initialize(guest).Handle);
            return new PrologPool(pool, handle);
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Saves the committed state (program, clauses, interpreter) to <paramref name="path"/> atomically and durably;
    /// returns its commit sequence. A pool opened durable (<see cref="OpenDurableAsync"/>) then deletes the log
    /// segments the snapshot covers — only when <paramref name="path"/> is the snapshot it starts from (a start-up from
    /// that older file would otherwise miss the commits in between).
    /// </summary>
    public async ValueTask<long> SaveSnapshotAsync(string path, CancellationToken cancellationToken = default)
    {
        long sequence = await _pool.SaveSnapshotAsync(path, cancellationToken).ConfigureAwait(false);
        if (_log is not null && _durableSnapshot is not null && Path.GetFullPath(path) == _durableSnapshot)
        {
            _log.DeleteThrough(sequence);
        }

        return sequence;
    }

    /// <summary>
    /// SharedBase, <see cref="ReadIsolation.PerRead"/>, one replica per core, with the store-barrier tracker on the
    /// leader and the replicas, both keeping their pages resident, and content-aware sync. A Trealla <c>test(X)</c>
    /// writes 71 pages (the barrier reports exactly those; value-aware <c>memory.fill</c> leaves out the 1,370 its
    /// memsets would rewrite with zeros) and changes about 16: kept-resident pages take no faults on the next read,
    /// and the reset copies back only the pages that differ from the base; an <c>assertz</c> commit writes and
    /// sends only the pages it changed.
    /// </summary>
    /// <remarks>
    /// Chosen by measurement, <c>dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll trealla-configs 60</c>, 2 cores,
    /// 2026-11-23 (docs/results/trealla-configs.md): 100 concurrent <c>test(X)</c> on 2 replicas 27.97 ms a round,
    /// 1.82× one interpreter behind a lock — the fastest of eight PerRead candidates (the previous defaults, CoW-file
    /// replicas: 36.85 ms, 1.39×; uffd replicas: 0.36×; madvise resets: 0.31×); <c>assertz</c> + commit 543 µs with
    /// 2 replicas and 568 µs with 16 (previous defaults: 926 / 1,661 µs).
    /// </remarks>
    public static PoolOptions DefaultOptions => new()
    {
        Sync = new SyncOptions
        {
            Strategy = SyncStrategyKind.SharedBase,
            LeaderTracker = TrackerKind.StoreBarrier,
            LeaderReset = LeaderResetMode.KeepResident,
            ReplicaTracker = TrackerKind.StoreBarrier,
            ResetMode = ReplicaResetMode.KeepResident,
            SkipUnchangedPages = true,
        },
        Instance = TreallaGuest.DefaultInstanceOptions,
    };

    /// <summary>
    /// Serves the committed knowledge base to <see cref="PrologFollower"/>s in other processes on this host, through a
    /// Unix socket at <paramref name="socketPath"/> (<see cref="GuestPool.ServeFollowersAsync"/>).
    /// </summary>
    public ValueTask<CowWasm.Memory.Sharing.FollowerHub> ServeFollowersAsync(string socketPath,
        CowWasm.Memory.Sharing.FollowerHubOptions? options = null, CancellationToken cancellationToken = default) =>
        _pool.ServeFollowersAsync(socketPath, options, cancellationToken);

    /// <summary>
    /// The largest answer copied out of a guest (<see cref="PrologInterpreter.MaxAnswerBytes"/>) for the queries and
    /// writes this pool runs; default <see cref="PrologInterpreter.DefaultMaxAnswerBytes"/>. Thread-safe to change.
    /// </summary>
    public int MaxAnswerBytes
    {
        get => Volatile.Read(ref _maxAnswerBytes);
        set => Volatile.Write(ref _maxAnswerBytes, value >= 64 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "At least 64 bytes."));
    }

    private int _maxAnswerBytes = PrologInterpreter.DefaultMaxAnswerBytes;

    private PrologInterpreter Driver(IGuestInstance guest) => PrologInterpreter.Attach(guest, _handle, MaxAnswerBytes);

    /// <summary>The underlying guest pool (strategy, metrics, options).</summary>
    public GuestPool Pool => _pool;

    /// <summary>Loads program text in a write transaction.</summary>
    /// <exception cref="PrologException">Loading raised an error (rolled back).</exception>
    public ValueTask ConsultAsync(string programText, string module = "user", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(programText);
        return Discard(WriteAsync(p =>
        {
            p.Consult(programText, module);
            return true;
        }, cancellationToken));
    }

    /// <summary>Runs <paramref name="goal"/> in a write transaction and returns its first answer.</summary>
    /// <exception cref="PrologException">The goal raised an error (rolled back).</exception>
    /// <exception cref="TimeoutException">It ran past <see cref="PoolOptions.TransactionTimeout"/> (interrupted, rolled back).</exception>
    public ValueTask<PrologAnswer> ExecuteAsync(string goal, CancellationToken cancellationToken = default) =>
        ExecuteAsync(goal, _pool.Options.TransactionTimeout, cancellationToken);

    /// <summary>Runs <paramref name="goal"/> in a write transaction of at most <paramref name="timeout"/>.</summary>
    /// <inheritdoc cref="ExecuteAsync(string, CancellationToken)"/>
    public ValueTask<PrologAnswer> ExecuteAsync(string goal, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        return WriteAsync(p => p.QueryOnce(goal).ThrowIfError(), timeout, cancellationToken);
    }

    /// <summary>Adds <paramref name="clause"/> (e.g. <c>fact(1)</c> or <c>h(X) :- b(X)</c>) at the end of its predicate.</summary>
    /// <exception cref="PrologException">The clause is invalid (rolled back: nothing added).</exception>
    public ValueTask AssertAsync(string clause, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clause);
        return Discard(ExecuteAsync($"assertz(({clause}))", cancellationToken));
    }

    /// <summary>Removes the first clause unifying with <paramref name="clause"/>; false if there was none.</summary>
    public async ValueTask<bool> RetractAsync(string clause, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clause);
        return (await ExecuteAsync($"retract(({clause}))", cancellationToken).ConfigureAwait(false)).IsSuccess;
    }

    /// <summary>The first answer of <paramref name="goal"/> on a replica (errors are answers here, not exceptions).</summary>
    /// <exception cref="TimeoutException">It ran past <see cref="PoolOptions.TransactionTimeout"/> (the guest was
    /// interrupted; the replica is reset and serves the next query).</exception>
    public ValueTask<PrologAnswer> QueryOnceAsync(string goal, CancellationToken cancellationToken = default) =>
        QueryOnceAsync(goal, _pool.Options.TransactionTimeout, cancellationToken);

    /// <summary>The first answer of <paramref name="goal"/>, computed in at most <paramref name="timeout"/>.</summary>
    /// <inheritdoc cref="QueryOnceAsync(string, CancellationToken)"/>
    public ValueTask<PrologAnswer> QueryOnceAsync(string goal, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        return ReadAsync(p => p.QueryOnce(goal), timeout, cancellationToken);
    }

    /// <summary>The default cap on the solutions <see cref="QueryAllAsync(string, int, CancellationToken)"/> collects (10,000).</summary>
    public const int DefaultMaxSolutions = 10_000;

    /// <summary>Up to <paramref name="maxSolutions"/> solutions of <paramref name="goal"/> on a replica, in order
    /// (an error ends the list as its last item). A goal with more solutions, even infinitely many
    /// (<c>between(1, inf, X)</c>), stops at the cap and says so (<see cref="PrologAnswers.LimitReached"/>); the token is
    /// checked between solutions.</summary>
    public ValueTask<PrologAnswers> QueryAllAsync(string goal, int maxSolutions = DefaultMaxSolutions,
        CancellationToken cancellationToken = default) =>
        QueryAllAsync(goal, maxSolutions, _pool.Options.TransactionTimeout, cancellationToken);

    /// <summary>Up to <paramref name="maxSolutions"/> solutions of <paramref name="goal"/>, all found within <paramref name="timeout"/>.</summary>
    /// <exception cref="TimeoutException">Finding them ran past the timeout (the guest was interrupted; the replica is reset).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (between solutions, or by interrupting the guest).</exception>
    public ValueTask<PrologAnswers> QueryAllAsync(string goal, int maxSolutions, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSolutions);
        return ReadAsync(p =>
        {
            var answers = new List<PrologAnswer>();
            foreach (PrologAnswer answer in p.Query(goal)) // disposing the enumeration closes the query
            {
                answers.Add(answer);
                if (answers.Count == maxSolutions)
                {
                    break;
                }

                cancellationToken.ThrowIfCancellationRequested();
            }

            return new PrologAnswers(answers, maxSolutions);
        }, timeout, cancellationToken);
    }

    /// <summary>
    /// Streams up to <paramref name="maxSolutions"/> solutions of <paramref name="goal"/> to <paramref name="onAnswer"/> as
    /// the guest finds them, on one replica for the whole enumeration (an error ends it as its last item, as in
    /// <see cref="QueryAllAsync(string, int, TimeSpan, CancellationToken)"/>). The next solution is computed only after
    /// <paramref name="onAnswer"/> completed, so a slow consumer holds the replica — and the timeout still runs. Returns
    /// how many answers were passed on.
    /// </summary>
    /// <exception cref="TimeoutException">Finding them ran past the timeout (the guest was interrupted; the replica is reset).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (between solutions, or by interrupting the guest).</exception>
    public ValueTask<int> QueryEachAsync(string goal, int maxSolutions, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        ArgumentNullException.ThrowIfNull(onAnswer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSolutions);
        return _pool.ReadAsync(guest => Driver(guest).QueryEachAsync(goal, maxSolutions, onAnswer, cancellationToken),
            timeout, cancellationToken);
    }

    /// <summary>Runs <paramref name="work"/> against an interpreter on a replica holding the committed state.</summary>
    public ValueTask<T> ReadAsync<T>(Func<PrologInterpreter, T> work, CancellationToken cancellationToken = default) =>
        ReadAsync(work, _pool.Options.TransactionTimeout, cancellationToken);

    /// <summary>Runs <paramref name="work"/> on a replica for at most <paramref name="timeout"/> (<see cref="GuestPool.ReadAsync{T}(Func{IGuestInstance, ValueTask{T}}, TimeSpan, CancellationToken)"/>).</summary>
    public ValueTask<T> ReadAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return _pool.ReadAsync(guest => ValueTask.FromResult(work(Driver(guest))), timeout, cancellationToken);
    }

    /// <summary>Runs <paramref name="work"/> against the leader's interpreter; commits if it returns, rolls back if it throws.</summary>
    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, CancellationToken cancellationToken = default) =>
        WriteAsync(work, _pool.Options.TransactionTimeout, cancellationToken);

    /// <summary>Runs <paramref name="work"/> on the leader for at most <paramref name="timeout"/> (<see cref="GuestPool.WriteAsync{T}(Func{IGuestInstance, ValueTask{T}}, TimeSpan, CancellationToken)"/>).</summary>
    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return _pool.WriteAsync(guest => ValueTask.FromResult(work(Driver(guest))), timeout, cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_automatic is not null)
        {
            await _automatic.Saving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // a save in flight finishes first
        }

        await _pool.DisposeAsync().ConfigureAwait(false);
        _log?.Dispose();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _pool.Dispose();
        _log?.Dispose();
    }

    private static async ValueTask Discard<T>(ValueTask<T> pending) => await pending.ConfigureAwait(false);
}
