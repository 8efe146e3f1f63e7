using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
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
        ("i64_store32", 4), ("i64_store", 8), ("f32_store", 4), ("f64_store", 8), ("v128_store", 16),
        ("v128_store32_lane", 4),
    ];

    /// <summary>
    /// The SIMD stores, added to stores.wat for the backends that run them: wasm2c 1.0.32 aborts (SIGABRT, no message)
    /// on any <c>v128.store</c>, so the native backend runs stores.wat as it is and these ops become plain i64 stores.
    /// </summary>
    private const string SimdStores = """
          (func (export "v128_store") (param i32 i64) (v128.store (local.get 0) (i64x2.splat (local.get 1))))
          (func (export "v128_store32_lane") (param i32 i64) (v128.store32_lane 1 (local.get 0) (i64x2.splat (local.get 1))))
        """;

    private static readonly Lazy<IGuestModule> s_wasmtimeStores = new(() =>
    {
        string wat = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Guests", "stores.wat")).TrimEnd();
        return CowWasm.Runtime.Wasmtime.WasmtimeModule.Load(TestModules.Assemble(wat[..^1] + SimdStores + ")"), TestModules.WasmtimeCache);
    });

    private static IGuestModule Stores(GuestRuntime runtime) => runtime == GuestRuntime.Wasmtime ? s_wasmtimeStores.Value : TestModules.Get("stores");

    /// <summary>stores.wat's passive segment: byte i is (7i + 3) mod 256.</summary>
    private static byte Passive(int i) => (byte)(i * 7 + 3);

    private sealed record Op(int Kind, int Address, long Value, int Length, int Source);

    private static (IGuestInstance Guest, SyncStrategy Sync) Leader(GuestRuntime runtime, bool commit = true)
    {
        IGuestModule module = Stores(runtime);
        Assert.True(module.MarksStores);
        IGuestInstance guest = module.Instantiate(new Linker(), new InstanceOptions
        {
            Memory = LeaderMemory.For(new SyncOptions { LeaderTracker = TrackerKind.StoreBarrier }),
        });
        SyncStrategy sync = ((LeaderMemory)guest.LinearMemory!).Strategy;
        if (commit)
        {
            sync.Commit();
        }

        return (guest, sync);
    }

    [CowProperty]
    public Property EveryStoreKindAndBulkOp_IsReported_ExactlyAsTheCopyOnWriteView()
    {
        const int size = 4 * 65536;
        Gen<Op> op = Gen.Choose(0, s_stores.Length + 2).SelectMany(kind =>
            Gen.Choose(0, size - 8).SelectMany(address =>
                Gen.Choose(0, 3 * 4096).SelectMany(length =>
                    Gen.Choose(0, size - 3 * 4096).SelectMany(source =>
                        Gen.Elements(0L, 1L, -1L, 0x1234_5678_9ABC_DEF0L).Select(value => new Op(kind, address, value, length, source))))));
        return Prop.ForAll(op.ListOf().Select(l => l.ToArray()).ToArbitrary(), ops => Configurations.Each(TestModules.Runtimes, c =>
        {
            (IGuestInstance guest, SyncStrategy sync) = Leader((GuestRuntime)c[0]!);
            using (guest)
            {
                byte[] model = guest.ReadMemory(0, size).ToArray();
                foreach (Op o in ops)
                {
                    Apply(guest, model, o, size);
                }

                int differs = guest.ReadMemory(0, size).ToArray().Zip(model).Select((p, i) => p.First == p.Second ? -1 : i).FirstOrDefault(i => i >= 0, -1);
                Assert.True(differs < 0, $"memory differs from the model at byte {differs}");
                var cow = new List<PageRun>();
                ((CowView)sync.Leader).CollectPrivatePages(cow);
                IReadOnlyList<PageRun> barrier = sync.LeaderTracker.Collect();
                Assert.Equal(cow, barrier);
                sync.Rollback();
            }
        }));
    }

    private static bool HasExport(IGuestInstance guest, string name)
    {
        try
        {
            guest.GetFunction(name);
            return true;
        }
        catch (KeyNotFoundException)
        {
            return false;
        }
    }

    private static void Apply(IGuestInstance guest, byte[] model, Op o, int size)
    {
        if (o.Kind < s_stores.Length)
        {
            (string export, int width) = s_stores[o.Kind];
            if (export.StartsWith("v128", StringComparison.Ordinal) && !HasExport(guest, export))
            {
                (export, width) = ("i64_store", 8);
            }

            int address = Math.Min(o.Address, size - width);
            guest.GetFunction(export).Invoke([(uint)address, (ulong)o.Value], []);
            byte[] value = BitConverter.GetBytes(o.Value);
            for (int i = 0; i < width; i++)
            {
                // v128_store splats the i64 twice; v128_store32_lane stores lane 1 of that splat (bytes 4..7).
                model[address + i] = export == "v128_store32_lane" ? value[4 + i] : value[i % 8];
            }
        }
        else if (o.Kind == s_stores.Length + 2)
        {
            int length = Math.Min(Math.Min(o.Length, size - o.Address), 10_000 - (o.Source % 10_000));
            int source = o.Source % 10_000;
            guest.GetFunction("init").Invoke([(uint)o.Address, (uint)source, (uint)length], []);
            for (int i = 0; i < length; i++)
            {
                model[o.Address + i] = Passive(source + i);
            }
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
            guest.GetFunction("i64_store").Invoke([20480u, 0x0102030405060708], []);
            Assert.Equal(0x0102030405060708L, BitConverter.ToInt64(guest.ReadMemory(20480, 8)));
            var cow = new List<PageRun>();
            ((CowView)sync.Leader).CollectPrivatePages(cow);
            Assert.Equal([new PageRun(1, 2), new PageRun(5, 1), new PageRun(40, 1)], cow); // the data segments' pages too: unmarked, never committed
            Assert.Empty(sync.LeaderTracker.Collect()); // exactly why a pool refuses this combination
        }

        var error = Assert.Throws<ArgumentException>(() => GuestPool.Create(plain, new Linker(),
            new PoolOptions { ReplicaCount = 1, Sync = new SyncOptions { ReplicaTracker = TrackerKind.StoreBarrier } }));
        Assert.Contains("without the store barrier", error.Message);
        using GuestPool pool = GuestPool.Create(plain, new Linker(), new PoolOptions { ReplicaCount = 1 });
        Assert.Equal(0L, pool.Read(g => BitConverter.ToInt64(g.ReadMemory(20480, 8))));
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void StoreWithAnOffset_MarksTheEffectiveAddressesPages(GuestRuntime runtime)
    {
        (IGuestInstance guest, SyncStrategy sync) = Leader(runtime);
        using (guest)
        {
            guest.GetFunction("i64_store_offset").Invoke([8192u, 7], []); // bytes 12285..12292: pages 2 and 3
            Assert.Equal([new PageRun(2, 2)], sync.LeaderTracker.Collect());
        }
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void FillWithTheBytesAlreadyThere_WritesNothing_AndOtherBytesWriteOnlyThePagesThatDiffer(GuestRuntime runtime)
    {
        (IGuestInstance guest, SyncStrategy sync) = Leader(runtime);
        using (guest)
        {
            guest.GetFunction("fill").Invoke([3u * 4096, 0u, 37u * 4096], []); // pages 3..39: all zero already
            Assert.Empty(sync.LeaderTracker.Collect());
            var cow = new List<PageRun>();
            ((CowView)sync.Leader).CollectPrivatePages(cow);
            Assert.Empty(cow); // not even a copy-on-write fault
            guest.GetFunction("fill").Invoke([0u, 0u, (uint)(4 * 65536)], []); // only the data segments' pages hold other bytes
            Assert.Equal([new PageRun(1, 2), new PageRun(40, 1)], sync.LeaderTracker.Collect());

            guest.GetFunction("i32_store8").Invoke([5u * 4096 + 9, 1], []);
            sync.LeaderTracker.Collect();
            guest.GetFunction("fill").Invoke([4u * 4096, 0u, 3u * 4096], []); // only page 5 holds a non-zero byte
            Assert.Equal([new PageRun(5, 1)], sync.LeaderTracker.Collect());
            Assert.Equal(0, guest.ReadMemory(5 * 4096 + 9, 1)[0]);
        }
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void HostWrites_ThroughGetMemory_AreReported_AndReadsAreNot(GuestRuntime runtime)
    {
        (IGuestInstance guest, SyncStrategy sync) = Leader(runtime);
        using (guest)
        {
            _ = guest.ReadMemory(3 * 4096, 100).ToArray();
            Assert.Empty(sync.LeaderTracker.Collect());
            guest.GetMemory(7 * 4096 - 2, 4).Fill(9); // straddles pages 6 and 7
            Assert.Equal([new PageRun(6, 2)], sync.LeaderTracker.Collect());
        }
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void GrowthThenStores_InTheNewPages_AreReported(GuestRuntime runtime)
    {
        (IGuestInstance guest, SyncStrategy sync) = Leader(runtime);
        using (guest)
        {
            Assert.Equal(4, (int)guest.GetFunction<int, int>("grow")(1));
            guest.GetFunction("i64_store").Invoke([(uint)(4 * 65536 + 100), 1], []);
            Assert.Equal([new PageRun(64, 1)], sync.LeaderTracker.Collect());
        }
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void DataSegments_WrittenAtInstantiation_AreReported_ExactlyAsTheCopyOnWriteView(GuestRuntime runtime)
    {
        (IGuestInstance guest, SyncStrategy sync) = Leader(runtime, commit: false);
        using (guest)
        {
            var cow = new List<PageRun>();
            ((CowView)sync.Leader).CollectPrivatePages(cow);
            Assert.Equal([new PageRun(1, 2), new PageRun(40, 1)], cow); // [8000, 8255) spans pages 1 and 2; "far" on page 40
            Assert.Equal(cow, sync.LeaderTracker.Collect());
            Assert.Equal(0xFF, guest.ReadMemory(8254, 1)[0]); // the segment holds bytes 1..255
            Assert.Equal("far"u8.ToArray(), guest.ReadMemory(163900, 3).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void OutOfBoundsStoresAndBulkOps_Trap_WriteNothing_AndEveryPrivateCopyIsReported(GuestRuntime runtime)
    {
        // A store straddling the end of memory faults on the guard, but the CPU may first take the copy-on-write fault
        // on the last page. Unreported, that private copy would shadow later commits in a replica (both backends did
        // this before the trap path reported the last page).
        (IGuestInstance guest, SyncStrategy sync) = Leader(runtime);
        using (guest)
        {
            const uint end = 4 * 65536;
            byte[] before = guest.ReadMemory(0, (int)end).ToArray();
            var reported = new HashSet<long>();
            foreach ((string export, ulong[] args) in new (string, ulong[])[]
            {
                ("i64_store", [end - 4, 1]), ("fill", [end - 8192, 1, 8193]), ("fill", [end - 10, 1, 11]), ("copy", [end - 10, 0, 11]),
                ("init", [end - 10, 0, 11]),
            })
            {
                Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => guest.GetFunction(export).Invoke(args, [])).Kind);
                foreach (PageRun run in sync.LeaderTracker.Collect())
                {
                    for (long p = run.StartPage; p < run.StartPage + run.PageCount; p++)
                    {
                        reported.Add(p);
                    }
                }
            }

            Assert.True(guest.ReadMemory(0, (int)end).SequenceEqual(before), "a trapped operation changed memory");
            var cow = new List<PageRun>();
            ((CowView)sync.Leader).CollectPrivatePages(cow);
            foreach (PageRun run in cow)
            {
                for (long p = run.StartPage; p < run.StartPage + run.PageCount; p++)
                {
                    Assert.True(reported.Contains(p), $"page {p} holds a private copy the barrier did not report");
                }
            }

            Assert.True(reported.All(p => p == end / 4096 - 1), $"only the last page may be reported, not {string.Join(", ", reported)}");
        }
    }
}
