using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Pool.Log;
using CowWasm.Runtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// A pool with a commit log: every acknowledged write is in the log, a new pool replays it (alone, or after a snapshot)
/// to the same state, concurrent writers share fsyncs, and a log that does not match the pool is refused.
/// </summary>
public sealed class DurablePoolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-durable-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string LogDir => Path.Combine(_dir, "log");

    private static CommitLog OpenLog(string dir, IGuestModule module) => CommitLog.Open(dir, PoolSnapshot.ModuleHashOf(module));

    private static GuestPool NewPool(GuestRuntime runtime, string? snapshot = null) => snapshot is null
        ? GuestPool.Create(KvGuest.On(runtime), KvGuest.Linker(), new PoolOptions { ReplicaCount = 2 })
        : GuestPool.CreateFromSnapshot(KvGuest.On(runtime), KvGuest.Linker(), snapshot, new PoolOptions { ReplicaCount = 2 });

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public async Task AcknowledgedWrites_AreReplayed_ByANewPool_WithGlobalsAndGrowth(GuestRuntime runtime)
    {
        IGuestModule module = KvGuest.On(runtime);
        using (CommitLog log = OpenLog(LogDir, module))
        using (GuestPool pool = NewPool(runtime))
        {
            await pool.AttachLogAsync(log);
            for (int k = 0; k < 20; k++)
            {
                await pool.WriteAsync(g =>
                {
                    KvGuest.Put(g, k, k * 1000L);
                    return ValueTask.FromResult(0);
                });
            }

            await pool.WriteAsync(g => ValueTask.FromResult(g.GetFunction<int, int>("grow")(3)));
            Assert.Equal(pool.CommitSequence, log.LastSequence);
            // no snapshot, no graceful anything: the pool and the log are simply dropped
        }

        using CommitLog reopened = OpenLog(LogDir, module);
        using GuestPool fresh = NewPool(runtime);
        Assert.Equal(21, await fresh.ReplayAsync(reopened));
        await fresh.AttachLogAsync(reopened);
        Assert.Equal((19000L, 65536 - 16 * 20, 5), fresh.Read(g => (KvGuest.Get(g, 19), KvGuest.Sp(g), g.GetFunction<int>("size")())));
        await fresh.WriteAsync(g =>
        {
            KvGuest.Put(g, 1, -1);
            return ValueTask.FromResult(0);
        });
        Assert.Equal(22, reopened.LastSequence);
    }

    [Fact]
    public async Task ASnapshot_ThenTheLogAfterIt_RestoresTheState_AndCoveredSegmentsCanGo()
    {
        IGuestModule module = KvGuest.On(GuestRuntime.Wasmtime);
        string snapshot = Path.Combine(_dir, "kv.snap");
        using (CommitLog log = CommitLog.Open(LogDir, PoolSnapshot.ModuleHashOf(module), segmentBytes: 4096))
        using (GuestPool pool = NewPool(GuestRuntime.Wasmtime))
        {
            await pool.AttachLogAsync(log);
            for (int k = 0; k < 30; k++)
            {
                KvGuest.Put(pool, k, k + 1);
            }

            long saved = await pool.SaveSnapshotAsync(snapshot);
            Assert.Equal(30, saved);
            Assert.True(log.DeleteThrough(saved) > 0);
            for (int k = 30; k < 40; k++)
            {
                KvGuest.Put(pool, k, k + 1);
            }
        }

        using CommitLog reopened = CommitLog.Open(LogDir, PoolSnapshot.ModuleHashOf(module), segmentBytes: 4096);
        using GuestPool fresh = NewPool(GuestRuntime.Wasmtime, snapshot);
        Assert.Equal(10, await fresh.ReplayAsync(reopened));
        Assert.Equal(Enumerable.Range(1, 40).Select(v => (long)v), fresh.Read(g => Enumerable.Range(0, 40).Select(k => KvGuest.Get(g, k)).ToArray()));
    }

    [Fact]
    public async Task ConcurrentWriters_ShareFsyncs_AndEachReplyMeansDurable()
    {
        IGuestModule module = KvGuest.On(GuestRuntime.Native);
        using CommitLog log = OpenLog(LogDir, module);
        using GuestPool pool = NewPool(GuestRuntime.Native);
        await pool.AttachLogAsync(log);
        await Task.WhenAll(Enumerable.Range(0, 32).Select(k => Task.Run(async () =>
        {
            for (int i = 0; i < 10; i++)
            {
                await pool.WriteAsync(g =>
                {
                    KvGuest.Put(g, k, i);
                    return ValueTask.FromResult(0);
                });
                Assert.True(log.LastSequence >= 1);
            }
        })));
        Assert.Equal(320, log.LastSequence);
        Assert.True(log.Flushes < 320, $"{log.Flushes} fsyncs for 320 commits");
    }

    [Fact]
    public async Task ALogThatDoesNotMatchThePool_IsRefused_SayingWhy()
    {
        IGuestModule module = KvGuest.On(GuestRuntime.Native);
        using (CommitLog log = OpenLog(LogDir, module))
        using (GuestPool pool = NewPool(GuestRuntime.Native))
        {
            await pool.AttachLogAsync(log);
            KvGuest.Put(pool, 1, 1);
        }

        using (CommitLog ahead = OpenLog(LogDir, module))
        using (GuestPool fresh = NewPool(GuestRuntime.Native))
        {
            Assert.Contains("replay it first", (await Assert.ThrowsAsync<InvalidOperationException>(() => fresh.AttachLogAsync(ahead).AsTask())).Message);
            await fresh.ReplayAsync(ahead);
            await fresh.AttachLogAsync(ahead);
            await Assert.ThrowsAsync<InvalidOperationException>(() => fresh.ReplayAsync(ahead).AsTask());
            Assert.Contains("open elsewhere", Assert.Throws<IOException>(() => OpenLog(LogDir, module)).Message);
        }

        var e = Assert.Throws<CommitLogFormatException>(() => CommitLog.Open(LogDir, PoolSnapshot.ModuleHashOf(TestModules.Get("basic"))));
        Assert.Contains("another module", e.Message);
    }

    [Fact]
    public async Task ALogOfAnotherHistory_IsRefused_OnReplay_AndOnAttach_AndNothingOfItIsApplied()
    {
        IGuestModule module = KvGuest.On(GuestRuntime.Native);
        string snapshot = Path.Combine(_dir, "at2.snap"), otherLog = Path.Combine(_dir, "other-log");
        // History A: commits 1..4 in the log, a snapshot at 2.
        using (CommitLog log = OpenLog(LogDir, module))
        using (GuestPool pool = NewPool(GuestRuntime.Native))
        {
            await pool.AttachLogAsync(log);
            KvGuest.Put(pool, 1, 1);
            KvGuest.Put(pool, 2, 2);
            await pool.SaveSnapshotAsync(snapshot);
            KvGuest.Put(pool, 3, 3);
            KvGuest.Put(pool, 4, 4);
        }

        // History B: the same snapshot, then another commit 3 and 4 in a second log.
        using (CommitLog log = CommitLog.Open(otherLog, PoolSnapshot.ModuleHashOf(module), emptyAfter: 2))
        using (GuestPool pool = NewPool(GuestRuntime.Native, snapshot))
        {
            await pool.AttachLogAsync(log);
            KvGuest.Put(pool, 3, 300);
            KvGuest.Put(pool, 4, 400);
        }

        // A pool of history B at commit 4 (snapshot + its own log) meets A's log: the same sequence, another history.
        using (CommitLog own = CommitLog.Open(otherLog, PoolSnapshot.ModuleHashOf(module), emptyAfter: 2))
        using (GuestPool b = NewPool(GuestRuntime.Native, snapshot))
        using (CommitLog a = OpenLog(LogDir, module))
        {
            await b.ReplayAsync(own);
            Assert.Equal((4L, 400L), (b.CommitSequence, b.Read(g => KvGuest.Get(g, 4))));
            var attach = await Assert.ThrowsAsync<InvalidOperationException>(() => b.AttachLogAsync(a).AsTask());
            Assert.Contains("belongs to another history", attach.Message);
        }

        // A pool from the snapshot at 2 that made a commit 3 of its own replays A's log after it: A's commit 4 follows A's
        // commit 3, not this one.
        using (CommitLog a = OpenLog(LogDir, module))
        using (GuestPool b = NewPool(GuestRuntime.Native, snapshot))
        {
            KvGuest.Put(b, 3, 300);
            var replay = await Assert.ThrowsAsync<CommitHistoryException>(() => b.ReplayAsync(a).AsTask());
            Assert.Contains($"the commit log {LogDir}", replay.Message);
            Assert.Equal(4, replay.Sequence);
            Assert.Equal((3L, 300L, 0L), (b.CommitSequence, b.Read(g => KvGuest.Get(g, 3)), b.Read(g => KvGuest.Get(g, 4))));
        }
    }
}
