using CowWasm.Runtime;
using CowWasm.Runtime.Wasmtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime.Wasmtime;

/// <summary>Lifecycle edges of the Wasmtime backend: a trapping start function, module disposal with instances alive.</summary>
public sealed class WasmtimeLifecycleTests
{
    [Fact]
    public void AStartFunctionThatTraps_FailsInstantiation_AsATrapInInstantiate_AndFreesTheMemory()
    {
        using WasmtimeModule module = WasmtimeModule.Load(TestModules.Assemble("""
            (module (memory 1) (func $start unreachable) (start $start) (func (export "f") (result i32) (i32.const 1)))
            """), TestModules.WasmtimeCache);
        ILinearMemory? created = null;
        var e = Assert.Throws<WasmTrapException>(() => module.Instantiate(new Linker(), new InstanceOptions
        {
            Memory = (initial, max, reserved) => created = new StandaloneMemory(initial, max, reserved),
        }));
        Assert.Equal((TrapKind.Unreachable, "instantiate"), (e.Kind, e.Function));
        Assert.True(created!.Memory.IsDisposed); // the instance that never was gave its memory back
    }

    [Fact]
    public void DisposingTheModule_LeavesLiveInstancesRunning_AndRefusesNewOnes()
    {
        WasmtimeModule module = WasmtimeModule.Load(TestModules.Wasm("kv"), TestModules.WasmtimeCache with { UseCache = false });
        var linker = new Linker().Define("env", "fail", [], [], (caller, args, results) => throw new InvalidOperationException("no"));
        using IGuestInstance live = module.Instantiate(linker);
        module.Dispose();
        live.GetFunction("put").Invoke([3, 33], []);
        Assert.Equal(33, live.GetFunction<int, long>("get")(3));
        Assert.Throws<ObjectDisposedException>(() => module.Instantiate(linker));
        using var spare = new StandaloneMemory(32, 1024, live.Memory!.ReservedBytes);
        Assert.Throws<ObjectDisposedException>(() => live.Clone(spare));
    }
}
