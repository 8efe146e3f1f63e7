using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// Issue 16 item 6: a commit that throws must never leave the leader holding the transaction (the next write would
/// commit it), and a pool whose state cannot be restored must say so on every call instead of serving.
/// </summary>
public sealed class PoolCommitFailureTests
{
#if DEBUG
    /// <summary>
    /// The commit throws before it changes anything (DEBUG builds check that replicas are clean at every commit; a
    /// replica written behind the pool's back fails that check). Seen failing before the fix: the second write
    /// committed the first one's value too.
    /// </summary>
    [Fact]
    public void CommitThatThrowsBeforeChangingAnything_RollsTheLeaderBack_AndThePoolKeepsServing()
    {
        using GuestPool pool = KvGuest.Pool(replicas: 1);
        Replica replica = pool.ReplicaMemories[0].Replica;
        replica.Memory.GetSpan(60_000, 1)[0] = 1; // a private page the pool does not know about

        var error = Assert.Throws<InvalidOperationException>(() => pool.Write(g =>
        {
            KvGuest.Put(g, 1, 111);
            return 0;
        }));
        Assert.Contains("Invariant violated", error.Message);
        Assert.False(pool.Strategy.IsFaulted);

        pool.Strategy.ResetReplica(replica); // the stray page is gone: commits work again
        pool.Write(g =>
        {
            KvGuest.Put(g, 2, 222);
            return 0;
        });
        Assert.Equal((0L, 222L, 65536 - 16), pool.Read(g => (KvGuest.Get(g, 1), KvGuest.Get(g, 2), KvGuest.Sp(g))));
    }
#endif

    [Fact]
    public async Task CommitThatFaultsTheStrategy_FaultsThePool_EveryLaterCallSaysSo_AndDisposeStillWorks()
    {
        GuestPool pool = KvGuest.Pool(replicas: 2);
        pool.Strategy.Base.Dispose(); // the memfd is gone: the commit fails while writing the base
        Assert.ThrowsAny<ObjectDisposedException>(() => pool.Write(g =>
        {
            KvGuest.Put(g, 1, 111);
            return 0;
        }));
        Assert.True(pool.Strategy.IsFaulted);

        var read = Assert.Throws<InvalidOperationException>(() => pool.Read(g => KvGuest.Get(g, 1)));
        Assert.Contains("The pool is faulted", read.Message);
        Assert.IsAssignableFrom<ObjectDisposedException>(read.InnerException);
        var write = Assert.Throws<InvalidOperationException>(() => pool.Write(g => 0));
        Assert.Contains("The pool is faulted", write.Message);
        await pool.DisposeAsync();
    }

    [Fact]
    public void CommitAndRollbackBothFailing_FaultsThePool()
    {
        using GuestPool pool = KvGuest.Pool(replicas: 1);
        pool.Strategy.LeaderTracker.Dispose(); // collect throws at the commit, and again at the rollback
        Assert.ThrowsAny<ObjectDisposedException>(() => pool.Write(g =>
        {
            KvGuest.Put(g, 1, 111);
            return 0;
        }));
        Assert.False(pool.Strategy.IsFaulted); // nothing reached the base...
        var error = Assert.Throws<InvalidOperationException>(() => pool.Read(g => KvGuest.Get(g, 1)));
        Assert.Contains("The pool is faulted", error.Message); // ...but the leader could not be restored
        Assert.IsType<AggregateException>(error.InnerException);
    }
}
