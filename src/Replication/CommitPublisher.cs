using System.Globalization;
using System.Threading.Channels;
using CowWasm.Pool;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;
using NATS.Client.ObjectStore.Models;

namespace CowWasm.Replication;

/// <summary>
/// Publishes a leader <see cref="GuestPool"/>'s commits to a NATS JetStream stream, one delta per commit (its changed
/// pages, Brotli-compressed when that pays, checksummed, chunked under the server's message size), and its snapshots to a
/// JetStream object store, so that <see cref="CommitFollower"/>s on other hosts can replay them. See docs/followers.md.
/// </summary>
/// <remarks>
/// <para><b>Ordering and durability:</b> a commit is copied out on the committing thread and published in order in the
/// background; <see cref="PublishedSequence"/> is the last commit JetStream acknowledged (with <see cref="ReplicationOptions.Replicas"/>
/// = 3, stored on a majority). Retries carry the same message ids, so JetStream stores each chunk once.</para>
/// <para><b>One writer:</b> every publish expects the stream's last message to be its own previous one, so a second
/// leader publishing to the same stream makes one of them fail instead of interleaving histories.</para>
/// <para><b>Failure:</b> if a message cannot be stored within <see cref="ReplicationOptions.RetryTimeout"/>, or the
/// leader runs <see cref="ReplicationOptions.MaxPendingCommits"/> ahead for that long, the publisher stops
/// (<see cref="Completion"/> faults) and the pool's later commits are refused with a <see cref="ReplicationException"/>,
/// rolled back: the leader never commits what its followers can never see.</para>
/// <para>Thread-safety: every member is thread-safe. Dispose detaches from the pool and publishes what is pending.</para>
/// </remarks>
public sealed class CommitPublisher : ICommitListener, IAsyncDisposable
{
    private readonly GuestPool _pool;
    private readonly NatsJSContext _js;
    private readonly INatsObjStore _snapshots;
    private readonly ReplicationOptions _options;
    private readonly byte[] _moduleHash;
    private readonly int _chunkBytes;
    private readonly string _epoch = Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.NextInt64()));
    private readonly Channel<CommitRecord> _queue = Channel.CreateUnbounded<CommitRecord>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly SemaphoreSlim _room;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SequenceWaiters _waiters;
    private Task _loop = Task.CompletedTask;
    private bool _holdsRoom;
    private long _heldBytes; // bytes the room held by this commit (or a rolled-back one) counts
    private long _pendingBytes; // guarded by _bytesLock
    private readonly object _bytesLock = new();
    private readonly Dictionary<long, long> _recordBytes = []; // commit → bytes it holds of the budget; guarded by _bytesLock
    private ulong _previousSnapshotStart; // the stream position of the snapshot before the newest: purged below
    private ulong _lastStreamSequence;
    private long _published;
    private long _snapshotSequence;
    private Task _snapshotting = Task.CompletedTask;
    private Exception? _snapshotFault;
    private long _deltaBytes;
    private long _rawBytes;
    private long _commits;
    private Exception? _fault;
    private int _disposed;

    private CommitPublisher(GuestPool pool, NatsJSContext js, INatsObjStore snapshots, ReplicationOptions options, int chunkBytes)
    {
        _pool = pool;
        _js = js;
        _snapshots = snapshots;
        _options = options;
        _chunkBytes = chunkBytes;
        _moduleHash = PoolSnapshot.ModuleHashOf(pool.Module);
        _room = new SemaphoreSlim(options.MaxPendingCommits, options.MaxPendingCommits);
        _waiters = new SequenceWaiters(() => Volatile.Read(ref _published), (sequence, published) => _completion.Task.IsCompleted
            ? new ReplicationException(sequence, $"The publisher stopped at commit {published}, before commit {sequence}.",
                _completion.Task.Exception?.InnerException)
            : null);
    }

    /// <summary>The last commit JetStream acknowledged.</summary>
    public long PublishedSequence => Volatile.Read(ref _published);

    /// <summary>Commits published since start.</summary>
    public long CommitsPublished => Volatile.Read(ref _commits);

    /// <summary>Bytes of deltas published since start (what crossed the network, before NATS framing).</summary>
    public long DeltaBytesPublished => Volatile.Read(ref _deltaBytes);

    /// <summary>Bytes of page data those deltas carried before compression (patches of the changed pages, <see cref="PagePatches"/>).</summary>
    public long PageBytesPublished => Volatile.Read(ref _rawBytes);

    /// <summary>The commit of the last snapshot this publisher stored (0: none yet).</summary>
    public long SnapshotSequence => Volatile.Read(ref _snapshotSequence);

    /// <summary>Why the last automatic snapshot (<see cref="ReplicationOptions.SnapshotEvery"/>) failed, or null; the next
    /// one is tried <see cref="ReplicationOptions.SnapshotEvery"/> commits later.</summary>
    public Exception? SnapshotFault => Volatile.Read(ref _snapshotFault);

    /// <summary>Completes when the publisher stops: faulted with the cause if it could not go on.</summary>
    public Task Completion => _completion.Task;

    /// <summary>
    /// Creates (or reuses) the stream and the snapshot bucket, brings the pool up to the stream's last commit when the
    /// stream is ahead (a leader restarted from an older snapshot: it applies the later commits, each checked to follow the
    /// pool's history), refuses a pool whose commit at the stream's last sequence has another identity (a fork), and
    /// attaches to the pool. When the stream lacks the pool's history (a new
    /// stream for a pool loaded from a snapshot, or one that lost its tail), publishes a snapshot first so that
    /// followers have a place to start.
    /// </summary>
    /// <exception cref="ReplicationException">The stream's history differs from the pool's: its commit at the pool's sequence
    /// has another identity, or a later commit does not follow the pool's (a fork); or the stream's commits after the pool's
    /// cannot be read.</exception>
    /// <exception cref="InvalidOperationException">The pool already has a commit sink.</exception>
    public static async Task<CommitPublisher> StartAsync(GuestPool pool, INatsConnection nats, ReplicationOptions options,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(nats);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        await nats.ConnectAsync().ConfigureAwait(false);
        var js = new NatsJSContext(nats);
        var config = new StreamConfig(options.StreamName, [options.Subject])
        {
            Storage = StreamConfigStorage.File,
            NumReplicas = options.Replicas,
            DuplicateWindow = TimeSpan.FromMinutes(2),
            Description = "CowWasm commit deltas",
        };
        INatsJSStream stream = await Transient.RetryAsync(
            async ct => await js.CreateOrUpdateStreamAsync(config, ct).ConfigureAwait(false), options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        INatsObjStore snapshots = await Transient.RetryAsync(
            ct => OpenBucketAsync(new NatsObjContext(js), options, ct), options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        int chunkBytes = options.MaxChunkBytes > 0
            ? options.MaxChunkBytes
            : (int)Math.Max(1024, (nats.ServerInfo?.MaxPayload ?? 1 << 20) - 4096);

        (long logged, ulong lastStreamSequence, CommitId loggedId) = await Transient.RetryAsync(
            ct => LastCommitAsync(js, stream, options, ct), options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        if (logged > pool.CommitSequence)
        {
            // A leader restarted from an older state: take the stream's later commits first. Each must follow the pool's own
            // last commit, so a pool of another history is refused here rather than publishing a fork.
            await CatchUpAsync(pool, js, snapshots, options, logged, nats.ServerInfo?.MaxPayload ?? 1 << 20, cancellationToken).ConfigureAwait(false);
        }

        // A leader ahead of the stream (its commits reached the log, not JetStream, before it stopped) publishes them from
        // the log, after checking that the stream's last commit is one of its own.
        List<CommitRecord> missing = MissingFromStream(pool, logged);
        var publisher = new CommitPublisher(pool, js, snapshots, options, chunkBytes) { _lastStreamSequence = lastStreamSequence };
        (long start, CommitId head) = await pool.AddListenerAsync(publisher, cancellationToken).ConfigureAwait(false);
        long fromLog = missing.Count > 0 ? missing[^1].Sequence : logged;
        string? refusal = logged > start
            ? $"Stream {options.StreamName} already holds commit {logged}, but the pool is at commit {start}: publishing from an " +
              "older state would fork the history."
            : logged == start && logged > 0 && loggedId != head
                ? $"Stream {options.StreamName}'s commit {logged} is {loggedId}, but the pool's commit {start} is {head}: the pool's " +
                  "history forked from the stream's (a leader that wrote on its own after another took over), and publishing would " +
                  "give followers pages of another heap."
                : missing.Count > 0 && logged > 0 && missing[0].Parent != loggedId
                    ? $"Stream {options.StreamName}'s commit {logged} is {loggedId}, but the pool's log has commit {logged + 1} follow " +
                      $"{missing[0].Parent}: the pool's history forked from the stream's."
                    : fromLog != start && missing.Count > 0
                        ? $"The pool committed while its publisher started (commit {start}, the log read up to {fromLog}); start publishing before serving writes."
                        : null;
        if (refusal is not null)
        {
            await publisher.DisposeAsync().ConfigureAwait(false); // detaches: the pool commits as if it had never been attached
            throw new ReplicationException(logged, refusal + " Start the leader from the stream's history (its latest snapshot, " +
                "or a follower of the stream), or use a new replication name.");
        }

        publisher._published = logged;
        try
        {
            foreach (CommitRecord record in missing)
            {
                await publisher.PublishRecordAsync(record).ConfigureAwait(false);
            }
        }
        catch
        {
            await publisher.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        publisher._published = start;
        publisher._loop = Task.Run(publisher.RunAsync, CancellationToken.None);
        if (fromLog < start)
        {
            try
            {
                await publisher.PublishSnapshotAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await publisher.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        return publisher;
    }

    /// <summary>The commits after <paramref name="logged"/> that the pool's commit log holds, all of them or none.</summary>
    private static List<CommitRecord> MissingFromStream(GuestPool pool, long logged)
    {
        long until = pool.CommitSequence;
        if (logged >= until || pool.Log is not { } log)
        {
            return [];
        }

        var records = new List<CommitRecord>();
        foreach (CowWasm.Pool.Log.CommitLogEntry entry in log.ReadAfter(logged))
        {
            if (entry.Sequence > until)
            {
                break;
            }

            if (entry.Sequence != logged + 1 + records.Count)
            {
                return []; // the log no longer holds them all (a snapshot covered them): publish a snapshot instead
            }

            records.Add(pool.DecodeLogged(entry));
        }

        return records.Count == until - logged && records.TrueForAll(r => !r.Parent.IsUnknown) ? records : [];
    }

    private static async Task<INatsObjStore> OpenBucketAsync(NatsObjContext objects, ReplicationOptions options, CancellationToken cancellationToken)
    {
        try
        {
            return await objects.GetObjectStoreAsync(options.Bucket, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return await objects.CreateObjectStoreAsync(new NatsObjConfig(options.Bucket)
            {
                NumberOfReplicas = options.Replicas,
                Storage = NatsObjStorageType.File,
                Description = "CowWasm pool snapshots",
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Applies the stream's commits after the pool's, up to commit <paramref name="until"/>, reading from the bucket's
    /// snapshot when it is not newer than the pool (else from the stream's start).
    /// </summary>
    private static async Task CatchUpAsync(GuestPool pool, NatsJSContext js, INatsObjStore snapshots, ReplicationOptions options,
        long until, long maxPayload, CancellationToken cancellationToken)
    {
        ulong from = 1;
        try
        {
            ObjectMetadata info = await snapshots.GetInfoAsync(ReplicationOptions.SnapshotObject, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (SnapshotInfo.TryRead(info, out long snapshotSequence, out ulong streamStart) && snapshotSequence <= pool.CommitSequence)
            {
                from = streamStart;
            }
        }
        catch (NatsObjNotFoundException)
        {
            // No snapshot: read the stream from its start.
        }

        INatsJSConsumer consumer = await Transient.RetryAsync(async ct => await js.CreateOrderedConsumerAsync(options.StreamName,
            new NatsJSOrderedConsumerOpts
            {
                FilterSubjects = [options.Subject],
                DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
                OptStartSeq = from,
            }, ct).ConfigureAwait(false), options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        var applier = new StreamApplier(pool);
        await foreach (INatsJSMsg<byte[]> message in consumer.ConsumeAsync<byte[]>(opts: StreamApplier.Pull(StreamApplier.PullBytes(maxPayload)),
            cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            await applier.HandleAsync(message, cancellationToken).ConfigureAwait(false);
            if (pool.CommitSequence >= until)
            {
                return;
            }
        }
    }

    /// <summary>
    /// The last whole commit in the stream, the stream sequence of its last message, and the commit's identity (0, 0,
    /// genesis-unknown when empty).
    /// </summary>
    private static async Task<(long Commit, ulong StreamSequence, CommitId Id)> LastCommitAsync(NatsJSContext js, INatsJSStream stream,
        ReplicationOptions options, CancellationToken cancellationToken)
    {
        if (stream.Info.State.Messages == 0)
        {
            return (0, 0, CommitId.Unknown); // nothing on the subject (even if the stream once held messages): expect none
        }

        INatsJSConsumer last = await js.CreateOrderedConsumerAsync(options.StreamName, new NatsJSOrderedConsumerOpts
        {
            FilterSubjects = [options.Subject],
            DeliverPolicy = ConsumerConfigDeliverPolicy.Last,
        }, cancellationToken).ConfigureAwait(false);
        INatsJSMsg<byte[]>? message = await last.NextAsync<byte[]>(opts: new NatsJSNextOpts { Expires = TimeSpan.FromSeconds(10) },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        if (message is not { Metadata: { } metadata } m)
        {
            throw new ReplicationException($"Stream {options.StreamName} holds messages, but its last one could not be read.");
        }

        ChunkHeaders chunk = ChunkHeaders.Parse(m.Headers, metadata.Sequence.Stream);
        // A commit a crashed leader left half-published does not count: it is redone under a new epoch; its parent is the last.
        return chunk.IsLast
            ? (chunk.Sequence, metadata.Sequence.Stream, chunk.Id)
            : (chunk.Sequence - 1, metadata.Sequence.Stream, chunk.Parent);
    }

    void ICommitListener.BeforeBaseWrite(long sequence, IReadOnlyList<CowWasm.Memory.PageRun> runs, long committedPageCount)
    {
        if (Volatile.Read(ref _fault) is { } fault)
        {
            throw new ReplicationException(sequence, "The commit log stopped taking commits, so the pool refuses them; see the inner exception.", fault);
        }

        if (!_holdsRoom)
        {
            if (!_room.Wait(_options.RetryTimeout))
            {
                throw new ReplicationException(sequence,
                    $"{_options.MaxPendingCommits} commits have waited {_options.RetryTimeout.TotalSeconds:0.#} s for JetStream; refusing more.");
            }

            _holdsRoom = true; // kept by a commit that is then rolled back, for the next one
        }

        ReserveBytes(sequence, CowWasm.Memory.Pages.ToBytes(CowWasm.Memory.Pages.CountPages(runs)));
    }

    /// <summary>Holds <paramref name="bytes"/> of the pending budget for this commit, waiting for room up to the retry timeout.</summary>
    private void ReserveBytes(long sequence, long bytes)
    {
        lock (_bytesLock)
        {
            _pendingBytes -= _heldBytes; // a rolled-back commit's reservation passes to this one
            _heldBytes = 0;
            long deadline = Environment.TickCount64 + (long)_options.RetryTimeout.TotalMilliseconds;
            while (_pendingBytes > 0 && _pendingBytes + bytes > _options.MaxPendingBytes)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0 || !Monitor.Wait(_bytesLock, (int)Math.Min(left, int.MaxValue)) && Environment.TickCount64 >= deadline)
                {
                    throw new ReplicationException(sequence,
                        $"{_pendingBytes:N0} bytes of commits have waited {_options.RetryTimeout.TotalSeconds:0.#} s for JetStream " +
                        $"(at most {_options.MaxPendingBytes:N0} may; ReplicationOptions.MaxPendingBytes); refusing more.");
                }
            }

            _pendingBytes += bytes;
            _heldBytes = bytes;
        }
    }

    private void ReleaseBytes(long sequence)
    {
        lock (_bytesLock)
        {
            if (_recordBytes.Remove(sequence, out long bytes))
            {
                _pendingBytes -= bytes;
                Monitor.PulseAll(_bytesLock);
            }
        }
    }

    ValueTask ICommitListener.AfterBaseWrite(CommitRecord record)
    {
        _holdsRoom = false;
        lock (_bytesLock)
        {
            _recordBytes[record.Sequence] = _heldBytes; // now the record's: released when it is published
            _heldBytes = 0;
        }

        _queue.Writer.TryWrite(record); // unbounded: room was reserved in BeforeBaseWrite
        return _options.AcknowledgedWrites ? new ValueTask(WaitPublishedAsync(record.Sequence)) : ValueTask.CompletedTask;
    }

    private async Task RunAsync()
    {
        try
        {
            await foreach (CommitRecord record in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                await PublishRecordAsync(record).ConfigureAwait(false);
                _room.Release();
                ReleaseBytes(record.Sequence);
                _waiters.Release();
                StartSnapshotIfDue(record.Sequence);
            }

            _completion.TrySetResult();
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            _completion.TrySetResult();
        }
        catch (Exception e)
        {
            Volatile.Write(ref _fault, e);
            _completion.TrySetException(e);
        }
        finally
        {
            _waiters.Release();
        }
    }

    /// <summary>Publishes one commit's delta, chunked, in order; then it is the last published.</summary>
    private async Task PublishRecordAsync(CommitRecord record)
    {
        byte[] delta = CommitCodec.Encode(record, _moduleHash, _options.Compress);
        int count = Math.Max(1, (delta.Length + _chunkBytes - 1) / _chunkBytes);
        for (int i = 0; i < count; i++)
        {
            var chunk = new ChunkHeaders(record.Sequence, i, count, _epoch, record.Id, record.Parent);
            int offset = i * _chunkBytes;
            byte[] data = count == 1 ? delta : delta.AsSpan(offset, Math.Min(_chunkBytes, delta.Length - offset)).ToArray();
            _lastStreamSequence = await PublishAsync(chunk, data).ConfigureAwait(false);
        }

        Interlocked.Add(ref _deltaBytes, delta.Length);
        Interlocked.Add(ref _rawBytes, record.Pages.Length);
        Interlocked.Increment(ref _commits);
        Volatile.Write(ref _published, record.Sequence);
    }

    /// <summary>Starts an automatic snapshot in the background when one is due and none is running.</summary>
    private void StartSnapshotIfDue(long published)
    {
        if (_options.SnapshotEvery > 0 && _snapshotting.IsCompleted && published - Volatile.Read(ref _snapshotSequence) >= _options.SnapshotEvery)
        {
            Volatile.Write(ref _snapshotSequence, published); // not due again until SnapshotEvery more, even if this one fails
            _snapshotting = Task.Run(async () =>
            {
                try
                {
                    await PublishSnapshotAsync(_stop.Token).ConfigureAwait(false);
                    Volatile.Write(ref _snapshotFault, null);
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
                {
                    Volatile.Write(ref _snapshotFault, e);
                }
            }, CancellationToken.None);
        }
    }

    /// <summary>Publishes one chunk, retrying what may be transient until the retry timeout; returns its stream sequence.</summary>
    private async Task<ulong> PublishAsync(ChunkHeaders chunk, byte[] data)
    {
        try
        {
            return await Transient.RetryAsync(async ct =>
            {
                PubAckResponse ack = await _js.PublishAsync(_options.Subject, data, opts: new NatsJSPubOpts
                {
                    MsgId = chunk.MessageId,
                    ExpectedLastSubjectSequence = _lastStreamSequence,
                }, headers: chunk.ToNats(), cancellationToken: ct).ConfigureAwait(false);
                ack.EnsureSuccess();
                return ack.Seq;
            }, _options.RetryTimeout, _stop.Token).ConfigureAwait(false);
        }
        catch (NatsJSApiException e) when (e.Error.ErrCode == 10071)
        {
            throw new ReplicationException(chunk.Sequence,
                $"Stream {_options.StreamName} changed under this publisher (JetStream: {e.Error.Description}): another leader is " +
                "publishing to it. This one stops; its pool refuses further commits.", e);
        }
        catch (TimeoutException e) when (!_stop.IsCancellationRequested)
        {
            throw new ReplicationException(chunk.Sequence,
                $"JetStream did not store chunk {chunk.Index + 1}/{chunk.Count} of commit {chunk.Sequence} within " +
                $"{_options.RetryTimeout.TotalSeconds:0.#} s: {e.InnerException?.Message ?? e.Message}", e);
        }
    }

    /// <summary>Completes when JetStream has acknowledged commit <paramref name="sequence"/>.</summary>
    /// <exception cref="ReplicationException">The publisher stopped before that.</exception>
    public Task WaitPublishedAsync(long sequence, CancellationToken cancellationToken = default) =>
        _waiters.WaitAsync(sequence, cancellationToken);

    /// <summary>
    /// Saves the pool's committed state and stores it as the bucket's snapshot, once the log holds every commit up to it
    /// (a snapshot never runs ahead of the log). New followers start from the newest snapshot. Returns its sequence.
    /// </summary>
    public async Task<long> PublishSnapshotAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        // Read before the snapshot: every commit after it is published after this message.
        ulong streamStart = Volatile.Read(ref _lastStreamSequence) + 1;
        string path = Path.Combine(Path.GetTempPath(), $"cowwasm-{_options.Name}-{Guid.NewGuid():N}.snap");
        try
        {
            long sequence = await _pool.SaveSnapshotAsync(path, cancellationToken).ConfigureAwait(false);
            await WaitPublishedAsync(sequence, cancellationToken).ConfigureAwait(false);
            FileStream file = File.OpenRead(path);
            await using (file.ConfigureAwait(false))
            {
                await Transient.RetryAsync(async ct =>
                {
                    file.Position = 0;
                    return await _snapshots.PutAsync(new ObjectMetadata
                {
                    Name = ReplicationOptions.SnapshotObject,
                    Description = $"commit {sequence}",
                    Metadata = new Dictionary<string, string>
                    {
                        [SnapshotInfo.SequenceKey] = sequence.ToString(CultureInfo.InvariantCulture),
                        [SnapshotInfo.StreamStartKey] = streamStart.ToString(CultureInfo.InvariantCulture),
                        [SnapshotInfo.ModuleKey] = Convert.ToHexStringLower(_moduleHash),
                    },
                    }, file, leaveOpen: true, ct).ConfigureAwait(false);
                }, _options.RetryTimeout, cancellationToken).ConfigureAwait(false);
            }

            InterlockedMax(ref _snapshotSequence, sequence);
            await PurgeBeforeAsync(streamStart, cancellationToken).ConfigureAwait(false);
            return sequence;
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// With <see cref="ReplicationOptions.PurgeStream"/>: the snapshot just published starts at
    /// <paramref name="snapshotStart"/>; the commits before the previous snapshot's start are deleted from the stream.
    /// </summary>
    private async Task PurgeBeforeAsync(ulong snapshotStart, CancellationToken cancellationToken)
    {
        ulong below;
        lock (_bytesLock)
        {
            below = _previousSnapshotStart;
            _previousSnapshotStart = Math.Max(_previousSnapshotStart, snapshotStart);
        }

        if (_options.PurgeStream && below > 1)
        {
            await Transient.RetryAsync(ct => _js.PurgeStreamAsync(_options.StreamName, new StreamPurgeRequest { Seq = below }, ct).AsTask(),
                _options.RetryTimeout, cancellationToken).ConfigureAwait(false);
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        for (long seen = Volatile.Read(ref target); seen < value; seen = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, seen) == seen)
            {
                return;
            }
        }
    }

    /// <summary>Detaches from the pool (if it still runs), publishes what is pending (up to the publish timeout), stops.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _pool.RemoveListenerAsync(this).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
        {
            // The pool is gone or faulted: it commits nothing more.
        }

        _queue.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(_options.RetryTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The loop's own failure is in Completion.
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await _snapshotting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            _stop.Dispose();
            _room.Dispose();
        }
    }
}
