using System.Runtime.InteropServices;
using CowWasm.Runtime.Wasmtime.Native;
using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// The process's Wasmtime engine for CowWasm guests: Cranelift, epoch interruption, multi-memory (the barrier's dirty
/// map), copy-on-write memory initialization off, and our host memory creator, so that every linear memory Wasmtime
/// asks for is memory-engine memory that the instantiating thread supplies (<see cref="MemoryRequest"/>).
/// </summary>
/// <remarks>
/// <para>Wasmtime asks each memory for a 4 GiB reservation and a 32 MiB guard (its defaults, which let Cranelift drop
/// bounds checks); the memory must never move. <c>memory_init_cow</c> must be off with a host memory creator: with it
/// on, a module with data segments aborts the process (Wasmtime 50: "memory_image is Some only for mmap-based
/// memories").</para>
/// <para>Thread-safe: compiled modules and the engine are shared; stores are per instance.</para>
/// </remarks>
internal sealed unsafe class WasmtimeEngine
{
    private static readonly Lazy<WasmtimeEngine> s_shared = new(() => new WasmtimeEngine(), LazyThreadSafetyMode.ExecutionAndPublication);

    [ThreadStatic]
    private static MemoryRequest? t_request;

    private WasmtimeEngine()
    {
        if (!WasmtimeNative.HasMemoryCreator())
        {
            throw new NotSupportedException(
                "The libwasmtime loaded by the binding does not export wasmtime_config_host_memory_creator_set; the " +
                "Wasmtime backend needs it to give guests memory-engine memory.");
        }

        var config = new Config()
            .WithEpochInterruption(true)
            .WithMultiMemory(true)
            .WithSIMD(true)
            .WithBulkMemory(true)
            .WithMemoryInitCopyOnWrite(false)
            .WithMemoryMayMove(false)
            .WithCompilerStrategy(CompilerStrategy.Cranelift)
            .WithOptimizationLevel(OptimizationLevel.Speed);
        var creator = new WasmtimeNative.MemoryCreator { NewMemory = &NewMemory };
        // SAFETY: the config copies the struct; the function pointer is a static method that lives forever.
        WasmtimeNative.wasmtime_config_host_memory_creator_set(WasmtimeNative.ConfigHandle(config), &creator);
        Engine = new Engine(config); // takes the config over
    }

    /// <summary>The engine.</summary>
    public static WasmtimeEngine Shared => s_shared.Value;

    public Engine Engine { get; }

    /// <summary>
    /// A string naming what compiled code depends on beyond the module: the binding's version and these settings.
    /// Part of the compiled-code cache key.
    /// </summary>
    public static string SettingsKey { get; } =
        $"wasmtime-dotnet {typeof(Engine).Assembly.GetName().Version}; cranelift speed; epochs; multi-memory; simd; cow-init off; static 4G+32M";

    /// <summary>Runs <paramref name="instantiate"/> with <paramref name="request"/> answering Wasmtime's memory requests on this thread.</summary>
    public static T WithMemories<T>(MemoryRequest request, Func<T> instantiate)
    {
        MemoryRequest? outer = t_request;
        t_request = request;
        try
        {
            return instantiate();
        }
        finally
        {
            t_request = outer;
        }
    }

    [UnmanagedCallersOnly]
    private static nint NewMemory(nint env, nint type, nuint minimum, nuint maximum, nuint reserved, nuint guard, WasmtimeNative.LinearMemory* result)
    {
        try
        {
            MemoryRequest? request = t_request;
            if (request is null)
            {
                return WasmtimeNative.Error("CowWasm's Wasmtime engine creates memories only while it instantiates a module.");
            }

            HostMemory memory;
            try
            {
                memory = request.Create((long)minimum, (long)maximum, (long)reserved, (long)guard);
            }
            catch (Exception e)
            {
                request.Failure = e; // the instantiating thread rethrows it as it is; Wasmtime only sees an error
                throw;
            }

            result->Env = GCHandle.ToIntPtr(GCHandle.Alloc(memory));
            result->GetMemory = &GetMemory;
            result->GrowMemory = &GrowMemory;
            result->Finalizer = &FinalizeMemory;
            return 0;
        }
        catch (Exception e)
        {
            return WasmtimeNative.Error(e.Message);
        }
    }

    [UnmanagedCallersOnly]
    private static byte* GetMemory(nint env, nuint* byteSize, nuint* byteCapacity)
    {
        // SAFETY: env is the GCHandle NewMemory made; Wasmtime calls this until the finalizer.
        var memory = (HostMemory)GCHandle.FromIntPtr(env).Target!;
        *byteSize = (nuint)memory.ByteLength;
        *byteCapacity = (nuint)memory.ByteCapacity;
        return memory.Pointer;
    }

    [UnmanagedCallersOnly]
    private static nint GrowMemory(nint env, nuint newSize)
    {
        try
        {
            var memory = (HostMemory)GCHandle.FromIntPtr(env).Target!;
            return memory.TryGrow((long)newSize) ? 0 : WasmtimeNative.Error($"memory cannot grow to {newSize} bytes");
        }
        catch (Exception e)
        {
            return WasmtimeNative.Error(e.Message);
        }
    }

    [UnmanagedCallersOnly]
    private static void FinalizeMemory(nint env) => GCHandle.FromIntPtr(env).Free();
}
