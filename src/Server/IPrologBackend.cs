using CowWasm.Prolog;

namespace CowWasm.Server;

/// <summary>
/// What the service runs requests on: a <see cref="PrologPool"/> or, as the benchmark's baseline, one interpreter
/// behind a lock. Thread-safe; guest code runs on the calling thread.
/// </summary>
internal interface IPrologBackend : IAsyncDisposable
{
    /// <summary>"pool" or "locked".</summary>
    string Name { get; }

    /// <summary>Replicas serving reads (1 for the locked interpreter).</summary>
    int Replicas { get; }

    /// <summary>Why the backend cannot serve any more, or null.</summary>
    Exception? FaultCause { get; }

    /// <summary>Streams up to <paramref name="limit"/> answers of <paramref name="goal"/> to <paramref name="onAnswer"/>.</summary>
    /// <exception cref="TimeoutException">The deadline passed (the guest was interrupted).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer, CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="work"/> as a write: committed if it returns, rolled back (pool) if it throws.</summary>
    ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Saves the committed state to <paramref name="path"/> atomically.</summary>
    /// <exception cref="NotSupportedException">The backend cannot save snapshots.</exception>
    ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken);

    /// <summary>What <c>/health</c> and the start-up line report: sequence, replication and durability.</summary>
    BackendState State { get; }

    /// <summary>
    /// Starts what the options ask of a leader beside serving requests (same-host followers, publishing to JetStream);
    /// nothing for the other backends (the options were validated against them).
    /// </summary>
    Task StartLeadingAsync(ServerOptions options, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Publishes a snapshot to JetStream, returning its commit; null when the backend does not publish.</summary>
    Task<long?> PublishSnapshotAsync(CancellationToken cancellationToken) => Task.FromResult<long?>(null);
}

/// <summary>A backend's state as the service reports it.</summary>
/// <param name="Sequence">The commit the backend's state is at (a follower: the leader's commit it applied); null for the
/// locked baseline, which does not count commits.</param>
/// <param name="PublishedSequence">The last commit JetStream acknowledged, when the backend publishes; else null.</param>
/// <param name="ReplicationFault">Why publishing stopped, or null.</param>
/// <param name="DurableIn">Where writes are made durable before their reply (the commit log's directory), or null.</param>
/// <param name="CommittedPages">Pages the leader's commits wrote to its base since it started (a pool leader), or null.</param>
internal readonly record struct BackendState(long? Sequence, long? PublishedSequence = null, string? ReplicationFault = null,
    string? DurableIn = null, long? CommittedPages = null);
