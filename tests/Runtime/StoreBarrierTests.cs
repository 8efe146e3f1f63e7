using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// The store barrier in generated code: a guest that stores at random addresses with every store kind, fills and
/// copies; the store-barrier tracker must report exactly the pages the CoW-file view shows as private copies (every
/// write, and nothing else), the bytes must match a byte-array model, and a fill of bytes already there writes nothing.
/// </summary>
public sealed class StoreBarrierTests
{
    private static readonly (string Export, int Width)[] s_stores =
    [
        ("i32_store8", 1), ("i32_store16", 2), ("i32_store", 4), ("i64_store8", 1), ("i64_store16", 2),
        ("i64_store32", 4), ("i64_store", 8), ("f32_store", 4), ("f64_store", 8),
    ];

    private sealed record Op(int Kind, int Address, long Value, int Length, int Source);

    private static (WasmInstance Guest, SyncStrategy Sync) Leader()
    {
        WasmModule module = TestModules.Get("stores");
        WasmInstance guest = module.Instantiate(new Linker(), new InstanceOptions
        {
            Memory = LeaderMemory.For(new SyncOptions { LeaderTracker = TrackerKind.StoreBarrier }),
        });
        SyncStrategy sync = ((LeaderMemory)guest.LinearMemory!).Strategy;
        sync.Commit();
        return (guest, sync);
    }

    [Fact]
    public void EveryStoreKindAndBulkOp_IsReported_ExactlyAsTheCopyOnWriteView()
    {
        const int size = 4 * 65536;
        Gen<Op> op = Gen.Choose(0, s_stores.Length + 1).SelectMany(kind =>
            Gen.Choose(0, size - 8).SelectMany(address =>
                Gen.Choose(0, 3 * 4096).SelectMany(length =>
                    Gen.Choose(0, size - 3 * 4096).SelectMany(source =>
                        Gen.Elements(0L, 1L, -1L, 0x1234_5678_9ABC_DEF0L).Select(value => new Op(kind, address, value, length, source))))));
        Properties.Check(op.ListOf().Select(l => l.ToArray()).ToArbitrary(), ops =>
        {
            (WasmInstance guest, SyncStrategy sync) = Leader();
            using (guest)
            {
                byte[] model = guest.ReadMemory(0, size).ToArray();
                foreach (Op o in ops)
                {
                    Apply(guest, model, o, size);
                }

                Assert.True(guest.ReadMemory(0, size).SequenceEqual(model), "memory differs from the model");
                var cow = new List<PageRun>();
                ((CowView)sync.Leader).CollectPrivatePages(cow);
                IReadOnlyList<PageRun> barrier = sync.LeaderTracker.Collect();
                Assert.Equal(cow, barrier);
                sync.Rollback();
            }
        }, "store barrier = CoW copies");
    }

    private static void Apply(WasmInstance guest, byte[] model, Op o, int size)
    {
        if (o.Kind < s_stores.Length)
        {
            (string export, int width) = s_stores[o.Kind];
            guest.GetFunction(export).Invoke([(uint)o.Address, (ulong)o.Value], []);
            BitConverter.GetBytes(o.Value).AsSpan(0, width).CopyTo(model.AsSpan(o.Address));
        }
        else if (o.Kind == s_stores.Length)
        {
            int length = Math.Min(o.Length, size - o.Address);
            guest.GetFunction("fill").Invoke([(uint)o.Address, (ulong)(o.Value & 0xFF), (uint)length], []);
            model.AsSpan(o.Address, length).Fill((byte)o.Value);
        }
        else
        {
            int length = Math.Min(o.Length, size - o.Address);
            guest.GetFunction("copy").Invoke([(uint)o.Address, (uint)o.Source, (uint)length], []);
            model.AsSpan(o.Source, length).ToArray().CopyTo(model.AsSpan(o.Address));
        }
    }

    [Fact]
    public void ArtifactBuiltWithoutTheBarrier_StoresWork_MarkNothing_AndPoolsRefuseTheTracker()
    {
        using WasmModule plain = WasmModule.Load(TestModules.Wasm("stores"), TestModules.Cache with { StoreBarrier = false });
        Assert.False(plain.MarksStores);
        Assert.True(TestModules.Get("stores").MarksStores);
        Assert.NotEqual(ArtifactCache.Key(TestModules.Wasm("stores"), TestModules.Cache),
            ArtifactCache.Key(TestModules.Wasm("stores"), TestModules.Cache with { StoreBarrier = false }));

        using (WasmInstance guest = plain.Instantiate(new Linker(), new InstanceOptions
        {
            Memory = LeaderMemory.For(new SyncOptions { LeaderTracker = TrackerKind.StoreBarrier }),
        }))
        {
            SyncStrategy sync = ((LeaderMemory)guest.LinearMemory!).Strategy;
            sync.Commit();
            guest.GetFunction("i64_store").Invoke([8192u, 0x0102030405060708], []);
            Assert.Equal(0x0102030405060708L, BitConverter.ToInt64(guest.ReadMemory(8192, 8)));
            var cow = new List<PageRun>();
            ((CowView)sync.Leader).CollectPrivatePages(cow);
            Assert.Equal([new PageRun(2, 1)], cow);
            Assert.Empty(sync.LeaderTracker.Collect()); // exactly why a pool refuses this combination
        }

        var error = Assert.Throws<ArgumentException>(() => GuestPool.Create(plain, new Linker(),
            new PoolOptions { ReplicaCount = 1, Sync = new SyncOptions { ReplicaTracker = TrackerKind.StoreBarrier } }));
        Assert.Contains("without the store barrier", error.Message);
        using GuestPool pool = GuestPool.Create(plain, new Linker(), new PoolOptions { ReplicaCount = 1 });
        Assert.Equal(0L, pool.Read(g => BitConverter.ToInt64(g.ReadMemory(8192, 8))));
    }

    [Fact]
    public void StoreWithAnOffset_MarksTheEffectiveAddressesPages()
    {
        (WasmInstance guest, SyncStrategy sync) = Leader();
        using (guest)
        {
            guest.GetFunction("i64_store_offset").Invoke([8192u, 7], []); // bytes 12285..12292: pages 2 and 3
            Assert.Equal([new PageRun(2, 2)], sync.LeaderTracker.Collect());
        }
    }

    [Fact]
    public void FillWithTheBytesAlreadyThere_WritesNothing_AndOtherBytesWriteOnlyThePagesThatDiffer()
    {
        (WasmInstance guest, SyncStrategy sync) = Leader();
        using (guest)
        {
            guest.GetFunction("fill").Invoke([0u, 0u, (uint)(4 * 65536)], []); // all zero already
            Assert.Empty(sync.LeaderTracker.Collect());
            var cow = new List<PageRun>();
            ((CowView)sync.Leader).CollectPrivatePages(cow);
            Assert.Empty(cow); // not even a copy-on-write fault

            guest.GetFunction("i32_store8").Invoke([5u * 4096 + 9, 1], []);
            sync.LeaderTracker.Collect();
            guest.GetFunction("fill").Invoke([4u * 4096, 0u, 3u * 4096], []); // only page 5 holds a non-zero byte
            Assert.Equal([new PageRun(5, 1)], sync.LeaderTracker.Collect());
            Assert.Equal(0, guest.ReadMemory(5 * 4096 + 9, 1)[0]);
        }
    }

    [Fact]
    public void HostWrites_ThroughGetMemory_AreReported_AndReadsAreNot()
    {
        (WasmInstance guest, SyncStrategy sync) = Leader();
        using (guest)
        {
            _ = guest.ReadMemory(3 * 4096, 100).ToArray();
            Assert.Empty(sync.LeaderTracker.Collect());
            guest.GetMemory(7 * 4096 - 2, 4).Fill(9); // straddles pages 6 and 7
            Assert.Equal([new PageRun(6, 2)], sync.LeaderTracker.Collect());
        }
    }

    [Fact]
    public void GrowthThenStores_InTheNewPages_AreReported()
    {
        (WasmInstance guest, SyncStrategy sync) = Leader();
        using (guest)
        {
            Assert.Equal(4, (int)guest.GetFunction<int, int>("grow")(1));
            guest.GetFunction("i64_store").Invoke([(uint)(4 * 65536 + 100), 1], []);
            Assert.Equal([new PageRun(64, 1)], sync.LeaderTracker.Collect());
        }
    }
}
