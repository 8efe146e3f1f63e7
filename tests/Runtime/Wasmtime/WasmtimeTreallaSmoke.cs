using CowWasm.Prolog;
using CowWasm.Runtime;

namespace CowWasm.Tests.Runtime.Wasmtime;

public sealed class WasmtimeTreallaSmoke
{
    [Fact]
    public async Task Trealla_OnWasmtime_AnswersInAPool()
    {
        using IGuestModule module = await TreallaGuest.LoadAsync(GuestRuntime.Wasmtime);
        var report = ((CowWasm.Runtime.Wasmtime.WasmtimeModule)module).Report;
        Console.WriteLine(report);
        await using var prolog = PrologPool.Create(module);
        await prolog.ConsultAsync(":- dynamic(test/1). test(123).");
        PrologAnswer answer = await prolog.QueryOnceAsync("test(X)");
        Assert.Equal("123", answer["X"].ToString());
    }
}
