using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// A read-only pool that follows a leader <see cref="GuestPool"/>: replicas holding the leader's committed state, brought
/// by one of two commit sources — the leader's same-host hub (<see cref="FollowerPool"/>: the leader's base itself,
/// mapped) or NATS JetStream (<c>CowWasm.Replication.CommitFollower</c>: commits applied to a base of its own). Reads
/// only; writes go to the leader. Every read says which commit it saw.
/// </summary>
/// <remarks>Thread-safety: every member is thread-safe; reads run in parallel, one per replica.</remarks>
public interface IReadOnlyPool : IAsyncDisposable
{
    /// <summary>The leader's commit this pool's state is at.</summary>
    long Sequence { get; }

    /// <summary>Replicas serving reads.</summary>
    int ReplicaCount { get; }

    /// <summary>Completes when the pool stops following: faulted with the reason when it could not go on.</summary>
    Task Completion { get; }

    /// <summary>Runs <paramref name="work"/> on a replica holding one committed state, and says which commit.</summary>
    ValueTask<FollowerRead<T>> ReadAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default);

    /// <summary>Completes once the state is at commit <paramref name="sequence"/> or later; fails if the pool stops first.</summary>
    Task WaitForAsync(long sequence, CancellationToken cancellationToken = default);
}
