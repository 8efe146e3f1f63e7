using CowWasm.Prolog;

namespace CowWasm.Server;

/// <summary>The service over a <see cref="PrologPool"/>: reads on replicas in parallel, writes as transactions.</summary>
internal sealed class PoolBackend : IPrologBackend
{
    private readonly PrologPool _pool;

    public PoolBackend(PrologPool pool, ServerOptions options)
    {
        _pool = pool;
        _pool.MaxAnswerBytes = options.MaxAnswerBytes;
    }

    public string Name => "pool";

    public int Replicas => _pool.Pool.Options.ReplicaCount;

    public Exception? FaultCause => _pool.Pool.FaultCause;

    public PrologPool Pool => _pool;

    /// <summary>Publishes commits to NATS JetStream (<see cref="ServerOptions.ReplicateTo"/>), or null.</summary>
    private CowWasm.Replication.CommitPublisher? _publisher;

    private NATS.Client.Core.NatsConnection? _nats;

    public BackendState State => new(_pool.Pool.CommitSequence, _publisher?.PublishedSequence,
        _publisher?.Completion.IsFaulted == true ? _publisher.Completion.Exception?.InnerException?.Message : null, _pool.Pool.Log?.Directory,
        _pool.Pool.CommittedPages);

    /// <summary>Serves same-host followers (<see cref="ServerOptions.FollowersSocket"/>), then starts publishing commits and
    /// snapshots to NATS JetStream (<see cref="ServerOptions.ReplicateTo"/>; first catching up from the stream when it is
    /// ahead of this pool).</summary>
    public async Task StartLeadingAsync(ServerOptions options, CancellationToken cancellationToken)
    {
        if (options.FollowersSocket is { } socket)
        {
            await _pool.ServeFollowersAsync(socket, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        if (options.ReplicateTo is { } urls)
        {
            _nats = new NATS.Client.Core.NatsConnection(new NATS.Client.Core.NatsOpts { Url = urls, Name = "cowwasm-leader" });
            _publisher = await CowWasm.Replication.CommitPublisher.StartAsync(_pool.Pool, _nats, options.Replication, cancellationToken)
                .ConfigureAwait(false);
        }
    }

    public async Task<long?> PublishSnapshotAsync(CancellationToken cancellationToken) =>
        _publisher is null ? null : await _publisher.PublishSnapshotAsync(cancellationToken).ConfigureAwait(false);

    public ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken) =>
        _pool.QueryEachAsync(goal, limit, timeout, onAnswer, cancellationToken);

    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken) =>
        _pool.WriteAsync(work, timeout, cancellationToken);

    public async ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken) => await _pool.SaveSnapshotAsync(path, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_publisher is not null)
        {
            await _publisher.DisposeAsync().ConfigureAwait(false); // publishes what is pending, detaches from the pool
        }

        if (_nats is not null)
        {
            await _nats.DisposeAsync().ConfigureAwait(false);
        }

        await _pool.DisposeAsync().ConfigureAwait(false);
    }
}
