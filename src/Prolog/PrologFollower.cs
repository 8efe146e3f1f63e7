using CowWasm.Memory.Sharing;
using CowWasm.Pool;
using CowWasm.Runtime;

namespace CowWasm.Prolog;

/// <summary>
/// Queries of a <see cref="PrologPool"/>'s knowledge base from another process — on the same host
/// (<see cref="Connect"/>, through <see cref="PrologPool.ServeFollowersAsync"/>) or on another host (<see cref="OverAsync"/>
/// a <c>CowWasm.Replication.CommitFollower</c>) — over any <see cref="IReadOnlyPool"/> (docs/followers.md): the program
/// and clauses are the leader's committed ones, and every answer says which commit it came from. Reads only; assert and
/// consult on the leader. Thread-safe like the pool under it.
/// </summary>
public sealed class PrologFollower : IDisposable, IAsyncDisposable
{
    private readonly IReadOnlyPool _pool;
    private readonly uint _handle;

    private PrologFollower(IReadOnlyPool pool, uint handle)
    {
        _pool = pool;
        _handle = handle;
    }

    /// <summary>The read-only pool the queries run on.</summary>
    public IReadOnlyPool Pool => _pool;

    /// <summary>Replicas serving queries.</summary>
    public int ReplicaCount => _pool.ReplicaCount;

    /// <summary>
    /// Queries over <paramref name="pool"/>, a follower of a Prolog pool's leader from either commit source; the new
    /// follower owns it (also when this throws).
    /// </summary>
    public static async Task<PrologFollower> OverAsync(IReadOnlyPool pool, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pool);
        try
        {
            // The interpreter exists in the leader's memory; pl_global finds it (on a replica: nothing it writes stays).
            FollowerRead<uint> handle = await pool.ReadAsync(g => ValueTask.FromResult(PrologInterpreter.Initialize(g).Handle),
                cancellationToken).ConfigureAwait(false);
            return new PrologFollower(pool, handle.Result);
        }
        catch
        {
            await pool.DisposeAsync().ConfigureAwait(false);
            throw;
        }
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
        return OverAsync(pool).GetAwaiter().GetResult();
    }

    /// <summary>The largest answer copied out of a guest (<see cref="PrologInterpreter.MaxAnswerBytes"/>); thread-safe to change.</summary>
    public int MaxAnswerBytes
    {
        get => Volatile.Read(ref _maxAnswerBytes);
        set => Volatile.Write(ref _maxAnswerBytes, value >= 64 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "At least 64 bytes."));
    }

    private int _maxAnswerBytes = PrologInterpreter.DefaultMaxAnswerBytes;

    private PrologInterpreter Driver(IGuestInstance guest) => PrologInterpreter.Attach(guest, _handle, MaxAnswerBytes);

    /// <summary>Completes once the follower has the leader's commit <paramref name="sequence"/>; fails if it stops first.</summary>
    public Task WaitForAsync(long sequence, CancellationToken cancellationToken = default) => _pool.WaitForAsync(sequence, cancellationToken);

    /// <summary>Streams up to <paramref name="maxSolutions"/> answers of <paramref name="goal"/> to <paramref name="onAnswer"/>
    /// from one committed state; returns how many, and the commit.</summary>
    public ValueTask<FollowerRead<int>> QueryEachAsync(string goal, int maxSolutions, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        ArgumentNullException.ThrowIfNull(onAnswer);
        return _pool.ReadAsync(g => Driver(g).QueryEachAsync(goal, maxSolutions, onAnswer, cancellationToken),
            cancellationToken);
    }

    /// <summary>The first answer of <paramref name="goal"/> (errors are answers), and the commit it came from.</summary>
    public ValueTask<FollowerRead<PrologAnswer>> QueryOnceAsync(string goal, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        return _pool.ReadAsync(g => ValueTask.FromResult(Driver(g).QueryOnce(goal)), cancellationToken);
    }

    /// <summary>Up to <paramref name="maxSolutions"/> solutions of <paramref name="goal"/> (saying whether it stopped at the
    /// cap), and the commit they came from.</summary>
    public ValueTask<FollowerRead<PrologAnswers>> QueryAllAsync(string goal, int maxSolutions = PrologPool.DefaultMaxSolutions,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(goal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSolutions);
        return _pool.ReadAsync(async g =>
        {
            var answers = new List<PrologAnswer>();
            await Driver(g).QueryEachAsync(goal, maxSolutions, a =>
            {
                answers.Add(a);
                return ValueTask.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);
            return new PrologAnswers(answers, maxSolutions);
        }, cancellationToken);
    }

    /// <summary>Stops following and frees the pool under it.</summary>
    public ValueTask DisposeAsync() => _pool.DisposeAsync();

    /// <summary>Synchronous form of <see cref="DisposeAsync"/>.</summary>
    public void Dispose() => _pool.DisposeAsync().AsTask().GetAwaiter().GetResult();
}
