using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Replication;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using NATS.Client.Core;

namespace CowWasm.Server;

/// <summary>
/// A read-only service on another host: a <see cref="CommitFollower"/> replays the leader service's commits from NATS
/// JetStream (<see cref="ServerOptions.FollowNats"/>) into its own pool, and queries run on its replicas; writes are
/// refused with 409 and sent back to the leader.
/// </summary>
internal sealed class ReplicaBackend : IPrologBackend
{
    private readonly NatsConnection _nats;
    private readonly CommitFollower _follower;
    private readonly uint _handle;

    private ReplicaBackend(NatsConnection nats, CommitFollower follower, uint handle, int replicas)
    {
        _nats = nats;
        _follower = follower;
        _handle = handle;
        Replicas = replicas;
    }

    public string Name => "replica";

    public int Replicas { get; }

    public Exception? FaultCause => _follower.Completion.IsFaulted ? _follower.Completion.Exception?.InnerException : null;

    /// <summary>The leader's commit this replica has applied.</summary>
    public BackendState State => new(_follower.Sequence);

    /// <summary>Starts from the newest snapshot in the bucket (or from instantiation), then follows the stream.</summary>
    /// <exception cref="ReplicationException">No leader has published under the name, or its state is another module's.</exception>
    public static async Task<ReplicaBackend> StartAsync(IGuestModule module, ServerOptions options, CancellationToken cancellationToken)
    {
        var nats = new NatsConnection(new NatsOpts { Url = options.FollowNats!, Name = "cowwasm-replica" });
        try
        {
            PoolOptions pool = PrologPool.DefaultOptions with { ReplicaCount = options.Replicas, Isolation = options.Isolation };
            CommitFollower follower = await CommitFollower.StartAsync(module, TreallaGuest.CreateLinker(module.Info), nats, options.Replication, pool,
                cancellationToken).ConfigureAwait(false);
            try
            {
                // The interpreter lives in the leader's memory; pl_global finds it (on a replica: nothing it writes stays).
                FollowerRead<uint> handle = await follower.ReadAsync(g => ValueTask.FromResult(PrologInterpreter.Initialize(g).Handle),
                    cancellationToken).ConfigureAwait(false);
                return new ReplicaBackend(nats, follower, handle.Result, options.Replicas);
            }
            catch
            {
                await follower.DisposeAsync().ConfigureAwait(false);
                throw;
            }
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
            FollowerRead<int> read = await _follower.ReadAsync(
                async g => await PrologInterpreter.Attach(g, _handle).QueryEachAsync(goal, limit, onAnswer, deadline.Token).ConfigureAwait(false),
                deadline.Token).ConfigureAwait(false);
            return read.Result;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The query ran past its {timeout.TotalMilliseconds:0} ms deadline and was interrupted.");
        }
    }

    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken) =>
        throw new ServiceException(409, "read_only_follower", "This service replicates a leader and serves reads only: send writes to the leader.");

    public ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken) =>
        throw new ServiceException(409, "read_only_follower", "This service replicates a leader: snapshots are the leader's.");

    public async ValueTask DisposeAsync()
    {
        await _follower.DisposeAsync().ConfigureAwait(false);
        await _nats.DisposeAsync().ConfigureAwait(false);
    }
}
