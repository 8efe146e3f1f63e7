using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Runtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Pooling;

/// <summary>Reads and writes whose guest never returns are interrupted by their token or timeout; the pool serves on.</summary>
public sealed class PoolInterruptionTests
{
    private static GuestPool Create(TimeSpan? timeout = null) =>
        GuestPool.Create(TestModules.Get("bounds"), BoundsGuest.Linker(), new PoolOptions
        {
            ReplicaCount = 1,
            Sync = new SyncOptions { Strategy = SyncStrategyKind.SharedBase, ReplicaTracker = TrackerKind.StoreBarrier },
            TransactionTimeout = timeout ?? TimeSpan.FromSeconds(30),
        });

    private static int Load32(IGuestInstance guest, uint address) => ((WasmInstance)guest).Load32(address);

    [Fact]
    public async Task ARunningRead_IsInterruptedByItsToken_AndItsReplicaServesTheNextRead()
    {
        await using GuestPool pool = Create();
        await pool.WriteAsync(g => ValueTask.FromResult(((WasmInstance)g).Call("store32", 64, 7)));
        for (int round = 0; round < 3; round++)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(30));
            var e = await Assert.ThrowsAsync<OperationCanceledException>(async () => await pool.ReadAsync(g =>
            {
                ((WasmInstance)g).Call("store32", 64, 99); // a read effect the reset must drop
                return ValueTask.FromResult(((WasmInstance)g).Call("spin"));
            }, cancel.Token));
            Assert.Equal(TrapKind.Interrupted, Assert.IsType<WasmTrapException>(e.InnerException).Kind);
            Assert.Equal(7, await pool.ReadAsync(g => ValueTask.FromResult(Load32(g, 64))));
        }
    }

    [Fact]
    public async Task ARunningWrite_PastItsTimeout_IsInterruptedAndRolledBack()
    {
        await using GuestPool pool = Create();
        var e = await Assert.ThrowsAsync<TimeoutException>(async () => await pool.WriteAsync(g =>
        {
            ((WasmInstance)g).Call("store32", 64, 42);
            return ValueTask.FromResult(((WasmInstance)g).Call("spin_calls"));
        }, TimeSpan.FromMilliseconds(40)));
        Assert.Equal(TrapKind.Interrupted, Assert.IsType<WasmTrapException>(e.InnerException).Kind);
        Assert.Equal(0, await pool.ReadAsync(g => ValueTask.FromResult(Load32(g, 64))));

        await pool.WriteAsync(g => ValueTask.FromResult(((WasmInstance)g).Call("store32", 64, 43)));
        Assert.Equal(43, await pool.ReadAsync(g => ValueTask.FromResult(Load32(g, 64))));
    }

    [Fact]
    public void ThePoolsDefaultTimeout_AppliesToSynchronousReadsAndWrites()
    {
        using GuestPool pool = Create(TimeSpan.FromMilliseconds(40));
        Assert.Throws<TimeoutException>(() => pool.Read(g => ((WasmInstance)g).Call("spin")));
        Assert.Throws<TimeoutException>(() => pool.Write(g => ((WasmInstance)g).Call("outer")));
        Assert.Equal(0, pool.Read(g => ((WasmInstance)g).Call("count", 1000)));
        Assert.Equal(0, pool.Write(g => ((WasmInstance)g).Call("count", 1000)));
    }

    [Fact]
    public void InvalidTimeouts_AreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Create(TimeSpan.Zero));
        using GuestPool pool = Create(Timeout.InfiniteTimeSpan);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Read(g => 0, TimeSpan.FromMilliseconds(-5)));
        Assert.Equal(0, pool.Read(g => ((WasmInstance)g).Call("count", 3), Timeout.InfiniteTimeSpan));
    }
}
