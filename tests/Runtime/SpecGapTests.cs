using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>
/// Cases the official WebAssembly testsuite found the runtime getting wrong, each written again here as WAT:
/// signaling NaNs, passive segments, zero-page memories, data segments out of bounds, several results and externref.
/// </summary>
public sealed class SpecGapTests
{
    private static WasmInstance Instantiate(string wat, BoundsChecks checks = BoundsChecks.GuardPages) =>
        WasmModule.Load(TestModules.Assemble(wat), TestModules.Cache with { BoundsChecks = checks }).Instantiate(new Linker());

    private static ulong Call(WasmInstance guest, string export, params ulong[] args)
    {
        var results = new ulong[Math.Max(1, guest.GetFunction(export).Type.Results.Count)];
        guest.GetFunction(export).Invoke(args, results);
        return results[0];
    }

    private const string NanOps = """
        (module
          (func (export "f32_sub_zero") (param f32) (result f32) (f32.sub (local.get 0) (f32.const 0)))
          (func (export "f32_mul_one") (param f32) (result f32) (f32.mul (local.get 0) (f32.const 1)))
          (func (export "f32_div_one") (param f32) (result f32) (f32.div (local.get 0) (f32.const 1)))
          (func (export "f32_neg_zero_sub") (param f32) (result f32) (f32.sub (f32.const -0) (local.get 0)))
          (func (export "f32_mul_neg_one") (param f32) (result f32) (f32.mul (f32.const -1) (local.get 0)))
          (func (export "f64_sub_zero") (param f64) (result f64) (f64.sub (local.get 0) (f64.const 0)))
          (func (export "f64_mul_one") (param f64) (result f64) (f64.mul (local.get 0) (f64.const 1)))
          (func (export "f64_div_one") (param f64) (result f64) (f64.div (local.get 0) (f64.const 1)))
          (func (export "f64_neg_zero_sub") (param f64) (result f64) (f64.sub (f64.const -0) (local.get 0)))
          (func (export "f64_mul_neg_one") (param f64) (result f64) (f64.mul (f64.const -1) (local.get 0)))
          (func (export "f32_neg") (param f32) (result f32) (f32.neg (local.get 0)))
        )
        """;

    public static TheoryData<string> NanExports() =>
    [
        "f32_sub_zero", "f32_mul_one", "f32_div_one", "f32_neg_zero_sub", "f32_mul_neg_one",
        "f64_sub_zero", "f64_mul_one", "f64_div_one", "f64_neg_zero_sub", "f64_mul_neg_one",
    ];

    [Theory]
    [MemberData(nameof(NanExports))]
    public void ArithmeticOnASignalingNan_ReturnsAQuietNan(string export)
    {
        using WasmInstance guest = Instantiate(NanOps);
        bool wide = export.StartsWith("f64", StringComparison.Ordinal);
        ulong signaling = wide ? 0x7FF4_0000_0000_0001UL : 0x7FA0_0001UL;
        ulong quietBit = wide ? 1UL << 51 : 1UL << 22;
        ulong exponent = wide ? 0x7FF0_0000_0000_0000UL : 0x7F80_0000UL;
        foreach (ulong sign in new[] { 0UL, wide ? 1UL << 63 : 1UL << 31 })
        {
            ulong result = Call(guest, export, signaling | sign);
            Assert.True((result & exponent) == exponent && (result & quietBit) != 0,
                $"{export}(0x{signaling | sign:X}) = 0x{result:X}: not an arithmetic (quiet) NaN");
        }
    }

    [Fact]
    public void Neg_IsABitOperation_AndKeepsTheNanSignaling()
    {
        using WasmInstance guest = Instantiate(NanOps);
        Assert.Equal(0xFFA0_0001UL, Call(guest, "f32_neg", 0x7FA0_0001UL));
    }

    [Theory]
    [InlineData(BoundsChecks.GuardPages)]
    [InlineData(BoundsChecks.Software)]
    public void PassiveDataAndElementSegments_LoadInitAndDrop(BoundsChecks checks)
    {
        using WasmInstance guest = Instantiate("""
            (module
              (memory (export "memory") 1)
              (data $d "passive!")
              (table $t 4 funcref)
              (elem $e func $one $two)
              (func $one (result i32) (i32.const 1))
              (func $two (result i32) (i32.const 2))
              (type $r (func (result i32)))
              (func (export "init") (param i32 i32 i32) (memory.init $d (local.get 0) (local.get 1) (local.get 2)))
              (func (export "drop") (data.drop $d))
              (func (export "tinit") (param i32) (table.init $t $e (local.get 0) (i32.const 0) (i32.const 2)))
              (func (export "edrop") (elem.drop $e))
              (func (export "call") (param i32) (result i32) (call_indirect (type $r) (local.get 0)))
              (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
            )
            """, checks);
        guest.GetFunction("init").Invoke([100, 0, 8], []);
        Assert.Equal("passive!"u8.ToArray(), guest.ReadMemory(100, 8).ToArray());
        guest.GetFunction("init").Invoke([200, 2, 3], []);
        Assert.Equal((ulong)'s', Call(guest, "load8", 200));
        Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => guest.GetFunction("init").Invoke([0, 4, 5], [])).Kind);
        guest.GetFunction("drop").Invoke([], []);
        guest.GetFunction("init").Invoke([0, 0, 0], []); // a dropped segment has length 0: an empty init is fine
        Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => guest.GetFunction("init").Invoke([0, 0, 1], [])).Kind);

        guest.GetFunction("tinit").Invoke([1], []);
        Assert.Equal(1UL, Call(guest, "call", 1));
        Assert.Equal(2UL, Call(guest, "call", 2));
        guest.GetFunction("edrop").Invoke([], []);
        Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => guest.GetFunction("tinit").Invoke([0], [])).Kind);
    }

    [Theory]
    [InlineData(BoundsChecks.GuardPages)]
    [InlineData(BoundsChecks.Software)]
    public void AZeroPageMemory_Instantiates_AndEveryAccessIsOutOfBounds(BoundsChecks checks)
    {
        using WasmInstance guest = Instantiate("""
            (module
              (memory 0 1)
              (func (export "size") (result i32) (memory.size))
              (func (export "grow") (result i32) (memory.grow (i32.const 1)))
              (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
            )
            """, checks);
        Assert.Equal(0UL, Call(guest, "size"));
        Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => Call(guest, "load8", 0)).Kind);
        Assert.Equal(0UL, Call(guest, "grow"));
        Assert.Equal(0UL, Call(guest, "load8", 65535));
        Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => Call(guest, "load8", 65536)).Kind);

        using WasmInstance fixedEmpty = Instantiate("(module (memory 0 0) (func (export \"size\") (result i32) (memory.size)))", checks);
        Assert.Equal(0UL, Call(fixedEmpty, "size"));
    }

    [Theory]
    [InlineData("(module (memory 0) (data (i32.const 0) \"x\"))")]
    [InlineData("(module (memory 1) (data (i32.const 65535) \"xy\"))")]
    public void ADataSegmentOutOfBounds_FailsInstantiationWithAnOutOfBoundsTrap(string wat)
    {
        var e = Assert.Throws<WasmTrapException>(() => Instantiate(wat));
        Assert.Equal(TrapKind.OutOfBounds, e.Kind);
    }

    [Fact]
    public void ExportsWithSeveralResults_AndExternrefs_Work()
    {
        using WasmInstance guest = Instantiate("""
            (module
              (func (export "pair") (param i32 i64) (result i64 i32) (local.get 1) (local.get 0))
              (func (export "triple") (result f32 f64 i32) (f32.const 1.5) (f64.const 2.5) (i32.const 3))
              (func (export "is_null") (param externref) (result i32) (ref.is_null (local.get 0)))
              (func (export "echo") (param externref) (result externref i32) (local.get 0) (i32.const 7))
            )
            """);
        var results = new ulong[2];
        guest.GetFunction("pair").Invoke([5, 0x1_0000_0009], results);
        Assert.Equal([0x1_0000_0009UL, 5UL], results);
        var three = new ulong[3];
        guest.GetFunction("triple").Invoke([], three);
        Assert.Equal(1.5f, BitConverter.UInt32BitsToSingle((uint)three[0]));
        Assert.Equal(2.5, BitConverter.UInt64BitsToDouble(three[1]));
        Assert.Equal(3UL, three[2]);
        Assert.Equal(1UL, Call(guest, "is_null", 0));
        Assert.Equal(0UL, Call(guest, "is_null", 0xC0FFEE));
        guest.GetFunction("echo").Invoke([0xC0FFEE], results);
        Assert.Equal([0xC0FFEEUL, 7UL], results);
    }
}
