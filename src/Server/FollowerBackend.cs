using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Replication;
using CowWasm.Runtime;
using NATS.Client.Core;

namespace CowWasm.Server;

/// <summary>
/// A read-only service over a <see cref="PrologFollower"/>, whichever commit source feeds it: the leader service's
/// same-host hub (<see cref="ServerOptions.FollowSocket"/>: the leader's base, mapped) or NATS JetStream
/// (<see cref="ServerOptions.FollowNats"/>: a <see cref="CommitFollower"/> replaying the leader's commits into a pool of
/// its own). Queries run on its replicas; writes are refused with 409 and sent back to the leader.
/// </summary>
internal sealed class FollowerBackend : IPrologBackend
{
    private readonly PrologFollower _follower;
    private readonly NatsConnection? _nats;

    private FollowerBackend(string name, PrologFollower follower, NatsConnection? nats, ServerOptions options)
    {
        Name = name;
        _follower = follower;
        _follower.MaxAnswerBytes = options.MaxAnswerBytes;
        _nats = nats;
    }

    /// <summary>"follower" (same host) or "replica" (another host, through JetStream).</summary>
    public string Name { get; }

    public int Replicas => _follower.ReplicaCount;

    public Exception? FaultCause => _follower.Completion.IsFaulted ? _follower.Completion.Exception?.InnerException : null;

    public BackendState State => new(_follower.Sequence); // the leader's commit this follower has applied

    /// <summary>Follows the leader service whose hub listens at <paramref name="socketPath"/>.</summary>
    public static FollowerBackend Connect(IGuestModule module, string socketPath, ServerOptions options) =>
        new("follower", PrologFollower.Connect(module, socketPath, new FollowerPoolOptions
        {
            ReplicaCount = options.Replicas,
            Instance = TreallaGuest.DefaultInstanceOptions,
        }), nats: null, options);

    /// <summary>Starts from the newest snapshot in the bucket (or from instantiation), then follows the stream.</summary>
    /// <exception cref="ReplicationException">No leader has published under the name, or its state is another module's.</exception>
    public static async Task<FollowerBackend> StartFromNatsAsync(IGuestModule module, ServerOptions options, CancellationToken cancellationToken)
    {
        var nats = new NatsConnection(new NatsOpts { Url = options.FollowNats!, Name = "cowwasm-replica" });
        try
        {
            PoolOptions pool = options.PoolOptions;
            CommitFollower follower = await CommitFollower.StartAsync(module, TreallaGuest.CreateLinker(module.Info), nats, options.Replication, pool,
                cancellationToken).ConfigureAwait(false);
            return new FollowerBackend("replica", await PrologFollower.OverAsync(follower, cancellationToken).ConfigureAwait(false), nats, options);
        }
        catch
        {
            await nats.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return (await _follower.QueryEachAsync(goal, limit, onAnswer, deadline.Token).ConfigureAwait(false)).Result;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The query ran past its {timeout.TotalMilliseconds:0} ms deadline and was interrupted.");
        }
    }

    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken) =>
        throw new ServiceException(409, "read_only_follower", "This service follows a leader and serves reads only: send writes to the leader.");

    public ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken) =>
        throw new ServiceException(409, "read_only_follower", "This service follows a leader: save snapshots on the leader.");

    public async ValueTask DisposeAsync()
    {
        await _follower.DisposeAsync().ConfigureAwait(false);
        if (_nats is not null)
        {
            await _nats.DisposeAsync().ConfigureAwait(false);
        }
    }
}
