using CowWasm.Prolog;

namespace CowWasm.Server;

/// <summary>The service over a <see cref="PrologPool"/>: reads on replicas in parallel, writes as transactions.</summary>
internal sealed class PoolBackend(PrologPool pool) : IPrologBackend
{
    public string Name => "pool";

    public int Replicas => pool.Pool.Options.ReplicaCount;

    public Exception? FaultCause => pool.Pool.FaultCause;

    public PrologPool Pool => pool;

    /// <summary>Publishes commits to NATS JetStream (<see cref="ServerOptions.ReplicateTo"/>), or null.</summary>
    public CowWasm.Replication.CommitPublisher? Publisher { get; private set; }

    private NATS.Client.Core.NatsConnection? _nats;

    /// <summary>Starts publishing commits and snapshots (the pool's, from now on) to NATS JetStream.</summary>
    public async Task ReplicateAsync(ServerOptions options, CancellationToken cancellationToken)
    {
        _nats = new NATS.Client.Core.NatsConnection(new NATS.Client.Core.NatsOpts { Url = options.ReplicateTo!, Name = "cowwasm-leader" });
        Publisher = await CowWasm.Replication.CommitPublisher.StartAsync(pool.Pool, _nats, options.Replication, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken) =>
        pool.QueryEachAsync(goal, limit, timeout, onAnswer, cancellationToken);

    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken) =>
        pool.WriteAsync(work, timeout, cancellationToken);

    public async ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken) => await pool.SaveSnapshotAsync(path, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Publisher is not null)
        {
            await Publisher.DisposeAsync().ConfigureAwait(false); // publishes what is pending, detaches from the pool
        }

        if (_nats is not null)
        {
            await _nats.DisposeAsync().ConfigureAwait(false);
        }

        await pool.DisposeAsync().ConfigureAwait(false);
    }
}
