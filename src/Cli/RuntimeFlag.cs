using System.CommandLine;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasmtime;

namespace CowWasm.Cli;

/// <summary><c>--runtime wasmtime|native</c>: which backend runs the guest (default <see cref="Default"/>; README, "Choosing a runtime").</summary>
internal static class RuntimeFlag
{
    /// <summary>The default backend: Wasmtime (first answer on a fresh machine in about a second instead of minutes of gcc).</summary>
    public const GuestRuntime Default = GuestRuntime.Wasmtime;

    /// <summary>A new <c>--runtime</c> option (an option belongs to one command).</summary>
    public static Option<GuestRuntime> Create() => new("--runtime")
    {
        Description = "wasmtime (default: Cranelift, compiles Trealla in about a second) or native (our wasm2c + gcc runtime: " +
                      "minutes to build Trealla once, cached); snapshots load on either",
        HelpName = "wasmtime|native",
        DefaultValueFactory = _ => Default,
        CustomParser = result =>
        {
            string value = result.Tokens[0].Value;
            switch (value.ToLowerInvariant())
            {
                case "wasmtime":
                    return GuestRuntime.Wasmtime;
                case "native":
                    return GuestRuntime.Native;
                default:
                    result.AddError($"--runtime: \"{value}\" is not a runtime (wasmtime or native).");
                    return Default;
            }
        },
    };

    /// <summary>Loads <paramref name="wasm"/> on <paramref name="runtime"/> (compiled, or from its cache).</summary>
    public static IGuestModule Load(byte[] wasm, GuestRuntime runtime) => runtime == GuestRuntime.Native
        ? WasmModule.Load(wasm)
        : WasmtimeModule.Load(wasm);
}
