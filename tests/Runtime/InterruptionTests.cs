using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>A guest that never returns is stopped from another thread, and the instance keeps working.</summary>
public sealed class InterruptionTests
{
    public static TheoryData<GuestRuntime, BoundsChecks, string> Spins()
    {
        var data = new TheoryData<GuestRuntime, BoundsChecks, string>();
        foreach ((GuestRuntime runtime, BoundsChecks checks) in new[]
        {
            (GuestRuntime.Native, BoundsChecks.GuardPages), (GuestRuntime.Native, BoundsChecks.Software), (GuestRuntime.Wasmtime, BoundsChecks.GuardPages),
        })
        {
            foreach (string export in new[] { "spin", "spin_calls", "outer" })
            {
                data.Add(runtime, checks, export);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Spins))]
    public async Task ACancelledToken_StopsAGuestThatNeverReturns_AndTheInstanceRunsOn(GuestRuntime runtime, BoundsChecks checks, string export)
    {
        using IGuestInstance guest = BoundsGuest.Create(runtime, checks);
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

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public async Task Interrupt_FromAnotherThread_StopsTheRunningCall_AndStaysUntilCleared(GuestRuntime runtime)
    {
        using IGuestInstance guest = BoundsGuest.Create(runtime, TestModules.Mode);
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

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void AnAlreadyCancelledToken_RunsNothing(GuestRuntime runtime)
    {
        using IGuestInstance guest = BoundsGuest.Create(runtime, TestModules.Mode);
        int calls = 0;
        Assert.Throws<OperationCanceledException>(() => guest.RunInterruptible(() => ++calls, new CancellationToken(canceled: true)));
        Assert.Equal(0, calls);
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void AnInterruptedClone_LeavesItsTemplateAndSiblingsRunning(GuestRuntime runtime)
    {
        using IGuestInstance template = BoundsGuest.Create(runtime, TestModules.Mode);
        using IGuestInstance clone = template.Clone(new StandaloneMemory(16, 64, template.Memory!.ReservedBytes));
        clone.Interrupt();
        Assert.Equal(TrapKind.Interrupted, BoundsGuest.TrapOf(() => clone.Call("count", 5)));
        Assert.Equal(0, template.Call("count", 5));
        using IGuestInstance sibling = template.Clone(new StandaloneMemory(16, 64, template.Memory!.ReservedBytes));
        Assert.Equal(0, sibling.Call("count", 5));
    }
}
