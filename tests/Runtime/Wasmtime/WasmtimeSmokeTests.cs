using CowWasm.Runtime;
using CowWasm.Runtime.Wasi;
using CowWasm.Runtime.Wasmtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime.Wasmtime;

public sealed class WasmtimeSmokeTests
{
    [Fact]
    public void Basic_OnWasmtime_Runs()
    {
        using var module = WasmtimeModule.Load(TestModules.Wasm("basic"), new WasmtimeOptions { UseCache = false });
        var linker = TestModules.BasicLinker(module.Info);
        using IGuestInstance guest = module.Instantiate(linker, new InstanceOptions { Wasi = new WasiConfiguration() });
        Assert.Equal(5, guest.GetFunction<int, int, int>("add")(2, 3));
    }
}
