using System.Globalization;
using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Runtime;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;
using NATS.Client.ObjectStore.Models;

namespace CowWasm.Replication;

/// <summary>
/// A read-only pool on another host that follows a leader through NATS JetStream (<see cref="CommitPublisher"/>): it
/// starts from the newest snapshot in the object store (or from instantiation when there is none), replays the stream
/// from that snapshot's commit, and applies each delta to its own memfd base in order, as one write transaction.
/// Reads are served by its own replicas; each reports the commit it saw.
/// </summary>
/// <remarks>
/// <para><b>Exactly once, in order:</b> a commit at or below the applied one is skipped (a retry JetStream stored
/// twice, or history before the snapshot); the next one is applied; anything else — a gap, a chunk out of order, a
/// checksum mismatch, a delta of another module or one that does not fit the module — stops the follower with a
/// <see cref="ReplicationException"/> (<see cref="Completion"/>, and every later read) instead of diverging.</para>
/// <para>Thread-safety: every member is thread-safe; reads run in parallel, one per replica.</para>
/// </remarks>
public sealed class CommitFollower : IReadOnlyPool
{
    private readonly GuestPool _pool;
    private readonly INatsJSConsumer _consumer;
    private readonly StreamApplier _applier;
    private readonly int _pullBytes;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SequenceWaiters _waiters;
    private Task _loop = Task.CompletedTask;
    private Exception? _fault;
    private int _disposed;

    private CommitFollower(GuestPool pool, INatsJSConsumer consumer, long snapshotSequence, long maxPayload)
    {
        _pullBytes = StreamApplier.PullBytes(maxPayload);
        _pool = pool;
        _consumer = consumer;
        SnapshotSequence = snapshotSequence;
        _applier = new StreamApplier(pool);
        _waiters = new SequenceWaiters(() => _pool.CommitSequence, (sequence, applied) => _completion.Task.IsCompleted
            ? new ReplicationException(sequence, $"The follower stopped at commit {applied}, before commit {sequence}.", Volatile.Read(ref _fault))
            : null);
    }

    /// <summary>The commit the follower's state is at.</summary>
    public long Sequence => _pool.CommitSequence;

    /// <inheritdoc/>
    public int ReplicaCount => _pool.Options.ReplicaCount;

    /// <summary>The commit of the snapshot the follower started from (0: it replayed from instantiation).</summary>
    public long SnapshotSequence { get; }

    /// <summary>Completes when the follower stops: faulted with a <see cref="ReplicationException"/> when it could not go on.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Raised on the follower's loop after each applied commit, with its sequence. Keep handlers short.</summary>
    public event Action<long>? Applied;

    /// <summary>The pool the follower applies into (reads only: a write here would diverge from the leader).</summary>
    internal GuestPool Pool => _pool;

    /// <summary>
    /// Loads the newest snapshot (verifying its digest and every page) into a new pool of <paramref name="module"/>, then
    /// follows the stream from it.
    /// </summary>
    /// <exception cref="ReplicationException">No stream of that name, or the snapshot is of another module or damaged.</exception>
    public static async Task<CommitFollower> StartAsync(IGuestModule module, Linker linker, INatsConnection nats,
        ReplicationOptions options, PoolOptions? poolOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(linker);
        ArgumentNullException.ThrowIfNull(nats);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        await nats.ConnectAsync().ConfigureAwait(false);
        var js = new NatsJSContext(nats);
        try
        {
            await Transient.RetryAsync(async ct => await js.GetStreamAsync(options.StreamName, cancellationToken: ct).ConfigureAwait(false),
                options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            throw new ReplicationException($"There is no stream {options.StreamName}: no leader has published under the name '{options.Name}'.", e);
        }

        (GuestPool pool, long snapshot, ulong streamStart) = await LoadAsync(module, linker, js, options, poolOptions, cancellationToken)
            .ConfigureAwait(false);
        try
        {
            var consumerOptions = new NatsJSOrderedConsumerOpts
            {
                FilterSubjects = [options.Subject],
                DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
                OptStartSeq = streamStart,
            };
            INatsJSConsumer consumer = await Transient.RetryAsync(
                async ct => await js.CreateOrderedConsumerAsync(options.StreamName, consumerOptions, ct).ConfigureAwait(false),
                options.RetryTimeout, cancellationToken).ConfigureAwait(false);
            var follower = new CommitFollower(pool, consumer, snapshot, nats.ServerInfo?.MaxPayload ?? 1 << 20);
            follower._loop = Task.Run(follower.RunAsync, CancellationToken.None);
            return follower;
        }
        catch
        {
            await pool.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<(GuestPool Pool, long Sequence, ulong StreamStart)> LoadAsync(IGuestModule module, Linker linker,
        NatsJSContext js, ReplicationOptions options, PoolOptions? poolOptions, CancellationToken cancellationToken)
    {
        INatsObjStore store;
        try
        {
            store = await Transient.RetryAsync(async ct => await new NatsObjContext(js).GetObjectStoreAsync(options.Bucket, ct).ConfigureAwait(false),
                options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return (GuestPool.Create(module, linker, poolOptions), 0, 1); // no snapshot ever: replay from instantiation
        }

        string path = Path.Combine(Path.GetTempPath(), $"cowwasm-{options.Name}-{Guid.NewGuid():N}.snap");
        try
        {
            ObjectMetadata metadata;
            FileStream file = CreateDownload(path);
            await using (file.ConfigureAwait(false))
            {
                try
                {
                    // The object store checks the download against its SHA-256 digest.
                    metadata = await Transient.RetryAsync(async ct =>
                    {
                        file.SetLength(0); // a retry starts the download over
                        return await store.GetAsync(ReplicationOptions.SnapshotObject, file, leaveOpen: true, ct).ConfigureAwait(false);
                    }, options.RetryTimeout, cancellationToken).ConfigureAwait(false);
                }
                catch (NatsObjNotFoundException)
                {
                    return (GuestPool.Create(module, linker, poolOptions), 0, 1);
                }
                catch (NatsObjException e)
                {
                    throw new ReplicationException($"The snapshot in bucket {options.Bucket} could not be read: {e.Message}", e);
                }
            }

            string expected = Convert.ToHexStringLower(PoolSnapshot.ModuleHashOf(module));
            Dictionary<string, string> meta = metadata.Metadata ?? [];
            if (!meta.TryGetValue(SnapshotInfo.ModuleKey, out string? snapshotModule) || snapshotModule != expected)
            {
                throw new ReplicationException(
                    $"The snapshot in bucket {options.Bucket} is of module {snapshotModule?[..Math.Min(16, snapshotModule.Length)] ?? "(none)"}…, " +
                    $"not of the module this follower runs ({expected[..16]}…).");
            }

            if (!SnapshotInfo.TryRead(metadata, out _, out ulong streamStart))
            {
                throw new ReplicationException(
                    $"The snapshot in bucket {options.Bucket} has no valid {SnapshotInfo.SequenceKey} or {SnapshotInfo.StreamStartKey}.");
            }

            GuestPool pool;
            try
            {
                pool = GuestPool.CreateFromSnapshot(module, linker, path, poolOptions, verifyData: true);
            }
            catch (SnapshotFormatException e)
            {
                throw new ReplicationException($"The snapshot in bucket {options.Bucket} is unusable: {e.Message}", e);
            }

            return (pool, pool.CommitSequence, streamStart);
        }
        finally
        {
            File.Delete(path); // the pool maps it privately; the mapping outlives the name
        }
    }

    private async Task RunAsync()
    {
        try
        {
            NatsJSConsumeOpts pull = StreamApplier.Pull(_pullBytes);
            await foreach (INatsJSMsg<byte[]> message in _consumer.ConsumeAsync<byte[]>(opts: pull, cancellationToken: _stop.Token).ConfigureAwait(false))
            {
                await HandleAsync(message).ConfigureAwait(false);
            }

            if (!_stop.IsCancellationRequested)
            {
                throw new ReplicationException(_pool.CommitSequence + 1, "JetStream ended the follower's consumer; it stops here.");
            }

            _completion.TrySetResult();
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            _completion.TrySetResult();
        }
        catch (Exception e)
        {
            Exception cause = e as ReplicationException
                ?? new ReplicationException(_pool.CommitSequence + 1, $"The follower stopped after commit {_pool.CommitSequence}: {e.Message}", e);
            Volatile.Write(ref _fault, cause);
            _completion.TrySetException(cause);
        }
        finally
        {
            _waiters.Release();
        }
    }

    private async Task HandleAsync(INatsJSMsg<byte[]> message)
    {
        if (await _applier.HandleAsync(message, _stop.Token).ConfigureAwait(false) is { } applied)
        {
            Applied?.Invoke(applied);
            _waiters.Release();
        }
    }

    /// <summary>Runs <paramref name="work"/> on a replica holding one committed state, and says which commit.</summary>
    /// <exception cref="ReplicationException">The follower stopped (its cause is the inner exception).</exception>
    public async ValueTask<FollowerRead<T>> ReadAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        ThrowIfStopped();
        long sequence = 0;
        T result = await _pool.ReadAsync(async guest =>
        {
            sequence = _pool.CommitSequence; // commits wait for reads: this is the state the read sees
            return await work(guest).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        return new FollowerRead<T>(result, sequence);
    }

    /// <summary>Completes once commit <paramref name="sequence"/> is applied.</summary>
    /// <exception cref="ReplicationException">The follower stopped before that.</exception>
    public Task WaitForAsync(long sequence, CancellationToken cancellationToken = default) => _waiters.WaitAsync(sequence, cancellationToken);

    private void ThrowIfStopped()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _fault) is { } fault)
        {
            throw new ReplicationException(_pool.CommitSequence,
                $"The follower stopped at commit {_pool.CommitSequence} and serves no reads: {fault.Message}", fault);
        }
    }

    /// <summary>Stops following, waits for reads in flight, and frees the pool.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _waiters.Release();
        await _pool.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>
    /// The file a snapshot is downloaded into: new, and the user's alone (0600), like every snapshot — the knowledge base
    /// is not for the other users of the temp directory.
    /// </summary>
    internal static FileStream CreateDownload(string path)
    {
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows()) // always true here (Linux only); the guard satisfies the platform analyzer
        {
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return new FileStream(path, create);
    }
}
