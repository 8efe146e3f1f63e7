using System.Runtime.InteropServices;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Runtime;

/// <summary>tests/Guests/bounds.wat: its linker and typed exports.</summary>
internal static class BoundsGuest
{
    /// <summary>
    /// env.reenter calls the instance's "spin" export (so the guest is inside a host function inside the guest);
    /// env.native_fault reads an unmapped native address (a host bug, which must crash as the host's).
    /// </summary>
    public static Linker Linker() => new Linker()
        .Define("env", "reenter", [], [WasmValueKind.I32], (caller, args, results) =>
        {
            caller.GetFunction("spin").Invoke([], []);
            results[0] = 1;
        })
        .Define("env", "native_fault", [], [], (caller, args, results) => ReadNative(0x18));

    public static WasmInstance Create(BoundsChecks checks) => TestModules.Get("bounds", checks).Instantiate(Linker());

    /// <summary>bounds.wat on <paramref name="runtime"/> (the native backend built with <paramref name="checks"/>; Wasmtime ignores them).</summary>
    public static IGuestInstance Create(GuestRuntime runtime, BoundsChecks checks) => runtime == GuestRuntime.Native
        ? Create(checks)
        : TestModules.Get("bounds", GuestRuntime.Wasmtime).Instantiate(Linker());

    public static int Load8(this IGuestInstance guest, uint address) => Call(guest, "load8", address);

    public static int Load16(this IGuestInstance guest, uint address) => Call(guest, "load16", address);

    public static int Load32(this IGuestInstance guest, uint address) => Call(guest, "load32", address);

    public static long Load64(this IGuestInstance guest, uint address) => (long)CallRaw(guest, "load64", address);

    public static int Call(this IGuestInstance guest, string export, params ulong[] args) => (int)CallRaw(guest, export, args);

    public static ulong CallRaw(this IGuestInstance guest, string export, params ulong[] args)
    {
        Span<ulong> results = stackalloc ulong[1];
        guest.GetFunction(export).Invoke(args, results);
        return results[0];
    }

    public static TrapKind TrapOf(Action call) => Assert.Throws<WasmTrapException>(call).Kind;

    /// <summary>A native read of <paramref name="address"/> (not managed code: libc's strlen), a SIGSEGV the runtime does not own.</summary>
    public static void ReadNative(nint address) => _ = Strlen(address);

    [DllImport("libc", EntryPoint = "strlen")]
    private static extern nuint Strlen(nint text);
}
