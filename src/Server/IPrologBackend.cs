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
}
