using CowWasm.Prolog;

namespace CowWasm.Server;

/// <summary>The service over a <see cref="PrologPool"/>: reads on replicas in parallel, writes as transactions.</summary>
internal sealed class PoolBackend(PrologPool pool) : IPrologBackend
{
    public string Name => "pool";

    public int Replicas => pool.Pool.Options.ReplicaCount;

    public Exception? FaultCause => pool.Pool.FaultCause;

    public PrologPool Pool => pool;

    public ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken) =>
        pool.QueryEachAsync(goal, limit, timeout, onAnswer, cancellationToken);

    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken) =>
        pool.WriteAsync(work, timeout, cancellationToken);

    public async ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken) => await pool.SaveSnapshotAsync(path, cancellationToken);

    public ValueTask DisposeAsync() => pool.DisposeAsync();
}
