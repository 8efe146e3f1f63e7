using System.Diagnostics;
using System.Threading.Channels;
using CowWasm.Memory;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// The pool's replicas: the live set, the channel of idle ones, and reset-or-replace after a read.
/// </summary>
/// <remarks>
/// <para><b>Thread-safety:</b> one lock (<c>_lock</c>) guards the live set (<c>_replicas</c>); the idle channel is
/// thread-safe itself. <see cref="RentAsync"/> and <see cref="Return"/> run on many threads at once.
/// <see cref="FollowCommit"/> runs under the pool's write gate, when no replica is rented.</para>
/// <para><b>Invariant:</b> a replica is either rented (by exactly one read) or idle in the channel, and every
/// idle replica holds the committed state (memory, length, globals, host state).</para>
/// </remarks>
internal sealed class ReplicaSet : IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<PooledReplica> _replicas = [];
    private readonly Channel<PooledReplica> _idle;
    private readonly SyncStrategy _strategy;
    private readonly IGuestInstance _leader;
    private readonly PoolMetrics _metrics;
    private readonly TagList _tags;

    public ReplicaSet(SyncStrategy strategy, IGuestInstance leader, int count, PoolMetrics metrics, TagList tags)
    {
        _strategy = strategy;
        _leader = leader;
        _metrics = metrics;
        _tags = tags;
        _idle = Channel.CreateBounded<PooledReplica>(new BoundedChannelOptions(count) { SingleReader = false, SingleWriter = false });
        try
        {
            for (int i = 0; i < count; i++)
            {
                AddUnsynchronized(new PooledReplica(_strategy.CreateReplica(), _leader)); // clones hold the leader's globals
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The replicas' memories (a copy of the current set), for footprint measurements.</summary>
    public IReadOnlyList<ReplicaMemory> Memories
    {
        get
        {
            lock (_lock)
            {
                return _replicas.Select(r => r.Memory).ToList();
            }
        }
    }

    /// <summary>Waits for an idle replica (it holds the committed state).</summary>
    public ValueTask<PooledReplica> RentAsync(CancellationToken cancellationToken) => _idle.Reader.ReadAsync(cancellationToken);

    /// <summary>
    /// Resets a replica after a read and makes it idle again. If the reset fails, the replica's state is unknown:
    /// it is disposed and replaced by a fresh clone of the leader (the caller holds the gate's read side, so the
    /// leader holds the committed state), and the reset's error is rethrown to the read's caller. If no replacement
    /// can be made either, the set has one replica fewer; with none left, waiting reads fail.
    /// </summary>
    public void Return(PooledReplica replica, ulong[] committedGlobals)
    {
        try
        {
            long start = Stopwatch.GetTimestamp();
            long pages = _strategy.ResetReplica(replica.Memory.Replica);
            Restore(replica.Instance, committedGlobals);
            _metrics.ResetDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds, in _tags);
            _metrics.ResetPages.Record(pages, in _tags);
            _idle.Writer.TryWrite(replica);
        }
        catch (Exception resetError)
        {
            Replace(replica, committedGlobals, resetError);
            throw;
        }
    }

    /// <summary>After a commit: every replica adopts the committed length and globals. Under the pool's write gate.</summary>
    public void FollowCommit(ulong[] committedGlobals)
    {
        lock (_lock)
        {
            foreach (PooledReplica replica in _replicas)
            {
                replica.Instance.RefreshMemorySize();
                replica.Instance.RestoreGlobals(committedGlobals);
            }
        }
    }

    private static void Restore(IGuestInstance instance, ulong[] committedGlobals)
    {
        instance.RefreshMemorySize();
        instance.RestoreGlobals(committedGlobals);
        instance.ResetHostState();
    }

    private void Replace(PooledReplica broken, ulong[] committedGlobals, Exception resetError)
    {
        lock (_lock)
        {
            _replicas.Remove(broken);
            broken.Dispose();
            try
            {
                var fresh = new PooledReplica(_strategy.CreateReplica(), _leader);
                fresh.Instance.RestoreGlobals(committedGlobals);
                AddUnsynchronized(fresh);
            }
            catch (Exception replaceError)
            {
                var error = new InvalidOperationException(
                    $"A replica's reset failed and no replacement could be created; the pool now has {_replicas.Count} replica(s).",
                    new AggregateException(resetError, replaceError));
                if (_replicas.Count == 0)
                {
                    _idle.Writer.TryComplete(error);
                }

                throw error;
            }
        }
    }

    private void AddUnsynchronized(PooledReplica replica)
    {
        _replicas.Add(replica);
        _idle.Writer.TryWrite(replica);
    }

    /// <summary>Disposes every replica (their instances, memories and strategy replicas).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _idle.Writer.TryComplete();
            foreach (PooledReplica replica in _replicas)
            {
                replica.Dispose();
            }

            _replicas.Clear();
        }
    }
}
