using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Runtime.Native;

/// <summary>
/// The process's guard-page fault handler (native/cowwasm-signals.c, built into <c>libcowwasm-signals.so</c> in the
/// artifact cache the first time a <see cref="BoundsChecks.GuardPages"/> module is loaded, then loaded once and never
/// unloaded). It claims a SIGSEGV/SIGBUS only on a thread that is running guest code, at an address inside a
/// registered guest reservation, and turns it into <see cref="TrapKind.OutOfBounds"/>; every other signal goes to the
/// handler installed before it — the .NET runtime's, so <see cref="NullReferenceException"/> and .NET's crash and
/// stack-overflow reports are unchanged. It runs on the thread's alternate signal stack.
/// </summary>
/// <remarks>Thread-safe. Registration is O(slots) under a native lock; the handler reads the registry without one.</remarks>
public static unsafe class GuardPages
{
    /// <summary>The address space a guard-page memory reserves: 8 GiB (any 32-bit address plus offset) + 64 KiB.</summary>
    public const long ReservationBytes = (1L << 33) + 65536;

    private const string LibraryName = "libcowwasm-signals.so";
    private static readonly Lock s_gate = new();
    private static Api? s_api;

    /// <summary>Whether the handler is installed in this process.</summary>
    public static bool IsInstalled => Volatile.Read(ref s_api) is not null;

    /// <summary>Faults the handler has turned into traps since the process started (0 before it is installed).</summary>
    public static long ClaimedFaults => Volatile.Read(ref s_api) is { } api ? (long)api.Claimed() : 0;

    /// <summary>
    /// Builds (once per runtime version, in <paramref name="options"/>' cache), loads and installs the handler; a
    /// no-op once installed.
    /// </summary>
    /// <exception cref="ArtifactCompilationException">gcc failed.</exception>
    /// <exception cref="InvalidOperationException">The library could not be loaded (for example no static TLS left for
    /// it) or <c>sigaction</c> failed.</exception>
    public static void EnsureInstalled(ArtifactOptions options)
    {
        if (Volatile.Read(ref s_api) is not null)
        {
            return;
        }

        lock (s_gate)
        {
            if (s_api is not null)
            {
                return;
            }

            string path = Build(options);
            nint library;
            try
            {
                // Checked and loaded through one descriptor, like every artifact; never unloaded.
                using SafeFileHandle opened = ArtifactCache.OpenTrusted(path, verifyHash: true);
                library = FileTrust.Load(opened);
            }
            catch (DllNotFoundException e)
            {
                throw new InvalidOperationException($"Cannot load the guard-page fault handler {path}: {e.Message}", e);
            }

            // SAFETY: the library stays loaded for the process's lifetime (never freed), so these pointers stay valid.
            var api = new Api(
                (delegate* unmanaged<int>)NativeLibrary.GetExport(library, "cws_install"),
                (delegate* unmanaged<nint>)NativeLibrary.GetExport(library, "cws_thread"),
                (delegate* unmanaged<nuint, ulong, int>)NativeLibrary.GetExport(library, "cws_register"),
                (delegate* unmanaged<int, void>)NativeLibrary.GetExport(library, "cws_unregister"),
                (delegate* unmanaged<ulong>)NativeLibrary.GetExport(library, "cws_claimed_faults"));
            int error = api.Install();
            if (error != 0)
            {
                throw new InvalidOperationException($"sigaction failed installing the guard-page fault handler (errno {error}).");
            }

            NativeHost.SetGuardThread(api.Thread);
            Volatile.Write(ref s_api, api);
        }
    }

    /// <summary>Registers [<paramref name="start"/>, +<paramref name="length"/>) as a guest reservation; returns the slot.</summary>
    /// <exception cref="InvalidOperationException">The handler is not installed, or every slot is taken.</exception>
    internal static int Register(nint start, long length)
    {
        Api api = Volatile.Read(ref s_api) ?? throw new InvalidOperationException("The guard-page fault handler is not installed.");
        int slot = api.Register((nuint)start, (ulong)length);
        return slot >= 0
            ? slot
            : throw new InvalidOperationException(
                "Too many guard-page memories at once (the fault handler's registry is full); dispose instances or use BoundsChecks.Software.");
    }

    internal static void Unregister(int slot) => Volatile.Read(ref s_api)?.Unregister(slot);

    /// <summary>The library's path in the cache, building and publishing it first if needed (well under a second).</summary>
    private static string Build(ArtifactOptions options)
    {
        byte[] source = ArtifactBuilder.RuntimeFile("cowwasm-signals.c");
        string[] arguments = ["-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Werror"];
        var cache = ArtifactCache.For(options);
        string key = Convert.ToHexStringLower(SHA256.HashData(
            [.. source, .. Encoding.UTF8.GetBytes("|signals|" + string.Join(' ', arguments))]));
        if (cache.TryGet(key, verifyHash: true, out string cached, out _))
        {
            return cached;
        }

        string work = cache.CreateWorkDirectory(key);
        try
        {
            File.WriteAllBytes(Path.Combine(work, "cowwasm-signals.c"), source);
            (int code, string output) = ToolProcess.RunAsync("gcc",
                [.. arguments, "-o", ArtifactBuilder.LibraryName, "cowwasm-signals.c", "-lpthread"], work, null,
                CancellationToken.None).GetAwaiter().GetResult();
            if (code != 0)
            {
                throw new ArtifactCompilationException($"gcc failed building the guard-page fault handler (exit {code}): {output.Trim()}");
            }

            return cache.PublishAsync(work, key, options, CancellationToken.None).GetAwaiter().GetResult();
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    private sealed class Api(
        delegate* unmanaged<int> install,
        delegate* unmanaged<nint> thread,
        delegate* unmanaged<nuint, ulong, int> register,
        delegate* unmanaged<int, void> unregister,
        delegate* unmanaged<ulong> claimed)
    {
        public delegate* unmanaged<nint> Thread { get; } = thread;

        public int Install() => install();

        public int Register(nuint start, ulong length) => register(start, length);

        public void Unregister(int slot) => unregister(slot);

        public ulong Claimed() => claimed();
    }
}
