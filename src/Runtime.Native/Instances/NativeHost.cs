using System.Runtime.InteropServices;

namespace CowWasm.Runtime.Native;

/// <summary>
/// The callbacks artifacts make into .NET (<see cref="ArtifactAbi.HostTable"/>, <c>cw_host_t</c> in cowwasm-rt.h). Each catches every exception:
/// nothing may unwind through the guest's native frames. One table for the process.
/// </summary>
internal static unsafe class NativeHost
{
    private static readonly Lazy<nint> s_table = new(() =>
    {
        // SAFETY: allocated once and never freed: artifacts keep the pointer for the process's lifetime.
        var table = (ArtifactAbi.HostTable*)NativeMemory.Alloc((nuint)sizeof(ArtifactAbi.HostTable));
        table->AllocateMemory = &AllocateMemory;
        table->GrowMemory = &GrowMemory;
        table->CallImport = &CallImport;
        table->GuardThread = null; // set by GuardPages before any guard-page artifact runs
        return (nint)table;
    });

    public static nint Table => s_table.Value;

    /// <summary>Fills <c>cw_host_t.guard_thread</c> with libcowwasm-signals.so's <c>cws_thread</c>.</summary>
    public static void SetGuardThread(delegate* unmanaged<nint> function) => ((ArtifactAbi.HostTable*)Table)->GuardThread = function;

    private static WasmInstance InstanceOf(nint ctx) => (WasmInstance)GCHandle.FromIntPtr(ctx).Target!;

    [UnmanagedCallersOnly]
    private static int AllocateMemory(nint ctx, uint initial, uint max, byte** data, byte** dirty)
    {
        WasmInstance instance = InstanceOf(ctx);
        try
        {
            *data = instance.AllocateLinearMemory(initial, max, out byte* map);
            *dirty = map;
            return 0;
        }
        catch (Exception e)
        {
            instance.PendingException = e;
            return 1;
        }
    }

    [UnmanagedCallersOnly]
    private static int GrowMemory(nint ctx, uint oldPages, uint delta, uint max)
    {
        try
        {
            return InstanceOf(ctx).GrowLinearMemory(oldPages + (long)delta) ? 0 : 1;
        }
        catch (Exception)
        {
            return 1; // Wasm sees -1: growth failure is not a trap
        }
    }

    [UnmanagedCallersOnly]
    private static int CallImport(nint ctx, uint index, ulong* args, ulong* results)
    {
        WasmInstance instance = InstanceOf(ctx);
        try
        {
            instance.InvokeImport(index, args, results);
            return 0;
        }
        catch (GuestExitException exit)
        {
            instance.PendingExitCode = exit.Code;
            return ArtifactAbi.StatusExit;
        }
        catch (Exception e)
        {
            instance.PendingException = e;
            return ArtifactAbi.StatusHostError;
        }
    }
}
