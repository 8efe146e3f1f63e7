using System.Diagnostics.Metrics;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Pooling;

internal static class KvGuest
{
    public static WasmModule Module => TestModules.Get("kv");

    public static IGuestModule On(GuestRuntime runtime) => TestModules.Get("kv", runtime);

    public static Linker Linker() => new Linker().Define("env", "fail", [], [],
        (caller, args, results) => throw new InvalidOperationException("the host refused"));

    public static GuestPool Pool(SyncOptions? sync = null, int replicas = 3, GuestRuntime runtime = GuestRuntime.Native) =>
        GuestPool.Create(On(runtime), Linker(), new PoolOptions { ReplicaCount = replicas, Sync = sync ?? new SyncOptions() });

    public static void Put(IGuestInstance g, int k, long v) => g.GetFunction("put").Invoke([(uint)k, (ulong)v], []);

    /// <summary>put(k, v) as a write transaction of <paramref name="pool"/>.</summary>
    public static void Put(GuestPool pool, int k, long v) => pool.Write(g =>
    {
        Put(g, k, v);
        return 0;
    });

    public static long Get(IGuestInstance g, int k) => g.GetFunction<int, long>("get")(k);

    public static int Sp(IGuestInstance g) => g.GetFunction<int>("sp")();
}

public sealed class PoolTests
{
    [Fact]
    public void Write_Commits_AndEveryReplicaSeesIt_WithGlobals()
    {
        using GuestPool pool = KvGuest.Pool();
        pool.Write(g =>
        {
            KvGuest.Put(g, 7, 700);
            return 0;
        });
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal((700L, 65536 - 16), pool.Read(g => (KvGuest.Get(g, 7), KvGuest.Sp(g))));
        }
    }

    [Fact]
    public void Read_ScribblesAndTraps_AreGoneBeforeTheNextRead()
    {
        using GuestPool pool = KvGuest.Pool(replicas: 1);
        pool.Write(g =>
        {
            KvGuest.Put(g, 1, 11);
            return 0;
        });
        pool.Read(g =>
        {
            g.GetAction<int>("scribble")(99);
            KvGuest.Put(g, 1, 999);
            return 0;
        });
        var trap = Assert.Throws<WasmTrapException>(() => pool.Read<int>(g =>
        {
            KvGuest.Put(g, 1, 555);
            g.GetFunction("put_then_trap").Invoke([1, 556], []);
            return 0;
        }));
        Assert.Equal(TrapKind.Unreachable, trap.Kind);
        Assert.Equal((11L, 65536 - 16, 0), pool.Read(g => (KvGuest.Get(g, 1), KvGuest.Sp(g), (int)g.GetMemory(8192, 4)[0])));
    }

    [Theory]
    [InlineData("fail")]
    [InlineData("trap")]
    [InlineData("throw")]
    public void FailedWrite_RollsBack_AndThePoolKeepsServing(string how)
    {
        using GuestPool pool = KvGuest.Pool();
        pool.Write(g =>
        {
            KvGuest.Put(g, 3, 30);
            return 0;
        });
        Exception e = Assert.ThrowsAny<Exception>(() => pool.Write<int>(g =>
        {
            g.GetFunction<int, int>("grow")(2);
            KvGuest.Put(g, 3, 31);
            switch (how)
            {
                case "fail": g.GetFunction("put_then_fail").Invoke([3, 32], []); break;
                case "trap": g.GetFunction("put_then_trap").Invoke([3, 33], []); break;
                default: throw new FormatException("caller gave up");
            }

            return 0;
        }));
        Assert.Equal(how switch { "fail" => typeof(WasmTrapException), "trap" => typeof(WasmTrapException), _ => typeof(FormatException) }, e.GetType());
        Assert.Equal((30L, 65536 - 16, 2), pool.Read(g => (KvGuest.Get(g, 3), KvGuest.Sp(g), g.GetFunction<int>("size")())));
        Assert.Equal((30L, 2), pool.Write(g => (KvGuest.Get(g, 3), g.GetFunction<int>("size")())));
    }

    [Fact]
    public void FailedReset_ReplacesTheReplica_SoASingleReplicaPoolKeepsServing()
    {
        using GuestPool pool = KvGuest.Pool(replicas: 1);
        pool.Write(g =>
        {
            KvGuest.Put(g, 3, 33);
            return 0;
        });
        // Break the replica under the read: its reset then fails (the memory is gone).
        Assert.Throws<ObjectDisposedException>(() => pool.Read(g =>
        {
            KvGuest.Put(g, 3, 999);
            ((ReplicaMemory)g.LinearMemory!).Dispose();
            return 0;
        }));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a lost replica would wait forever
        Assert.Equal(33L, pool.Read(g => KvGuest.Get(g, 3), timeout.Token));
        Assert.Equal(1, pool.Strategy.ReplicaCount);
        pool.Write(g =>
        {
            KvGuest.Put(g, 3, 34);
            return 0;
        });
        Assert.Equal(34L, pool.Read(g => KvGuest.Get(g, 3)));
    }

    [Fact]
    public void Write_ThatGrowsMemory_IsFollowedByReplicas()
    {
        using GuestPool pool = KvGuest.Pool();
        pool.Write(g =>
        {
            g.GetFunction<int, int>("grow")(3);
            g.GetMemory(4 * 65536 + 10, 1)[0] = 42;
            return 0;
        });
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal((5, (byte)42), pool.Read(g => (g.GetFunction<int>("size")(), g.GetMemory(4 * 65536 + 10, 1)[0])));
        }
    }

    [Theory]
    [MemberData(nameof(StrategyCases.All), MemberType = typeof(StrategyCases))]
    public void Read_ThatGrowsMemory_GetsScratch_ThatNeverLeaks(SyncStrategyKind strategy, ReplicaResetMode reset)
    {
        using GuestPool pool = KvGuest.Pool(new SyncOptions { Strategy = strategy, ResetMode = reset }, replicas: 2);
        // A rolled-back growth leaves the base longer than the committed length (zero beyond it), so reads below
        // grow into base pages first and then past the base's end.
        Assert.Throws<InvalidOperationException>(() => pool.Write<int>(g =>
        {
            g.GetFunction<int, int>("grow")(1);
            throw new InvalidOperationException("abandon");
        }));
        for (int i = 0; i < 4; i++)
        {
            (int before, int size) = pool.Read(g =>
            {
                int old = g.GetFunction<int, int>("grow")(3);
                g.GetMemory(2 * 65536 + 5, 1)[0] = 0xAA;   // in the rolled-back base page
                g.GetMemory(4 * 65536 + 5, 1)[0] = 0xBB;   // past the base's end
                return (old, g.GetFunction<int>("size")());
            });
            Assert.Equal((2, 5), (before, size));
            Assert.Equal(2, pool.Read(g => g.GetFunction<int>("size")()));
            Assert.Throws<ArgumentOutOfRangeException>(() => pool.Read(g => g.GetMemory(2 * 65536 + 5, 1)[0]));
        }

        pool.Write(g => g.GetFunction<int, int>("grow")(3));
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal((5, (byte)0, (byte)0), pool.Read(g =>
                (g.GetFunction<int>("size")(), g.GetMemory(2 * 65536 + 5, 1)[0], g.GetMemory(4 * 65536 + 5, 1)[0])));
        }
    }

    [Fact]
    public async Task Cancellation_WhileWaitingBehindAWriter_Throws_AndThePoolStillWorks()
    {
        using GuestPool pool = KvGuest.Pool(replicas: 1);
        using var inside = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        Task<int> writer = pool.WriteAsync(async g =>
        {
            inside.Release();
            await release.WaitAsync();
            return 1;
        }).AsTask();
        await inside.WaitAsync();
        using var cancel = new CancellationTokenSource();
        Task<int> reader = pool.ReadAsync(g => ValueTask.FromResult(1), cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reader);
        release.Release();
        Assert.Equal(1, await writer);
        Assert.Equal(0L, await pool.ReadAsync(g => ValueTask.FromResult(KvGuest.Get(g, 0))));
    }

    [Fact]
    public async Task Dispose_WaitsForReadsInFlight_AndRefusesNewWork()
    {
        GuestPool pool = KvGuest.Pool(replicas: 2);
        using var inside = new CountdownEvent(2);
        using var release = new SemaphoreSlim(0);
        Task<long>[] readers = [.. Enumerable.Range(0, 2).Select(_ => pool.ReadAsync(async g =>
        {
            inside.Signal();
            await release.WaitAsync();
            return KvGuest.Get(g, 0);
        }).AsTask())];
        inside.Wait();
        Task waiting = pool.ReadAsync(g => ValueTask.FromResult(0L)).AsTask(); // no idle replica: waits
        Task disposing = pool.DisposeAsync().AsTask();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting);
        Assert.Throws<ObjectDisposedException>(() => pool.Read(g => 0));
        Assert.False(disposing.IsCompleted);
        release.Release(2);
        long[] results = await Task.WhenAll(readers);
        Assert.Equal([0L, 0L], results);
        await disposing;
        await pool.DisposeAsync();
    }

    [Fact]
    public async Task Writer_UnderAContinuousStreamOfReaders_IsNotStarved()
    {
        using GuestPool pool = KvGuest.Pool(replicas: 2);
        using var stop = new CancellationTokenSource();
        Task[] readers = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await pool.ReadAsync(async g =>
                {
                    await Task.Yield();
                    return KvGuest.Get(g, 1);
                });
            }
        }))];
        await Task.Delay(100);
        // Liveness, not speed: with reader preference this write would wait for the readers to stop.
        Task write = pool.WriteAsync(g =>
        {
            KvGuest.Put(g, 1, 1);
            return ValueTask.FromResult(0);
        }).AsTask();
        Task first = await Task.WhenAny(write, Task.Delay(TimeSpan.FromSeconds(30)));
        await stop.CancelAsync();
        await Task.WhenAll(readers);
        Assert.Same(write, first);
        Assert.Equal(1L, pool.Read(g => KvGuest.Get(g, 1)));
    }

    [Fact]
    public void Options_AreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => KvGuest.Pool(replicas: 0));
        var noMemory = TestModules.Assemble("(module (func (export \"f\")))");
        using WasmModule module = WasmModule.Load(noMemory, TestModules.Cache);
        Assert.Throws<ArgumentException>(() => GuestPool.Create(module, new Linker()));
    }

    [Fact]
    public void Metrics_CountCommitsRollbacksAndDirtyPages()
    {
        long commits = 0, rollbacks = 0, dirty = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == GuestPool.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        using GuestPool pool = KvGuest.Pool();
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) =>
        {
            // Pools in other tests publish under the same meter name: count only this pool's measurements.
            if (Equals(tags.ToArray().FirstOrDefault(t => t.Key == "pool").Value, pool.Options.Name))
            {
                switch (instrument.Name)
                {
                    case "cowwasm.pool.commits": Interlocked.Add(ref commits, value); break;
                    case "cowwasm.pool.rollbacks": Interlocked.Add(ref rollbacks, value); break;
                    case "cowwasm.pool.commit.dirty_pages": Interlocked.Add(ref dirty, value); break;
                }
            }
        });
        listener.Start();
        pool.Write(g =>
        {
            KvGuest.Put(g, 1, 1);
            return 0;
        });
        Assert.ThrowsAny<Exception>(() => pool.Write<int>(g => throw new TimeoutException()));
        Assert.Equal(1, commits);
        Assert.Equal(1, rollbacks);
        Assert.Equal(1, dirty); // one slot page (the global lives outside memory)
    }
}
