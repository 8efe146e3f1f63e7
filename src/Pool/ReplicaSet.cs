using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// The pool's replicas: the live set, the channel of idle ones, and reset-or-replace after a read.
/// </summary>
/// <remarks>
/// <para><b>Thread-safety:</b> one lock (<c>_lock</c>) guards the live set (<c>_replicas</c>); the idle channel is
/// thread-safe itself. <see cref="RentAsync"/> and <see cref="Return"/> run on many threads at once.
/// <see cref="FollowCommit"/> and <see cref="ResetForCommit"/> run under the pool's write gate, when no replica is
/// rented (every read returns its replica before it leaves the gate's read side).</para>
/// <para><b>Invariant:</b> a replica is either rented (by exactly one read) or idle in the channel, and every
/// idle replica holds the committed state (memory, length, globals, host state) — or, under
/// <see cref="ReadIsolation.PerCommit"/>, the committed state plus earlier reads' effects, marked
/// <see cref="PooledReplica.HoldsReadEffects"/>.</para>
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
    private readonly List<PooledReplica> _drained = [];

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
    /// Makes a replica idle again after a read. With <paramref name="keepReadEffects"/>
    /// (<see cref="ReadIsolation.PerCommit"/> after a read that returned), only its host state is reset and it is
    /// marked for <see cref="ResetForCommit"/>; otherwise it is reset to the committed state. If the reset fails, the
    /// replica's state is unknown: it is disposed and replaced by a fresh clone of the leader (the caller holds the
    /// gate's read side, so the leader holds the committed state), and the reset's error is rethrown to the read's
    /// caller. If no replacement can be made either, the set has one replica fewer; with none left, waiting reads fail.
    /// </summary>
    public void Return(PooledReplica replica, CommittedState committed, bool keepReadEffects)
    {
        if (keepReadEffects)
        {
            replica.HoldsReadEffects = true;
            replica.Instance.ResetHostState();
            _idle.Writer.TryWrite(replica);
            return;
        }

        Reset(replica, committed);
        _idle.Writer.TryWrite(replica);
    }

    /// <summary>
    /// Before a commit (<see cref="ReadIsolation.PerCommit"/>): resets every replica that kept a read's effects, so
    /// the commit finds them clean. Under the pool's write gate, when no replica is rented. A replica whose reset
    /// fails is replaced as in <see cref="Return"/> and the error is rethrown (the caller rolls the write back).
    /// </summary>
    public void ResetForCommit(CommittedState committed)
    {
        // Under the write gate every replica is idle: take them all out, reset those holding a read's effects, and put
        // back the ones that are still alive (Replace has already put a failed replica's replacement in the channel).
        _drained.Clear();
        while (_idle.Reader.TryRead(out PooledReplica? replica))
        {
            _drained.Add(replica);
        }

        Exception? first = null;
        foreach (PooledReplica replica in _drained)
        {
            try
            {
                if (replica.HoldsReadEffects)
                {
                    Reset(replica, committed);
                }

                _idle.Writer.TryWrite(replica);
            }
            catch (Exception e)
            {
                first ??= e;
            }
        }

        _drained.Clear();
        if (first is not null)
        {
            ExceptionDispatchInfo.Throw(first);
        }
    }

    private void Reset(PooledReplica replica, CommittedState committed)
    {
        try
        {
            long start = Stopwatch.GetTimestamp();
            long pages = _strategy.ResetReplica(replica.Memory.Replica);
            Restore(replica.Instance, committed);
            replica.HoldsReadEffects = false;
            _metrics.ResetDuration.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds, in _tags);
            _metrics.ResetPages.Record(pages, in _tags);
        }
        catch (Exception resetError)
        {
            Replace(replica, committed, resetError);
            throw;
        }
    }

    /// <summary>
    /// After a commit: every replica adopts the committed length, globals and — when the commit changed them
    /// (<paramref name="tablesChanged"/>) — tables. Under the pool's write gate.
    /// </summary>
    public void FollowCommit(CommittedState committed, bool tablesChanged)
    {
        lock (_lock)
        {
            foreach (PooledReplica replica in _replicas)
            {
                replica.Instance.RefreshMemorySize();
                committed.Apply(replica.Instance, tablesChanged);
            }
        }
    }

    private static void Restore(IGuestInstance instance, CommittedState committed)
    {
        instance.RefreshMemorySize();
        committed.Apply(instance);
        instance.ResetHostState();
    }

    private void Replace(PooledReplica broken, CommittedState committed, Exception resetError)
    {
        lock (_lock)
        {
            _replicas.Remove(broken);
            broken.Dispose();
            try
            {
                var fresh = new PooledReplica(_strategy.CreateReplica(), _leader);
                // The leader may hold a write's uncommitted tables (a reset fails during ResetForCommit too).
                committed.Apply(fresh.Instance, tablesMayDiffer: true);
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

    /// <summary>The pool is faulted: reads waiting for a replica, and later ones, fail with <paramref name="cause"/>.</summary>
    public void Fault(Exception cause) => _idle.Writer.TryComplete(
        new InvalidOperationException("The pool is faulted: a commit failed and its state could not be restored.", cause));

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
