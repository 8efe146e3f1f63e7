using System.Buffers.Binary;
using CowWasm.Memory;
using CowWasm.Memory.Sharing;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>Settings of a <see cref="FollowerPool"/>.</summary>
public sealed record FollowerPoolOptions
{
    /// <summary>Replicas serving reads in this process (default 2).</summary>
    public int ReplicaCount { get; init; } = 2;

    /// <summary>How a read's instance is created: WASI, host state… (the memory comes from the leader's base).</summary>
    public InstanceOptions Instance { get; init; } = new();

    /// <summary>How long a read may run before the guest is interrupted (default 30 s).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>A read's result and the commit it read.</summary>
/// <param name="Result">What the work returned.</param>
/// <param name="Sequence">The leader's commit the read saw, whole.</param>
public readonly record struct FollowerRead<T>(T Result, long Sequence);

/// <summary>
/// Reads of a <see cref="GuestPool"/>'s committed state from another process on the same host
/// (<see cref="GuestPool.ServeFollowers"/>): the leader's base memfd, passed over a Unix socket, is the base of this
/// process's replicas (one copy of clean pages for every process), and each commit reaches them by its dirty runs
/// and globals — see docs/followers.md. Reads only: writes go to the leader.
/// </summary>
/// <remarks>
/// <para>Every read sees one committed state, reported with its result. If the leader wrote a commit this follower
/// had not pinned (it fell behind and was dropped), the read fails with <see cref="InvalidOperationException"/> rather
/// than return what may be a mix of two commits; the follower then stops (<see cref="Completion"/>) and a new one must
/// connect. Tables cannot follow (their elements are native addresses of the leader's process): once a committed
/// write has changed the leader's tables, reads fail with <see cref="NotSupportedException"/>.</para>
/// <para>Thread-safety: reads from any threads, one per replica at a time. A read that grows memory past the length it
/// started with may, if a commit grows the base meanwhile, see that commit's new pages there (a known limit).</para>
/// </remarks>
public sealed class FollowerPool : IReadOnlyPool, IDisposable
{
    private readonly SequenceWaiters _waiters;
    private readonly BaseFollower _follower;
    private readonly IGuestInstance _template;
    private readonly Dictionary<FollowedReplica, IGuestInstance> _instances = [];
    private readonly TableState _tables;
    private DecodedState? _decoded; // the last commit's state, decoded once: reads of one commit share it

    private FollowerPool(BaseFollower follower, IGuestInstance template, FollowerPoolOptions options)
    {
        _follower = follower;
        _template = template;
        _tables = template.CaptureTables(); // what instantiation made: the only tables a follower can serve
        _waiters = new SequenceWaiters(() => follower.Sequence, (sequence, applied) => follower.Completion.IsCompleted
            ? new InvalidOperationException($"The follower stopped at commit {applied}, before commit {sequence}.",
                follower.Completion.Exception?.InnerException)
            : null);
        Options = options;
    }

    /// <summary>The settings.</summary>
    public FollowerPoolOptions Options { get; }

    /// <summary>The last commit this follower applied.</summary>
    public long Sequence => _follower.Sequence;

    /// <inheritdoc/>
    public int ReplicaCount => Options.ReplicaCount;

    /// <inheritdoc/>
    public Task WaitForAsync(long sequence, CancellationToken cancellationToken = default) => _waiters.WaitAsync(sequence, cancellationToken);

    /// <summary>Completes when the follower stops: faulted with the reason when the leader dropped it or went away.</summary>
    public Task Completion => _follower.Completion;

    /// <summary>Connects to the leader's hub at <paramref name="socketPath"/> and creates the replicas.</summary>
    /// <exception cref="InvalidDataException">The leader runs another module.</exception>
    /// <exception cref="IOException">The leader refused the follower.</exception>
    public static FollowerPool Connect(IGuestModule module, Linker linker, string socketPath, FollowerPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(linker);
        options ??= new FollowerPoolOptions();
        // A private template: instantiation writes its data segments into its own memory, never the shared base.
        IGuestInstance template = module.Instantiate(linker, options.Instance);
        try
        {
            PageMemory layout = template.Memory ?? throw new ArgumentException("The module has no linear memory to follow.", nameof(module));
            BaseFollower follower = BaseFollower.Connect(socketPath, new FollowerOptions
            {
                ReplicaCount = options.ReplicaCount,
                MaxPageCount = layout.MaxPageCount,
                ReservedBytes = layout.ReservedBytes,
                ExpectedIdentity = PoolSnapshot.ModuleHashOf(module),
            });
            var pool = new FollowerPool(follower, template, options);
            try
            {
                follower.Applied = _ => pool._waiters.Release();
                _ = follower.Completion.ContinueWith(_ => pool._waiters.Release(), CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                pool.CreateInstances();
            }
            catch
            {
                pool.Dispose();
                throw;
            }

            return pool;
        }
        catch
        {
            template.Dispose();
            throw;
        }
    }

    private void CreateInstances()
    {
        var rented = new List<FollowedReplica>();
        try
        {
            for (int i = 0; i < Options.ReplicaCount; i++)
            {
                FollowedReplica replica = _follower.RentAsync().AsTask().GetAwaiter().GetResult();
                rented.Add(replica);
                _instances[replica] = _template.Clone(new FollowedMemory(replica.Memory), Options.Instance);
            }
        }
        finally
        {
            rented.ForEach(r => _follower.Return(r));
        }
    }

    /// <summary>Runs <paramref name="work"/> on a replica holding one committed state, and says which.</summary>
    /// <exception cref="InvalidOperationException">The follower fell behind a commit during the read (it stops), or has stopped.</exception>
    /// <exception cref="NotSupportedException">The leader's committed tables differ from instantiation.</exception>
    /// <exception cref="TimeoutException">The read ran past <see cref="FollowerPoolOptions.ReadTimeout"/> (interrupted).</exception>
    public async ValueTask<FollowerRead<T>> ReadAsync<T>(Func<IGuestInstance, ValueTask<T>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        FollowedReplica replica = await _follower.RentAsync(cancellationToken).ConfigureAwait(false);
        IGuestInstance instance = _instances[replica];
        long sequence = replica.Sequence;
        T result;
        bool consistent;
        try
        {
            (bool tablesAsInstantiated, ulong[] globals) = Decode(replica.State);
            if (!tablesAsInstantiated)
            {
                throw new NotSupportedException(
                    "A committed write changed the leader's tables; followers in other processes cannot follow that (table elements are native addresses).");
            }

            instance.RefreshMemorySize();
            instance.RestoreGlobals(globals);
            using RunningGuest running = RunningGuest.Start(instance, cancellationToken, Options.ReadTimeout);
            try
            {
                result = await work(instance).ConfigureAwait(false);
            }
            catch (Exception e) when (running.Translate(e) is { } interrupted)
            {
                throw interrupted;
            }
        }
        finally
        {
            instance.ResetHostState();
            if (instance.TablesChanged)
            {
                instance.RestoreTables(_tables); // a read's table.set/grow and segment drops end with it
            }

            consistent = _follower.Return(replica);
        }

        return consistent
            ? new FollowerRead<T>(result, sequence)
            : throw new InvalidOperationException(
                $"The read of commit {sequence} overlapped a commit this follower could not pin in time; its result is discarded and the follower stops.");
    }

    /// <summary>The state a leader's hub sends: whether its tables are as instantiated, then its globals.</summary>
    internal static byte[] EncodeState(bool tablesAsInstantiated, IReadOnlyList<ulong> globals)
    {
        byte[] state = new byte[1 + 4 + 8 * globals.Count];
        state[0] = tablesAsInstantiated ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt32LittleEndian(state.AsSpan(1), globals.Count);
        for (int i = 0; i < globals.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(state.AsSpan(5 + 8 * i), globals[i]);
        }

        return state;
    }

    private sealed record DecodedState(ReadOnlyMemory<byte> Source, bool TablesAsInstantiated, ulong[] Globals);

    /// <summary>The state of a replica's commit; decoded once per commit (each commit's state is a new array).</summary>
    private (bool, ulong[]) Decode(ReadOnlyMemory<byte> state)
    {
        DecodedState? last = Volatile.Read(ref _decoded);
        if (last is null || !last.Source.Equals(state))
        {
            (bool tables, ulong[] globals) = DecodeState(state.Span);
            last = new DecodedState(state, tables, globals);
            Volatile.Write(ref _decoded, last);
        }

        return (last.TablesAsInstantiated, last.Globals);
    }

    private static (bool, ulong[]) DecodeState(ReadOnlySpan<byte> state)
    {
        if (state.Length < 5 || BinaryPrimitives.ReadInt32LittleEndian(state[1..]) is var count && (count < 0 || state.Length != 5 + 8L * count))
        {
            throw new InvalidDataException($"The leader's state is {state.Length} bytes, not a flag, a count and that many globals.");
        }

        var globals = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            globals[i] = BinaryPrimitives.ReadUInt64LittleEndian(state[(5 + 8 * i)..]);
        }

        return (state[0] != 0, globals);
    }

    /// <summary>Disposes the instances, disconnects and unmaps (as <see cref="Dispose"/>). No read may be running.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Disposes the instances, disconnects and unmaps. No read may be running.</summary>
    public void Dispose()
    {
        foreach (IGuestInstance instance in _instances.Values)
        {
            instance.Dispose();
        }

        _instances.Clear();
        _template.Dispose();
        _follower.Dispose();
    }

    /// <summary>A replica's memory as the runtime sees it; the follower owns the view (disposing this does nothing).</summary>
    private sealed class FollowedMemory(CowView view) : ILinearMemory
    {
        public PageMemory Memory => view;

        public bool TryGrow(long pageCount)
        {
            if (pageCount > view.MaxPageCount)
            {
                return false;
            }

            view.Resize(pageCount); // beyond the base: the view's private zero pages (scratch), reset when the read ends
            return true;
        }

        public void Dispose()
        {
        }
    }
}
