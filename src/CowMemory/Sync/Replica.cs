namespace CowWasm.Memory.Sync;

/// <summary>
/// One replica's memory. Between a <see cref="SyncStrategy.ResetReplica"/> and the next read it equals the
/// committed image. Dispose it to release its memory (or let the strategy's Dispose do it).
/// </summary>
public abstract class Replica : IDisposable
{
    private int _busy;

    private protected Replica(SyncStrategy owner) => Owner = owner;

    /// <summary>The replica's memory. Valid until the replica is disposed; its address never moves.</summary>
    public abstract PageMemory Memory { get; }

    /// <summary>The strategy that created the replica.</summary>
    public SyncStrategy Owner { get; }

    /// <summary>Whether the replica has been disposed.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>
    /// Restores committed bytes; returns the pages restored (discarded or copied). With <paramref name="contentAware"/>,
    /// a copy-back copies only the scribbled pages whose bytes differ from the base's.
    /// </summary>
    internal abstract long ResetUnsynchronized(PageBase pageBase, ReplicaResetMode mode, bool contentAware);

    /// <summary>
    /// Follows a commit: <paramref name="sent"/> are the runs the strategy sends (its choice: the dirty runs, or the
    /// whole image), to be taken from <paramref name="leader"/> where the replica keeps its own copy of them.
    /// </summary>
    internal abstract void FollowCommitUnsynchronized(PageMemory leader, IReadOnlyList<PageRun> sent, long committedPageCount);

    /// <summary>The base switched from a read-only file to a memfd copy of it (a clean replica's bytes are unchanged).</summary>
    internal virtual void OnBaseReplacedUnsynchronized()
    {
    }

    /// <summary>DEBUG: throws when the replica is not clean enough for the base to change under it.</summary>
    internal virtual void AssertCleanUnsynchronized()
    {
    }

    internal bool TryEnter() => Interlocked.Exchange(ref _busy, 1) == 0;

    internal void Exit() => Volatile.Write(ref _busy, 0);

    /// <summary>Removes the replica from its strategy and frees its memory.</summary>
    public void Dispose()
    {
        if (!IsDisposed)
        {
            Owner.Remove(this);
        }

        GC.SuppressFinalize(this);
    }

    internal void DisposeUnsynchronized()
    {
        if (!IsDisposed)
        {
            IsDisposed = true;
            DisposeCore();
        }
    }

    private protected abstract void DisposeCore();
}
