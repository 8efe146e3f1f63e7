using System.Collections.Concurrent;
using CowWasm.Runtime.Wasi;
using CowWasm.Runtime;
using CowWasm.Runtime.Wasmtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Tests.Support;

/// <summary>Test guests written in WAT (tests/Guests), assembled with wat2wasm and compiled once per test run.</summary>
internal static class TestModules
{
    private static readonly ConcurrentDictionary<(string, BoundsChecks), Lazy<WasmModule>> s_modules = new();

    /// <summary>
    /// How the suite's modules check bounds: guard pages (the default), or software checks when
    /// COWWASM_TEST_BOUNDS_CHECKS=Software — test.sh runs the runtime tests a second time that way.
    /// </summary>
    public static BoundsChecks Mode { get; } =
        Enum.TryParse(Environment.GetEnvironmentVariable("COWWASM_TEST_BOUNDS_CHECKS"), out BoundsChecks mode) ? mode : BoundsChecks.GuardPages;

    /// <summary>The artifact cache the tests share (under the test output; a clean clone starts empty), in <see cref="Mode"/>.</summary>
    public static ArtifactOptions Cache { get; } = new()
    {
        CacheDirectory = Path.Combine(AppContext.BaseDirectory, "artifact-cache"),
        BoundsChecks = Mode,
    };

    public static WasmModule Get(string name) => Get(name, Mode);

    private static readonly ConcurrentDictionary<string, Lazy<WasmtimeModule>> s_wasmtime = new();

    /// <summary>tests/Guests/<paramref name="name"/>.wat on <paramref name="runtime"/> (Wasmtime: with the store barrier, cached under the test output).</summary>
    public static IGuestModule Get(string name, GuestRuntime runtime) => runtime == GuestRuntime.Native
        ? Get(name)
        : s_wasmtime.GetOrAdd(name, n => new Lazy<WasmtimeModule>(() => WasmtimeModule.Load(Wasm(n), WasmtimeCache))).Value;

    /// <summary>Where the tests' Wasmtime modules cache their compiled code (under the test output; a clean clone starts empty).</summary>
    public static WasmtimeOptions WasmtimeCache { get; } = new() { CacheDirectory = Path.Combine(AppContext.BaseDirectory, "artifact-cache") };

    /// <summary>Both backends, for theories that run on each (one parameter, not copies of the tests).</summary>
    public static TheoryData<GuestRuntime> Runtimes => [GuestRuntime.Native, GuestRuntime.Wasmtime];

    /// <summary>tests/Guests/<paramref name="name"/>.wat built with the given bounds checks.</summary>
    public static WasmModule Get(string name, BoundsChecks checks) =>
        s_modules.GetOrAdd((name, checks), k => new Lazy<WasmModule>(() => WasmModule.Load(Wasm(k.Item1), Cache with { BoundsChecks = k.Item2 }))).Value;

    /// <summary>Assembles tests/Guests/<paramref name="name"/>.wat.</summary>
    public static byte[] Wasm(string name) => Assemble(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Guests", name + ".wat")));

    /// <summary>Assembles WAT text with wat2wasm (from Debian's wabt, installed by test.sh).</summary>
    public static byte[] Assemble(string wat) => WatAssembler.Assemble(wat);

    /// <summary>The linker for basic.wat: env.host_add adds, env.host_fail throws, WASI.</summary>
    public static Linker BasicLinker(WasmModule module) => BasicLinker(module.Info);

    public static Linker BasicLinker(WasmModuleInfo info)
    {
        var linker = new Linker()
            .Define("env", "host_add", [WasmValueKind.I32, WasmValueKind.I32], [WasmValueKind.I32],
                (caller, args, results) => results[0] = (uint)((int)args[0] + (int)args[1]))
            .Define("env", "host_fail", [], [],
                (caller, args, results) => throw new InvalidDataException("host_fail was called"));
        return WasiPreview1.AddTo(linker, info);
    }

    /// <summary>basic.wat instantiated on <paramref name="runtime"/> with <see cref="BasicLinker(WasmModuleInfo)"/> and WASI.</summary>
    public static IGuestInstance Basic(GuestRuntime runtime, InstanceOptions? options = null)
    {
        IGuestModule module = Get("basic", runtime);
        return module.Instantiate(BasicLinker(module.Info), options ?? new InstanceOptions { Wasi = new WasiConfiguration() });
    }

    public static WasmInstance Basic(InstanceOptions? options = null)
    {
        WasmModule module = Get("basic");
        return module.Instantiate(BasicLinker(module), options ?? new InstanceOptions { Wasi = new WasiConfiguration() });
    }
}
