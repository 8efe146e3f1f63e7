using System.Text;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasi;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

public sealed unsafe class GuestRuntimeTests
{
    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Exports_OfEveryValueType_ReturnExactResults(GuestRuntime runtime)
    {
        using IGuestInstance guest = TestModules.Basic(runtime);
        Assert.Equal(5, guest.GetFunction<int, int, int>("add")(2, 3));
        Assert.Equal(-1, guest.GetFunction<int, int, int>("add")(int.MaxValue, int.MinValue));
        Assert.Equal(0x1_0000_0000L, guest.GetFunction<long, long, long>("add64")(0xFFFF_FFFFL, 1));
        Assert.Equal(7.5f, guest.GetFunction<float, float, float>("mulf32")(2.5f, 3f));
        Assert.Equal(-0.0625, guest.GetFunction<double, double, double>("mulf64")(0.25, -0.25));
        Assert.Equal(1.0 + 2e12 + 0.5, guest.GetFunction<int, long, float, double>("mixed")(1, 2_000_000_000_000, 0.5f));
        guest.GetAction("nothing")();
        Assert.Throws<ArgumentException>(() => guest.GetFunction<long, long, long>("add"));
        Assert.Throws<KeyNotFoundException>(() => guest.GetFunction("nope"));
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Instantiate_RunsDataAndElementSegments_AndExposesGlobals(GuestRuntime runtime)
    {
        using IGuestInstance guest = TestModules.Basic(runtime);
        Assert.Equal("hello, wasm\n", Encoding.ASCII.GetString(guest.GetMemory(16, 12)));
        Assert.Equal(9, guest.GetFunction<int, int, int, int>("indirect")(0, 4, 5));
        Assert.Equal(-1, guest.GetFunction<int, int, int, int>("indirect")(1, 4, 5));
        Assert.Equal(0x1122334455667788UL, Global(runtime, guest, "big"));
        Assert.Equal(3.25, BitConverter.UInt64BitsToDouble(Global(runtime, guest, "pi")));
        guest.GetAction("bump")();
        Assert.Equal(1UL, Global(runtime, guest, "counter"));
    }

    public static TheoryData<string, TrapKind> Traps() => new()
    {
        { "div_s 1 0", TrapKind.DivideByZero },
        { "div_s min -1", TrapKind.IntegerOverflow },
        { "trunc nan", TrapKind.InvalidConversion },
        { "trunc 1e20", TrapKind.IntegerOverflow },
        { "unreachable", TrapKind.Unreachable },
        { "load oob", TrapKind.OutOfBounds },
        { "indirect null", TrapKind.IndirectCallMismatch },
        { "indirect out of table", TrapKind.IndirectCallMismatch },
        { "indirect wrong type", TrapKind.IndirectCallMismatch },
        { "recurse", TrapKind.StackExhaustion },
        { "host fail", TrapKind.HostError },
    };

    public static TheoryData<GuestRuntime, string, TrapKind> TrapsOnEachRuntime()
    {
        var data = new TheoryData<GuestRuntime, string, TrapKind>();
        foreach (GuestRuntime runtime in new[] { GuestRuntime.Native, GuestRuntime.Wasmtime })
        {
            foreach (var row in Traps())
            {
                data.Add(runtime, (string)row[0], (TrapKind)row[1]);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TrapsOnEachRuntime))]
    public void Trap_OfEachKind_IsReportedAndTheInstanceKeepsWorking(GuestRuntime runtime, string what, TrapKind kind)
    {
        using IGuestInstance guest = TestModules.Basic(runtime);
        var e = Assert.Throws<WasmTrapException>(() => Trigger(guest, what));
        Assert.Equal(kind, e.Kind);
        if (kind == TrapKind.HostError)
        {
            Assert.IsType<InvalidDataException>(e.InnerException);
        }

        Assert.Equal(3, guest.GetFunction<int, int, int>("add")(1, 2));
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void StackExhaustion_ThenDeepButFiniteWork_Recovers(GuestRuntime runtime)
    {
        using IGuestInstance guest = TestModules.Basic(runtime);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(TrapKind.StackExhaustion, Assert.Throws<WasmTrapException>(() => Trigger(guest, "recurse")).Kind);
        }

        Assert.Equal(8, guest.GetFunction<int, int>("call_host")(7));
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Traps_OnSeveralThreadsAtOnce_EachThreadSeesItsOwnKind(GuestRuntime runtime)
    {
        (string What, TrapKind Kind)[] work =
        [
            ("div_s 1 0", TrapKind.DivideByZero), ("unreachable", TrapKind.Unreachable),
            ("load oob", TrapKind.OutOfBounds), ("recurse", TrapKind.StackExhaustion),
        ];
        using var start = new Barrier(work.Length);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var threads = work.Select(w => new Thread(() =>
        {
            try
            {
                using IGuestInstance guest = TestModules.Basic(runtime);
                start.SignalAndWait();
                for (int i = 0; i < (w.Kind == TrapKind.StackExhaustion ? 20 : 2000); i++)
                {
                    var e = Assert.Throws<WasmTrapException>(() => Trigger(guest, w.What));
                    Assert.Equal(w.Kind, e.Kind);
                    Assert.Equal(i + 1, guest.GetFunction<int, int>("call_host")(i));
                }
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        })).ToList();
        foreach (Thread t in threads)
        {
            t.Start();
        }

        foreach (Thread t in threads)
        {
            t.Join();
        }

        Assert.Empty(failures);
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Instance_EnteredFromASecondThreadDuringACall_Throws(GuestRuntime runtime)
    {
        IGuestModule module = TestModules.Get("basic", runtime);
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        IGuestInstance? guest = null;
        var linker = TestModules.BasicLinker(module.Info).Define("env", "host_add",
            [WasmValueKind.I32, WasmValueKind.I32], [WasmValueKind.I32], (caller, args, results) =>
            {
                inside.Set();
                release.Wait();
                results[0] = 0;
            });
        guest = module.Instantiate(linker, new InstanceOptions { Wasi = new WasiConfiguration() });
        using (guest)
        {
            var first = new Thread(() => guest.GetFunction<int, int>("call_host")(1));
            first.Start();
            inside.Wait();
            var e = Assert.Throws<InvalidOperationException>(() => guest.GetFunction<int, int, int>("add")(1, 2));
            Assert.Contains("in use by thread", e.Message);
            Assert.Throws<InvalidOperationException>(guest.Dispose);
            release.Set();
            first.Join();
            Assert.Equal(3, guest.GetFunction<int, int, int>("add")(1, 2));
        }
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void MemoryGrow_UpToTheLimit_ThenFailsWithMinusOne_AndAddressesStay(GuestRuntime runtime)
    {
        using IGuestInstance guest = TestModules.Basic(runtime);
        var grow = guest.GetFunction<int, int>("grow");
        var size = guest.GetFunction<int>("size");
        nint before = (nint)guest.Memory!.Pointer;
        Assert.Equal(1, grow(2));
        Assert.Equal(3, size());
        guest.GetFunction("fill").Invoke([3 * 65536 - 4, 0x7F, 4], []);
        Assert.Equal(0x7F7F7F7F, guest.GetFunction<int, int>("load")(3 * 65536 - 4));
        Assert.Equal(-1, grow(2)); // 5 > max 4
        Assert.Equal(3, grow(1));
        Assert.Equal(-1, grow(1));
        Assert.Equal(4, size());
        Assert.Equal(before, (nint)guest.Memory.Pointer);
        Assert.Equal(4 * 65536, guest.MemorySize);
        Assert.Equal(TrapKind.OutOfBounds,
            Assert.Throws<WasmTrapException>(() => guest.GetFunction<int, int>("load")(4 * 65536 - 2)).Kind);
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void BulkMemory_FillAndOverlappingCopy_MatchAByteArrayModel(GuestRuntime runtime)
    {
        using IGuestInstance guest = TestModules.Basic(runtime);
        Action<int, int, int> Fill = (d, v, n) => guest.GetFunction("fill").Invoke([(uint)d, (uint)v, (uint)n], []);
        Action<int, int, int> Copy = (d, s, n) => guest.GetFunction("copy").Invoke([(uint)d, (uint)s, (uint)n], []);
        byte[] model = guest.GetMemory(0, 4096).ToArray();
        Fill(100, 0xAB, 50);
        model.AsSpan(100, 50).Fill(0xAB);
        Copy(120, 16, 12);
        model.AsSpan(16, 12).ToArray().CopyTo(model, 120);
        Copy(110, 100, 40); // overlapping, forward
        model.AsSpan(100, 40).ToArray().CopyTo(model, 110);
        Assert.Equal(model, guest.GetMemory(0, 4096).ToArray());
        Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => Fill(65536 - 2, 1, 3)).Kind);
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Wasi_StdoutIsCapturedPerInstance_AndProcExitReportsTheCode(GuestRuntime runtime)
    {
        using IGuestInstance a = TestModules.Basic(runtime);
        using IGuestInstance b = TestModules.Basic(runtime);
        Assert.Equal(0, a.GetFunction<int>("say_hello")());
        Assert.Equal(0, a.GetFunction<int>("say_hello")());
        Assert.Equal("hello, wasm\nhello, wasm\n", a.Wasi!.StdoutText);
        Assert.Equal("", b.Wasi!.StdoutText);
        Assert.Equal(12, a.GetFunction<int, int>("load")(8));
        var e = Assert.Throws<WasmTrapException>(() => b.GetAction<int>("exit")(42));
        Assert.Equal(TrapKind.Exit, e.Kind);
        Assert.Equal(42, e.ExitCode);
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void MissingImports_FailWithAnErrorNamingEachOne(GuestRuntime runtime)
    {
        IGuestModule module = TestModules.Get("basic", runtime);
        var e = Assert.Throws<WasmLinkException>(() => module.Instantiate(new Linker()));
        Assert.Contains("env.host_add", e.Message);
        Assert.Contains("env.host_fail", e.Message);
        Assert.Contains("wasi_snapshot_preview1.fd_write", e.Message);
        Assert.Contains("wasi_snapshot_preview1.proc_exit", e.Message);
        var wrong = TestModules.BasicLinker(module.Info).Define("env", "host_add", [WasmValueKind.I64], [], (c, a, r) => { });
        Assert.Contains("expects (I32, I32) -> (I32)", Assert.Throws<WasmLinkException>(() => module.Instantiate(wrong)).Message);
    }

    public static TheoryData<GuestRuntime, byte[], string> Malformed()
    {
        var data = new TheoryData<GuestRuntime, byte[], string>();
        (byte[], string)[] cases =
        [
            ([1, 2, 3], "magic"),
            ([0, 0x61, 0x73, 0x6D, 2, 0, 0, 0], "version 2"),
            ([0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 1, 50, 1], "claims 50 bytes"),
            ([0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 1, 4, 1, 0x61, 0, 0], "0x60"),
            ([0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 99, 0], "unknown section"),
            ([0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], "too long for 32 bits"),
            ([0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "exceeds 32 bits"),
            ([0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 1, 0x85, 0x80, 0x80, 0x80, 0x00, 1, 0x60, 0, 0, 0], "section 1 has 1 unread bytes"),
        ];
        foreach (GuestRuntime runtime in new[] { GuestRuntime.Native, GuestRuntime.Wasmtime })
        {
            foreach ((byte[] wasm, string expected) in cases)
            {
                data.Add(runtime, wasm, expected);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedWasm_IsRejectedWithAClearError(GuestRuntime runtime, byte[] wasm, string expected)
    {
        var e = Assert.Throws<WasmFormatException>(() => Load(runtime, wasm));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Wasmtime_CloneOverAMemoryWithoutWasmtimesReservation_IsRefused_SayingWhatItNeeds()
    {
        using IGuestInstance template = TestModules.Basic(GuestRuntime.Wasmtime);
        using var small = new StandaloneMemory(16, 64); // no reservation: Wasmtime's code has no bounds checks
        var e = Assert.Throws<InvalidOperationException>(() => template.Clone(small));
        Assert.Contains("reservation", e.Message);
        Assert.Equal(5, template.GetFunction<int, int, int>("add")(2, 3)); // the template is untouched
        Assert.False(small.Memory.IsDisposed); // the caller's memory is left to the caller
    }

    private static IGuestModule Load(GuestRuntime runtime, byte[] wasm) => runtime == GuestRuntime.Native
        ? WasmModule.Load(wasm, TestModules.Cache)
        : CowWasm.Runtime.Wasmtime.WasmtimeModule.Load(wasm, TestModules.WasmtimeCache);

    [Theory]
    [InlineData(GuestRuntime.Native, "wasm2c rejected")]
    [InlineData(GuestRuntime.Wasmtime, "Wasmtime refused")]
    public void WasmThatOnlyTheCompilerCanReject_IsAWasmFormatError(GuestRuntime runtime, string expected)
    {
        // Well-framed, but the function body pops from an empty stack.
        byte[] wasm = [0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7F, 3, 2, 1, 0, 10, 4, 1, 2, 0, 0x0B];
        var e = Assert.Throws<WasmFormatException>(() => Load(runtime, wasm));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Clone_EqualsTemplate_ThenDivergesIndependently(GuestRuntime runtime)
    {
        IGuestModule module = TestModules.Get("basic", runtime);
        var options = new InstanceOptions { Wasi = new WasiConfiguration(), Memory = LeaderMemory.For(new SyncOptions()) };
        using IGuestInstance template = module.Instantiate(TestModules.BasicLinker(module.Info), options);
        template.GetFunction("store").Invoke([1000, 77], []);
        template.GetAction("bump")();
        SyncStrategy strategy = ((LeaderMemory)template.LinearMemory!).Strategy;
        strategy.Commit();

        using IGuestInstance clone = template.Clone(new ReplicaMemory(strategy.CreateReplica()));

        Assert.Equal(77, clone.GetFunction<int, int>("load")(1000));
        Assert.Equal("hello, wasm\n", Encoding.ASCII.GetString(clone.GetMemory(16, 12)));
        Assert.Equal(template.CaptureGlobals(), clone.CaptureGlobals());
        Assert.Equal(9, clone.GetFunction<int, int, int, int>("indirect")(0, 4, 5)); // tables copied and rebound

        clone.GetFunction("store").Invoke([1000, 5], []);
        clone.GetAction("bump")();
        Assert.Equal(77, template.GetFunction<int, int>("load")(1000));
        Assert.Equal(1UL, Global(runtime, template, "counter"));
        Assert.Equal(2UL, Global(runtime, clone, "counter"));
        template.GetFunction("store").Invoke([1004, 6], []);
        Assert.Equal(0, clone.GetFunction<int, int>("load")(1004));
        Assert.Equal(1, clone.GetFunction<int, int>("grow")(1)); // a replica grows as scratch (PoolTests: dropped at reset)
        Assert.Equal(1, template.GetFunction<int>("size")());
        Assert.Equal(4, clone.GetFunction<int, int>("call_host")(3)); // imports bound to the clone
    }

    [Theory]
    [MemberData(nameof(TestModules.Runtimes), MemberType = typeof(TestModules))]
    public void Clone_WithAShorterMemory_IsRejected(GuestRuntime runtime)
    {
        using IGuestInstance template = TestModules.Basic(runtime);
        using var small = new StandaloneMemory(1, 16);
        Assert.Throws<ArgumentException>(() => template.Clone(small));
    }

    /// <summary>The exported global <paramref name="name"/> of basic.wat, as a raw slot.</summary>
    private static ulong Global(GuestRuntime runtime, IGuestInstance guest, string name) =>
        guest.CaptureGlobals()[(int)TestModules.Get("basic", runtime).Info.Exports.Single(e => e.Kind == WasmExternKind.Global && e.Name == name).Index];

    private static void Trigger(IGuestInstance guest, string what)
    {
        switch (what)
        {
            case "div_s 1 0": guest.GetFunction<int, int, int>("div_s")(1, 0); break;
            case "div_s min -1": guest.GetFunction<int, int, int>("div_s")(int.MinValue, -1); break;
            case "trunc nan": guest.GetFunction<double, int>("trunc")(double.NaN); break;
            case "trunc 1e20": guest.GetFunction<double, int>("trunc")(1e20); break;
            case "unreachable": guest.GetAction("unreachable")(); break;
            case "load oob": guest.GetFunction<int, int>("load")(65536 - 2); break;
            case "indirect null": guest.GetFunction<int, int, int, int>("indirect")(2, 1, 1); break;
            case "indirect out of table": guest.GetFunction<int, int, int, int>("indirect")(7, 1, 1); break;
            case "indirect wrong type": guest.GetAction<int>("indirect_wrong_type")(0); break;
            case "recurse": guest.GetFunction<int, int>("recurse")(0); break;
            case "host fail": guest.GetAction("call_host_fail")(); break;
            default: throw new ArgumentException(what);
        }
    }
}
