using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>A guest that never returns is stopped from another thread, and the instance keeps working.</summary>
public sealed class InterruptionTests
{
    public static TheoryData<BoundsChecks, string> Spins() => new()
    {
        { BoundsChecks.GuardPages, "spin" }, { BoundsChecks.GuardPages, "spin_calls" }, { BoundsChecks.GuardPages, "outer" },
        { BoundsChecks.Software, "spin" }, { BoundsChecks.Software, "spin_calls" }, { BoundsChecks.Software, "outer" },
    };

    [Theory]
    [MemberData(nameof(Spins))]
    public async Task ACancelledToken_StopsAGuestThatNeverReturns_AndTheInstanceRunsOn(BoundsChecks checks, string export)
    {
        using WasmInstance guest = BoundsGuest.Create(checks);
        for (int round = 0; round < 3; round++)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(30));
            // A liveness bound, not a speed claim (latency is measured by ./run.sh --guest trealla): a guest that is
            // never stopped fails the test instead of hanging the run.
            Task<int> call = Task.Run(() => guest.RunInterruptible(() => guest.Call(export), cancel.Token));
            var e = await Assert.ThrowsAsync<OperationCanceledException>(() => call.WaitAsync(TimeSpan.FromMinutes(1)));
            Assert.Equal(cancel.Token, e.CancellationToken);
            Assert.Equal(TrapKind.Interrupted, Assert.IsType<WasmTrapException>(e.InnerException).Kind);
            Assert.False(guest.IsInterruptRequested);
            Assert.Equal(0, guest.Call("count", 100_000)); // runs to the end: nothing left pending
        }
    }

    [Fact]
    public async Task Interrupt_FromAnotherThread_StopsTheRunningCall_AndStaysUntilCleared()
    {
        using WasmInstance guest = BoundsGuest.Create(TestModules.Mode);
        using var running = new ManualResetEventSlim();
        var call = Task.Run(() =>
        {
            running.Set();
            return BoundsGuest.TrapOf(() => guest.Call("spin"));
        });
        running.Wait();
        Thread.Sleep(20);
        guest.Interrupt();
        Assert.Equal(TrapKind.Interrupted, await call.WaitAsync(TimeSpan.FromSeconds(10)));

        // Pending until cleared: a call made meanwhile traps at its first function entry.
        Assert.Equal(TrapKind.Interrupted, BoundsGuest.TrapOf(() => guest.Call("count", 5)));
        guest.ClearInterrupt();
        Assert.Equal(0, guest.Call("count", 5));
    }

    [Fact]
    public void AnAlreadyCancelledToken_RunsNothing()
    {
        using WasmInstance guest = BoundsGuest.Create(TestModules.Mode);
        int calls = 0;
        Assert.Throws<OperationCanceledException>(() => guest.RunInterruptible(() => ++calls, new CancellationToken(canceled: true)));
        Assert.Equal(0, calls);
    }

    [Fact]
    public void AnInterruptedClone_LeavesItsTemplateAndSiblingsRunning()
    {
        using WasmInstance template = BoundsGuest.Create(TestModules.Mode);
        using WasmInstance clone = template.Clone(new StandaloneMemory(16, 64, template.Module.MemoryReservationBytes));
        clone.Interrupt();
        Assert.Equal(TrapKind.Interrupted, BoundsGuest.TrapOf(() => clone.Call("count", 5)));
        Assert.Equal(0, template.Call("count", 5));
        using WasmInstance sibling = template.Clone(new StandaloneMemory(16, 64, template.Module.MemoryReservationBytes));
        Assert.Equal(0, sibling.Call("count", 5));
    }
}
