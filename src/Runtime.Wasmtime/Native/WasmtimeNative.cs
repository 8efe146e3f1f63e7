using System.Reflection;
using System.Runtime.InteropServices;
using Wasmtime;

namespace CowWasm.Runtime.Wasmtime.Native;

/// <summary>
/// The only native surface of the Wasmtime backend beyond the wasmtime-dotnet binding: Wasmtime's host memory creator
/// (<c>crates/c-api/include/wasmtime/config.h</c>, v50), which the binding does not wrap, and the error constructor
/// its callbacks return failures through. The symbols are in the binding's own <c>libwasmtime.so</c>.
/// </summary>
internal static unsafe partial class WasmtimeNative
{
    private const string Library = "wasmtime";

    /// <summary><c>wasmtime_memory_creator_t</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MemoryCreator
    {
        public nint Env;
        public delegate* unmanaged<nint, nint, nuint, nuint, nuint, nuint, LinearMemory*, nint> NewMemory;
        public delegate* unmanaged<nint, void> Finalizer;
    }

    /// <summary><c>wasmtime_linear_memory_t</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LinearMemory
    {
        public nint Env;
        public delegate* unmanaged<nint, nuint*, nuint*, byte*> GetMemory;
        public delegate* unmanaged<nint, nuint, nint> GrowMemory;
        public delegate* unmanaged<nint, void> Finalizer;
    }

    /// <summary>Copies <paramref name="creator"/> into the config; call before the config makes an engine.</summary>
    [LibraryImport(Library)]
    public static partial void wasmtime_config_host_memory_creator_set(nint config, MemoryCreator* creator);

    /// <summary>A new <c>wasmtime_error_t*</c> owning a copy of the NUL-terminated message.</summary>
    [LibraryImport(Library)]
    private static partial nint wasmtime_error_new(byte* message);

    /// <summary>An error for a callback to return. Never throws (it runs inside Wasmtime's frames).</summary>
    public static nint Error(string message)
    {
        byte[] utf8 = new byte[System.Text.Encoding.UTF8.GetMaxByteCount(message.Length) + 1];
        System.Text.Encoding.UTF8.GetBytes(message, utf8);
        fixed (byte* p = utf8)
        {
            return wasmtime_error_new(p);
        }
    }

    /// <summary>
    /// The <c>wasm_config_t*</c> behind a <see cref="Config"/>. The binding keeps it in an internal
    /// <c>NativeHandle</c> (a <see cref="SafeHandle"/>); this is the one place that reaches for it, and it says so
    /// clearly if a binding update moved it.
    /// </summary>
    /// <exception cref="NotSupportedException">The binding no longer has the handle where this build expects it.</exception>
    public static nint ConfigHandle(Config config)
    {
        PropertyInfo? property = typeof(Config).GetProperty("NativeHandle", BindingFlags.Instance | BindingFlags.NonPublic);
        if (property?.GetValue(config) is not SafeHandle handle || handle.IsInvalid || handle.IsClosed)
        {
            throw new NotSupportedException(
                $"The Wasmtime binding ({typeof(Config).Assembly.GetName().Version}) has no internal Config.NativeHandle; " +
                "CowWasm needs it to install its host memory creator. This build expects wasmtime-dotnet 50.0.x.");
        }

        return handle.DangerousGetHandle();
    }

    /// <summary>Whether the loaded <c>libwasmtime</c> exports the host memory creator (checked once, at engine creation).</summary>
    public static bool HasMemoryCreator()
    {
        // The binding loads the library on first use; make sure it is loaded, then look the symbol up.
        using var probe = new Config();
        return NativeLibrary.TryLoad(Library, typeof(Config).Assembly, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out nint library)
            && NativeLibrary.TryGetExport(library, "wasmtime_config_host_memory_creator_set", out _);
    }
}
