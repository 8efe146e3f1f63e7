using CowWasm.Memory.Sharing;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// A pool's followers (GuestPool.ServeFollowers, FollowerPool): the guest's memory and globals reach them through a
/// Unix socket and the shared base; they are attached and detached at random; another module is refused.
/// </summary>
public sealed class FollowerPoolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-pool-follow-").FullName;

    private string SocketPath => Path.Combine(_dir, "pool.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task UntilAsync(Func<bool> condition)
    {
        for (int i = 0; i < 2000 && !condition(); i++)
        {
            await Task.Delay(5);
        }

        Assert.True(condition(), "timed out");
    }

    [Fact]
    public async Task Followers_EqualTheLeader_AfterEveryCommit_ThroughRollbacksAttachesAndDetaches()
    {
        await using GuestPool pool = KvGuest.Pool(replicas: 1);
        FollowerHub hub = pool.ServeFollowers(SocketPath);
        var model = new Dictionary<int, long>();
        int sp = 65536;
        var followers = new List<FollowerPool>();
        var random = new Random(1123);
        int attached = 0;
        try
        {
            for (int step = 0; step < 50; step++)
            {
                switch (random.Next(10))
                {
                    case 0 when followers.Count < 3:
                        followers.Add(FollowerPool.Connect(KvGuest.Module, KvGuest.Linker(), SocketPath, new FollowerPoolOptions { ReplicaCount = 2 }));
                        attached++;
                        break;
                    case 1 when followers.Count > 0:
                        int gone = random.Next(followers.Count);
                        followers[gone].Dispose();
                        followers.RemoveAt(gone);
                        break;
                    case 2:
                        int k0 = random.Next(64);
                        Assert.ThrowsAny<Exception>(() => pool.Write<int>(g =>
                        {
                            g.GetFunction("put_then_fail").Invoke([(uint)k0, 999], []);
                            return 0;
                        })); // rolled back: followers never hear of it
                        break;
                    default:
                        int k = random.Next(64);
                        long v = random.NextInt64(1, long.MaxValue);
                        pool.Write(g =>
                        {
                            KvGuest.Put(g, k, v);
                            return 0;
                        });
                        model[k] = v;
                        sp -= 16;
                        break;
                }

                Assert.Equal(pool.CommitSequence, hub.Sequence); // one numbering for the pool, its hub and its followers
                foreach (FollowerPool follower in followers)
                {
                    await UntilAsync(() => follower.Sequence == hub.Sequence);
                    for (int r = 0; r < 3; r++) // visits both replicas
                    {
                        FollowerRead<Dictionary<int, long>> read = await follower.ReadAsync(g =>
                        {
                            var seen = Enumerable.Range(0, 64).ToDictionary(i => i, i => KvGuest.Get(g, i));
                            g.GetAction<int>("scribble")(step); // a read's effects (memory and the global): gone before the next read
                            return ValueTask.FromResult(seen);
                        });
                        Assert.Equal(hub.Sequence, read.Sequence);
                        foreach ((int key, long value) in read.Result)
                        {
                            Assert.Equal(model.GetValueOrDefault(key), value);
                        }
                    }

                    FollowerRead<int> spRead = await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Sp(g)));
                    Assert.Equal(sp, spRead.Result); // the globals travelled with the commit
                }
            }
        }
        finally
        {
            followers.ForEach(f => f.Dispose());
        }

        Assert.True(attached >= 3, $"only {attached} followers attached: the walk did not exercise attaching");
    }

    [Fact]
    public async Task APoolLoadedFromASnapshot_ServesFollowers_AfterCopyingTheFileIntoMemory()
    {
        string snapshot = Path.Combine(_dir, "kv.snap");
        await using (GuestPool original = KvGuest.Pool(replicas: 1))
        {
            original.Write(g =>
            {
                KvGuest.Put(g, 5, 555);
                return 0;
            });
            original.SaveSnapshot(snapshot);
        }

        await using GuestPool pool = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), snapshot, new PoolOptions { ReplicaCount = 1 });
        FollowerHub hub = await pool.ServeFollowersAsync(SocketPath);
        using FollowerPool follower = FollowerPool.Connect(KvGuest.Module, KvGuest.Linker(), SocketPath);
        Assert.Equal(555, (await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Get(g, 5)))).Result);
        Assert.Equal(555, pool.Read(g => KvGuest.Get(g, 5))); // the pool's own replicas were remapped onto the copy
        pool.Write(g =>
        {
            KvGuest.Put(g, 6, 666);
            return 0;
        });
        await UntilAsync(() => follower.Sequence == hub.Sequence);
        Assert.Equal((2L, 2L), (pool.CommitSequence, follower.Sequence)); // the snapshot's commit 1, then this write
        Assert.Equal((555L, 666L), (await follower.ReadAsync(g => ValueTask.FromResult((KvGuest.Get(g, 5), KvGuest.Get(g, 6))))).Result);
    }

    [Fact]
    public async Task AFollowerConnectingDuringAWrite_GetsTheCommittedState_NotTheWritesGlobals()
    {
        await using GuestPool pool = KvGuest.Pool(replicas: 1);
        pool.Write(g =>
        {
            KvGuest.Put(g, 1, 10);
            return 0;
        });
        FollowerHub hub = await pool.ServeFollowersAsync(SocketPath);
        var inside = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        Task write = Task.Run(() => pool.WriteAsync(async g =>
        {
            KvGuest.Put(g, 1, 20); // moves the leader's stack-pointer global too
            inside.SetResult();
            await release.Task;
            return 0;
        }).AsTask());
        await inside.Task;
        try
        {
            using FollowerPool follower = FollowerPool.Connect(KvGuest.Module, KvGuest.Linker(), SocketPath);
            FollowerRead<(long, int)> read = await follower.ReadAsync(g => ValueTask.FromResult((KvGuest.Get(g, 1), KvGuest.Sp(g))));
            Assert.Equal((10L, 65536 - 16), read.Result);
            Assert.Equal(hub.Sequence, read.Sequence);
            release.SetResult();
            await write;
            await UntilAsync(() => follower.Sequence == hub.Sequence);
            Assert.Equal((20L, 65536 - 32), (await follower.ReadAsync(g => ValueTask.FromResult((KvGuest.Get(g, 1), KvGuest.Sp(g))))).Result);
        }
        finally
        {
            release.TrySetResult(); // a failed assertion must not leave the write (and the pool's disposal) waiting
            await write;
        }
    }

    [Fact]
    public async Task AFollowerOfAnotherModule_IsRefused()
    {
        await using GuestPool pool = KvGuest.Pool(replicas: 1);
        pool.ServeFollowers(SocketPath);
        WasmModule basic = TestModules.Get("basic");
        var refused = Assert.Throws<InvalidDataException>(() =>
            FollowerPool.Connect(basic, TestModules.BasicLinker(basic), SocketPath, new FollowerPoolOptions
            {
                Instance = new InstanceOptions { Wasi = new CowWasm.Runtime.Wasi.WasiConfiguration() },
            }));
        Assert.Contains("another module", refused.Message);
        Assert.Throws<InvalidOperationException>(() => pool.ServeFollowers(Path.Combine(_dir, "second.sock")));
    }

    [Fact]
    public async Task CommittedTableChanges_CannotBeFollowed_AndSaySo()
    {
        await using GuestPool pool = GuestPool.Create(TestModules.Get("tables"), new Linker(), new PoolOptions { ReplicaCount = 1 });
        FollowerHub hub = pool.ServeFollowers(SocketPath);
        using FollowerPool follower = FollowerPool.Connect(TestModules.Get("tables"), new Linker(), SocketPath, new FollowerPoolOptions { ReplicaCount = 1 });
        Assert.Equal(1, (await follower.ReadAsync(g => ValueTask.FromResult(g.GetFunction<int, int>("call")(1)))).Result);
        await follower.ReadAsync(g =>
        {
            g.GetAction<int>("set_two")(1); // a read's table change: gone before the next read
            return ValueTask.FromResult(0);
        });
        Assert.Equal(1, (await follower.ReadAsync(g => ValueTask.FromResult(g.GetFunction<int, int>("call")(1)))).Result);
        pool.Write(g =>
        {
            g.GetAction<int>("set_two")(1);
            return 0;
        });
        await UntilAsync(() => follower.Sequence == hub.Sequence);
        var refused = await Assert.ThrowsAsync<NotSupportedException>(() => follower.ReadAsync(g => ValueTask.FromResult(0)).AsTask());
        Assert.Contains("tables", refused.Message);
    }
}
