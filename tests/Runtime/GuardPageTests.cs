using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// Out-of-bounds accesses trap at every edge in both bounds-check modes; in guard-page mode through the chaining fault
/// handler (its claimed-fault count proves the software check is gone), alongside .NET's own NullReferenceExceptions.
/// </summary>
public sealed class GuardPageTests
{
    public static TheoryData<BoundsChecks> Modes() => [BoundsChecks.GuardPages, BoundsChecks.Software];

    [Theory]
    [MemberData(nameof(Modes))]
    public void Accesses_AtEveryEdgeOfOnePage_TrapExactlyPastTheEnd(BoundsChecks checks)
    {
        using WasmInstance guest = BoundsGuest.Create(checks);
        Assert.Equal(checks, guest.Module.BoundsChecks);
        long claimedBefore = GuardPages.ClaimedFaults;
        guest.Call("store8", 65535, 0x5A);
        Assert.Equal(0x5A, guest.Load8(65535)); // the last byte
        Assert.Equal(0x5A << 24, guest.Load32(65532));
        Assert.Equal(0x5AL << 56, guest.Load64(65528));

        (string Export, ulong Address)[] outside =
        [
            ("load8", 65536), ("load16", 65535), ("load32", 65533), ("load64", 65529), ("load8", uint.MaxValue),
            ("load32_max_offset", 0), ("load32_max_offset", uint.MaxValue), // address + offset up to 2^33 - 2
            ("load64_offset_64k", 0),
        ];
        foreach ((string export, ulong address) in outside)
        {
            Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.Call(export, address)));
        }

        // A store straddling the end writes nothing, not even its in-bounds bytes.
        Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.Call("store32", 65534, 0x11223344)));
        Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.Call("store64", 65535, 0x1122334455667788)));
        Assert.Equal(0x5A, guest.Load8(65535));
        Assert.Equal(0, guest.Load8(65534));

        long claimed = GuardPages.ClaimedFaults - claimedBefore;
        if (checks == BoundsChecks.GuardPages)
        {
            Assert.True(claimed >= outside.Length + 2, $"the handler claimed {claimed} faults for {outside.Length + 2} traps");
            Assert.Equal(GuardPages.ReservationBytes, guest.Memory!.ReservedBytes);
        }
        else
        {
            Assert.True(guest.Memory!.ReservedBytes < GuardPages.ReservationBytes);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void AfterGrowth_TheNewPagesAreInBounds_AndTheNextOnesAreNot(BoundsChecks checks)
    {
        using WasmInstance guest = BoundsGuest.Create(checks);
        Assert.Equal(1, guest.Call("grow", 1));
        Assert.Equal(0, guest.Load8(65536));
        Assert.Equal(0L, guest.Load64(131064));
        Assert.Equal(0L, (long)guest.CallRaw("load64_offset_64k", 65528)); // 65528 + 65536 + 8 = the new end
        Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.Load8(131072)));
        Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.CallRaw("load64_offset_64k", 65529)));
        Assert.Equal(2, guest.Call("grow", 2));
        Assert.Equal(-1, guest.Call("grow", 1)); // past the declared maximum of 4
        Assert.Equal(0, guest.Load8(4 * 65536 - 1));
        Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.Load8(4 * 65536)));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void AReplicasScratchGrowth_IsOutOfBoundsAgain_AfterTheReadThatGrewIt(BoundsChecks checks)
    {
        WasmModule module = TestModules.Get("bounds", checks);
        var sync = new SyncOptions { Strategy = SyncStrategyKind.SharedBase, ReplicaTracker = TrackerKind.StoreBarrier };
        using var pool = GuestPool.Create(module, BoundsGuest.Linker(), new PoolOptions { ReplicaCount = 1, Sync = sync });
        int grownTo = pool.Read(g =>
        {
            var guest = (WasmInstance)g;
            Assert.Equal(1, guest.Call("grow", 1));
            guest.Call("store8", 65536 + 7, 9);
            return guest.Load8(65536 + 7);
        });
        Assert.Equal(9, grownTo);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => pool.Read(g => ((WasmInstance)g).Load8(65536 + 7))));
            Assert.Equal(0x1000, pool.Read(g => ((WasmInstance)g).Call("count", 0x1001) + 0x1000));
        }

        if (checks == BoundsChecks.GuardPages)
        {
            Assert.True(pool.Strategy.Leader.ReservedBytes >= GuardPages.ReservationBytes);
        }
    }

    [Fact]
    public void NullReferenceExceptionsAndGuardPageTraps_OnFourThreadsAtOnce_AreEachTheirOwn()
    {
        const int Rounds = 2000;
        using var start = new Barrier(4);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        long claimedBefore = GuardPages.ClaimedFaults;
        Thread[] threads = [.. Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            try
            {
                using WasmInstance guest = BoundsGuest.Create(BoundsChecks.GuardPages);
                string? nothing = t < 0 ? "never" : null;
                start.SignalAndWait();
                for (int i = 0; i < Rounds; i++)
                {
                    Assert.Throws<NullReferenceException>(() => nothing!.Length);
                    Assert.Equal(TrapKind.OutOfBounds, BoundsGuest.TrapOf(() => guest.Load32((uint)(65533 + (i % 3)))));
                    Assert.Equal(0, guest.Load8((uint)(i % 65536)));
                }
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        }))];
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        Assert.Empty(failures);
        Assert.True(GuardPages.ClaimedFaults - claimedBefore >= 4 * Rounds);
    }

    [Fact]
    public void AMemoryFactoryThatIgnoresTheReservation_IsRefused()
    {
        WasmModule module = TestModules.Get("bounds", BoundsChecks.GuardPages);
        var options = new InstanceOptions { Memory = (initial, max, reserved) => new StandaloneMemory(initial, max) };
        var e = Assert.Throws<WasmTrapException>(() => module.Instantiate(BoundsGuest.Linker(), options));
        Assert.Equal(TrapKind.OutOfMemory, e.Kind);
        Assert.Contains("reservation", e.InnerException!.Message);
    }
}
