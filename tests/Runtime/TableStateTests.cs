using CowWasm.Memory;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// Capturing and restoring what guest code changes outside memory and globals (tables/TableState.cs): the changed flag
/// that generated code sets, restore undoing every kind of table change and segment drop, and function references
/// rebound to the instance a state is restored into.
/// </summary>
public sealed class TableStateTests
{
    private static WasmInstance Instantiate() => TestModules.Get("tables").Instantiate(new Linker());

    private static void Poke(WasmInstance guest, uint address, uint value) => guest.GetFunction("poke").Invoke([address, value], []);

    [Fact]
    public void OnlyTableMutationsAndDrops_SetTheChangedFlag_AndCaptureClearsIt()
    {
        using WasmInstance guest = Instantiate();
        Assert.False(guest.TablesChanged); // what instantiation did is the starting point
        Assert.Equal(1, guest.GetFunction<int, int>("call")(0));
        Poke(guest, 0, 5);
        Assert.False(guest.TablesChanged);

        foreach (Action<WasmInstance> change in new Action<WasmInstance>[]
                 {
                     g => g.GetAction<int>("set_two")(1),
                     g => g.GetFunction<int, int>("grow")(1),
                     g => g.GetAction<int>("tinit")(0),
                     g => g.GetAction("edrop")(),
                     g => g.GetAction("ddrop")(),
                 })
        {
            change(guest);
            Assert.True(guest.TablesChanged);
            guest.CaptureTables();
            Assert.False(guest.TablesChanged);
        }
    }

    [Fact]
    public void Restore_UndoesSetGrowInitAndDrops()
    {
        using WasmInstance guest = Instantiate();
        TableState initial = guest.CaptureTables();

        guest.GetAction<int>("set_two")(1);
        Assert.Equal(2, guest.GetFunction<int, int>("grow")(3));
        guest.GetAction<int>("tinit")(3);
        guest.GetAction("edrop")();
        guest.GetAction("ddrop")();
        Assert.Equal(5, guest.GetFunction<int>("size")());
        Assert.NotEqual(initial, guest.CaptureTables());

        guest.RestoreTables(initial);
        Assert.False(guest.TablesChanged);
        Assert.Equal(initial, guest.CaptureTables());
        Assert.Equal(2, guest.GetFunction<int>("size")());
        Assert.Equal(1, guest.GetFunction<int, int>("call")(1));
        // wasm2c reports an index past the end like a signature mismatch (one check covers both).
        Assert.Equal(TrapKind.IndirectCallMismatch, Assert.Throws<WasmTrapException>(() => guest.GetFunction<int, int>("call")(3)).Kind);
        guest.GetAction<int>("tinit")(0); // the element segment is back
        Assert.Equal(3, guest.GetFunction<int, int>("call")(1));
        guest.GetAction<int>("minit")(100); // and the data segment
        Assert.Equal("segment"u8.ToArray(), guest.ReadMemory(100, 7).ToArray());
    }

    [Fact]
    public void Restore_GrowsAShrunkTable_AndRestoresExternrefs()
    {
        using WasmInstance guest = Instantiate();
        guest.GetFunction<int, int>("grow")(10);
        guest.GetAction<int>("set_two")(11);
        guest.GetFunction("xset").Invoke([0xABCD_EF01UL], []);
        TableState grown = guest.CaptureTables();

        using WasmInstance other = Instantiate();
        other.RestoreTables(grown);
        Assert.Equal(12, other.GetFunction<int>("size")());
        Assert.Equal(2, other.GetFunction<int, int>("call")(11));
        ulong[] handle = new ulong[1];
        other.GetFunction("xget").Invoke([], handle);
        Assert.Equal(0xABCD_EF01UL, handle[0]);
    }

    [Fact]
    public void FunctionReferences_AreReboundToTheInstanceTheStateIsRestoredInto()
    {
        using WasmInstance template = Instantiate();
        template.GetAction<int>("set_two")(1);
        TableState state = template.CaptureTables();

        using WasmInstance clone = template.Clone(new StandaloneMemory(16, 16, template.Module.MemoryReservationBytes));
        clone.GetAction<int>("set_two")(0); // something to undo
        Poke(template, 0, 100);
        Poke(clone, 0, 40);

        clone.RestoreTables(state);
        Assert.Equal(42, clone.GetFunction<int, int>("call")(1)); // $two ran in the clone, reading the clone's memory
        Assert.Equal(1, clone.GetFunction<int, int>("call")(0));
        Assert.Equal(102, template.GetFunction<int, int>("call")(1));
    }

    [Fact]
    public void Restore_RefusesAStateOfAnotherModule_AndChangesNothing()
    {
        using WasmInstance guest = Instantiate();
        using WasmInstance basic = TestModules.Basic();
        var error = Assert.Throws<ArgumentException>(() => guest.RestoreTables(basic.CaptureTables()));
        Assert.Contains("another module", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, guest.GetFunction<int, int>("call")(0));
    }
}
