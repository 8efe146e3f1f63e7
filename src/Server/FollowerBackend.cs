using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Server;

/// <summary>
/// A read-only service over a <see cref="PrologFollower"/>: queries read the leader service's committed knowledge base
/// through the shared base (same host; docs/followers.md), writes are refused with 409 and sent back to the leader.
/// </summary>
internal sealed class FollowerBackend(PrologFollower follower, int replicas) : IPrologBackend
{
    public string Name => "follower";

    public int Replicas => replicas;

    public Exception? FaultCause => follower.Completion.IsFaulted ? follower.Completion.Exception?.InnerException : null;

    public BackendState State => new(follower.Sequence); // the leader's commit this follower has applied

    public static FollowerBackend Connect(IGuestModule module, string socketPath, int replicas) =>
        new(PrologFollower.Connect(module, socketPath, new CowWasm.Pool.FollowerPoolOptions
        {
            ReplicaCount = replicas,
            Instance = TreallaGuest.DefaultInstanceOptions,
        }), replicas);

    public async ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            var read = await follower.QueryAllAsync(goal, limit, deadline.Token).ConfigureAwait(false);
            foreach (PrologAnswer answer in read.Result)
            {
                await onAnswer(answer).ConfigureAwait(false);
            }

            return read.Result.Count;
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

    public ValueTask DisposeAsync()
    {
        follower.Dispose();
        return ValueTask.CompletedTask;
    }
}
