using CowWasm.Memory.Sharing;
using CowWasm.Pool;
using CowWasm.Runtime;

namespace CowWasm.Prolog;

/// <summary>
/// Queries of a <see cref="PrologPool"/>'s knowledge base from another process on the same host
/// (<see cref="PrologPool.ServeFollowersAsync"/>; docs/followers.md): the program and clauses are the leader's committed
/// ones, shared page by page, and every answer says which commit it came from. Reads only; assert and consult on the
/// leader. Thread-safe like <see cref="FollowerPool"/>.
/// </summary>
public sealed class PrologFollower : IDisposable
{
    private readonly FollowerPool _pool;
    private readonly uint _handle;

    private PrologFollower(FollowerPool pool, uint handle)
    {
        _pool = pool;
        _handle = handle;
    }

    /// <summary>The last commit this follower applied.</summary>
    public long Sequence => _pool.Sequence;

    /// <summary>Completes when the follower stops (faulted with the reason when the leader dropped it).</summary>
    public Task Completion => _pool.Completion;

    /// <summary>Connects to the leader's hub; <paramref name="options"/> default to Trealla's instance options.</summary>
    /// <exception cref="InvalidDataException">The leader runs another module.</exception>
    public static PrologFollower Connect(IGuestModule module, string socketPath, FollowerPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        FollowerPool pool = FollowerPool.Connect(module, TreallaGuest.CreateLinker(module.Info), socketPath,
            options ?? new FollowerPoolOptions { Instance = TreallaGuest.DefaultInstanceOptions });
        try
        {
            // The interpreter exists in the leader's memory; pl_global finds it (on a replica: nothing it writes stays).
            uint handle = pool.ReadAsync(g => ValueTask.FromResult(PrologInterpreter.Initialize(g).Handle)).AsTask().GetAwaiter().GetResult().Result;
            return new PrologFollower(pool, handle);
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    /// <summary>The first answer of <paramref name="goal"/> (errors are answers), and the commit it came from.</summary>
    public ValueTask<FollowerRead<PrologAnswer>> QueryOnceAsync(string goal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        return _pool.ReadAsync(g => ValueTask.FromResult(PrologInterpreter.Attach(g, _handle).QueryOnce(goal)), cancellationToken);
    }

    /// <summary>Up to <paramref name="maxSolutions"/> solutions of <paramref name="goal"/>, and the commit they came from.</summary>
    public ValueTask<FollowerRead<IReadOnlyList<PrologAnswer>>> QueryAllAsync(string goal, int maxSolutions = PrologPool.DefaultMaxSolutions,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSolutions);
        return _pool.ReadAsync(async g =>
        {
            var answers = new List<PrologAnswer>();
            await PrologInterpreter.Attach(g, _handle).QueryEachAsync(goal, maxSolutions, a =>
            {
                answers.Add(a);
                return ValueTask.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);
            return (IReadOnlyList<PrologAnswer>)answers;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose() => _pool.Dispose();
}
