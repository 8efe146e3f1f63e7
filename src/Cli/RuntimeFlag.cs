using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Runtime.Wasmtime;

namespace CowWasm.Cli;

/// <summary><c>--runtime wasmtime|native</c>: which backend runs the guest (default <see cref="Default"/>; README, "Choosing a runtime").</summary>
internal static class RuntimeFlag
{
    public const string Help = "[--runtime wasmtime|native]";

    /// <summary>The default backend: Wasmtime (first answer on a fresh machine in about a second instead of minutes of gcc).</summary>
    public const GuestRuntime Default = GuestRuntime.Wasmtime;

    /// <summary>The runtime <paramref name="args"/> names (or the default), and the other arguments.</summary>
    /// <exception cref="ArgumentException">--runtime without a value, or with a value that names no runtime.</exception>
    public static (GuestRuntime Runtime, string[] Arguments) Parse(string[] args)
    {
        int at = Array.IndexOf(args, "--runtime");
        if (at < 0)
        {
            return (Default, args);
        }

        if (at + 1 >= args.Length)
        {
            throw new ArgumentException("--runtime needs a value: wasmtime or native.");
        }

        GuestRuntime runtime = args[at + 1].ToLowerInvariant() switch
        {
            "wasmtime" => GuestRuntime.Wasmtime,
            "native" => GuestRuntime.Native,
            _ => throw new ArgumentException($"--runtime: \"{args[at + 1]}\" is not a runtime (wasmtime or native)."),
        };
        return (runtime, [.. args[..at], .. args[(at + 2)..]]);
    }

    /// <summary>Loads <paramref name="wasm"/> on <paramref name="runtime"/> (compiled, or from its cache).</summary>
    public static IGuestModule Load(byte[] wasm, GuestRuntime runtime) => runtime == GuestRuntime.Native
        ? WasmModule.Load(wasm)
        : WasmtimeModule.Load(wasm);
}
