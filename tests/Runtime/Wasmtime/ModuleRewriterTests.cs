using CowWasm.Runtime;
using CowWasm.Runtime.Wasmtime;
using CowWasm.Runtime.Wasmtime.Rewriting;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Runtime.Wasmtime;

/// <summary>
/// The module rewrite (<see cref="ModuleRewriter"/>): what it refuses and why, what it adds, and that hostile bytes
/// are a clear <see cref="WasmFormatException"/> or <see cref="NotSupportedException"/>, never a crash or a hang.
/// </summary>
public sealed class ModuleRewriterTests
{
    private static byte[] Wat(string text) => TestModules.Assemble(text);

    [Fact]
    public void Globals_AreExported_AndDataSitsBehindTheInitExport_AndNothingIsRenumbered()
    {
        byte[] wasm = Wat("""
            (module
              (memory 1)
              (global $hidden (mut i32) (i32.const 7))
              (global (export "shown") i64 (i64.const 9))
              (data (i32.const 100) "ab")
              (data (i32.const 102) "cd")
              (data (i32.const 4000) "far")
              (func $start (global.set $hidden (i32.const 8)))
              (start $start)
              (func (export "hidden") (result i32) (global.get $hidden)))
            """);
        RewrittenModule rewritten = ModuleRewriter.Rewrite(wasm, barrier: true);
        Assert.Equal(["cowwasm:global:0", "cowwasm:global:1"], rewritten.GlobalExports);
        Assert.Equal(2, rewritten.DataChunks); // "ab" + "cd" merge; "far" is 3,896 bytes away
        WasmModuleInfo info = WasmBinaryReader.Read(rewritten.Bytes);
        Assert.Contains(info.Exports, e => e.Name == RewrittenModule.InitExport && e.Kind == WasmExternKind.Function);
        Assert.Contains(info.Exports, e => e.Name == "cowwasm:global:0" && e.Kind == WasmExternKind.Global && e.Index == 0);
        Assert.Contains(info.Exports, e => e.Name == "hidden" && e.Index == 1); // the original functions keep their indices
        Assert.Equal(2, info.Memories.Count); // the dirty map

        using WasmtimeModule module = WasmtimeModule.Load(wasm, TestModules.WasmtimeCache);
        using IGuestInstance fresh = module.Instantiate(new Linker());
        Assert.Equal(8, fresh.GetFunction<int>("hidden")()); // the start function ran, after the data
        Assert.Equal("abcd"u8.ToArray(), fresh.ReadMemory(100, 4).ToArray());
        using IGuestInstance clone = fresh.Clone(new StandaloneMemory(16, 16, fresh.Memory!.ReservedBytes));
        Assert.Equal(0, clone.ReadMemory(100, 1)[0]); // a clone runs neither the data nor the start function
        Assert.Equal(8, clone.GetFunction<int>("hidden")()); // but has the template's globals
    }

    [Theory]
    [InlineData("(module (memory 1) (table 1 funcref) (func (export \"f\") (table.set 0 (i32.const 0) (ref.null func))))", "changes tables")]
    [InlineData("(module (memory 1) (data $d \"x\") (func (export \"f\") (data.drop $d)))", "drops segments")]
    [InlineData("(module (import \"env\" \"m\" (memory 1)))", "imports a memory")]
    [InlineData("(module (import \"env\" \"g\" (global i32)))", "imports a global")]
    [InlineData("(module (memory i64 1))", "64-bit memory")]
    public void WhatTheBackendCannotRun_IsRefusedAtLoad_SayingWhat(string wat, string expected)
    {
        var e = Assert.Throws<NotSupportedException>(() => WasmtimeModule.Load(Wat(wat), TestModules.WasmtimeCache));
        Assert.Contains("Wasmtime backend cannot run this module", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TwoMemories_AreRefused()
    {
        // (module (memory 1) (memory 1)), by hand: wat2wasm would need --enable-multi-memory.
        byte[] wasm = [0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 5, 5, 2, 0, 1, 0, 1];
        var e = Assert.Throws<NotSupportedException>(() => WasmtimeModule.Load(wasm, TestModules.WasmtimeCache));
        Assert.Contains("2 memories", e.Message);
    }

    [Fact]
    public void AtomicStores_RuleTheBarrierOut_SayingWhy()
    {
        // (module (memory 1) (func (i32.atomic.store (i32.const 0) (i32.const 1)))), by hand (wat2wasm needs --enable-threads).
        byte[] wasm =
        [
            0, 0x61, 0x73, 0x6D, 1, 0, 0, 0,
            1, 4, 1, 0x60, 0, 0, // type () -> ()
            3, 2, 1, 0, // one function
            5, 3, 1, 0, 1, // memory 1
            10, 12, 1, 10, 0, 0x41, 0, 0x41, 1, 0xFE, 0x17, 2, 0, 0x0B, // i32.const 0; i32.const 1; i32.atomic.store; end
        ];
        RewrittenModule rewritten = ModuleRewriter.Rewrite(wasm, barrier: true);
        Assert.False(rewritten.Barrier);
        Assert.Contains("atomic", rewritten.BarrierRefusal);
        Assert.Null(ModuleRewriter.Rewrite(wasm, barrier: false).BarrierRefusal);
    }

    [CowProperty]
    public Property AnyTruncationOrCorruptionOfARealModule_IsAFormatErrorOrRefusal_NeverACrash()
    {
        byte[] wasm = TestModules.Wasm("stores");
        Gen<(int At, int Cut, byte Value)> damage = Gen.Choose(8, wasm.Length - 1).SelectMany(at =>
            Gen.Choose(0, 1).SelectMany(cut => Gen.Choose(0, 255).Select(value => (at, cut, (byte)value))));
        return Prop.ForAll(damage.ToArbitrary(), d =>
        {
            byte[] bad = d.Cut == 1 ? wasm[..d.At] : [.. wasm];
            if (d.Cut == 0)
            {
                bad[d.At] = d.Value;
            }

            try
            {
                ModuleRewriter.Rewrite(bad, barrier: true);
            }
            catch (Exception e) when (e is WasmFormatException or NotSupportedException)
            {
            }
        });
    }
}
