using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Runtime.Native;

/// <summary>
/// A compiled module: a native artifact loaded with <see cref="NativeLibrary"/>, described by the metadata block
/// the artifact carries (see <see cref="ArtifactMetadata"/>).
/// Create instances with <see cref="Instantiate"/>.
/// </summary>
/// <remarks>
/// Thread-safe: many instances of one module may run on many threads. Disposing the module while instances
/// live defers unloading the library until the last instance is disposed.
/// </remarks>
public sealed unsafe class WasmModule : IGuestModule
{
    /// <summary>
    /// The artifact ABI this runtime speaks (cowwasm-rt.c's CW_ABI_VERSION, also recorded in every artifact's
    /// metadata block). 2: artifacts carry their metadata (<c>cw_metadata</c>).
    /// </summary>
    public const int AbiVersion = ArtifactAbi.Version;

    private readonly nint _library;
    private readonly Lock _gate = new();
    private int _liveInstances;
    private bool _disposed;

    private WasmModule(string libraryPath, Artifact? artifact, nint library, ArtifactOptions options)
    {
        LibraryPath = libraryPath;
        Artifact = artifact;
        _library = library;
        try
        {
            (MetadataBlock, MetadataLength) = FindMetadata(library, libraryPath);
            // SAFETY: the block is read-only data of the library, which stays mapped until Dispose frees it;
            // Decode reads only within these bounds and copies what it keeps.
            Info = ArtifactMetadata.Decode(new ReadOnlySpan<byte>((void*)MetadataBlock, MetadataLength), libraryPath, AbiVersion);
            EntryPoints = new ArtifactEntryPoints(library, libraryPath, Info.FunctionExports.Count());
            int version = EntryPoints.AbiVersion();
            if (version != AbiVersion)
            {
                throw new ArtifactFormatException(libraryPath,
                    $"its metadata says ABI {AbiVersion} but its runtime answers {version}: the artifact was assembled from mismatched parts");
            }

            MarksStores = !NativeLibrary.TryGetExport(library, ArtifactAbi.NoStoreBarrier, out _);
            if (NativeLibrary.TryGetExport(library, ArtifactAbi.GuardPages, out nint guard))
            {
                // SAFETY: an exported const uint64_t in the library's read-only data.
                ulong reservation = *(ulong*)guard;
                if (reservation != (ulong)Native.GuardPages.ReservationBytes)
                {
                    throw new ArtifactFormatException(libraryPath,
                        $"its guest code needs {reservation} bytes of reservation per memory; this runtime gives {Native.GuardPages.ReservationBytes}");
                }

                BoundsChecks = BoundsChecks.GuardPages;
                Native.GuardPages.EnsureInstalled(options); // before any of its code can run
            }
            else
            {
                BoundsChecks = BoundsChecks.Software;
            }

            EntryPoints.SetHost(NativeHost.Table);
            InstanceSize = (int)EntryPoints.InstanceSize();
            var exports = new Dictionary<string, (int, WasmExport)>(StringComparer.Ordinal);
            foreach (WasmExport export in Info.FunctionExports)
            {
                exports[export.Name] = (exports.Count, export);
            }

            FunctionExports = exports;
            EntryPoints.InitModule();
        }
        catch
        {
            NativeLibrary.Free(library);
            throw;
        }
    }

    /// <summary>What the module declares, read from the artifact's metadata block (not from the wasm).</summary>
    public WasmModuleInfo Info { get; }

    /// <inheritdoc/>
    /// <remarks>False for an artifact built with <see cref="ArtifactOptions.StoreBarrier"/> off (it exports
    /// <see cref="ArtifactAbi.NoStoreBarrier"/>).</remarks>
    public bool MarksStores { get; }

    /// <summary>How the artifact's guest code keeps accesses inside linear memory (how it was built).</summary>
    public BoundsChecks BoundsChecks { get; }

    /// <summary>The address space each memory of this module must reserve (<see cref="LinearMemoryFactory"/>).</summary>
    public long MemoryReservationBytes => BoundsChecks == BoundsChecks.GuardPages ? Native.GuardPages.ReservationBytes : 0;

    /// <summary>The shared object this module runs.</summary>
    public string LibraryPath { get; }

    /// <summary>How the artifact was found or compiled; null when it was opened by path (<see cref="Open(string)"/>).</summary>
    public Artifact? Artifact { get; }

    internal int InstanceSize { get; }

    /// <summary>The artifact's entry points (the ABI's function pointers).</summary>
    internal ArtifactEntryPoints EntryPoints { get; }

    internal IReadOnlyDictionary<string, (int Index, WasmExport Export)> FunctionExports { get; }

    /// <summary>
    /// Compiles (or finds in the cache) and loads <paramref name="wasm"/>. On a cache hit the wasm is hashed for the
    /// cache key but not parsed: the metadata comes from the artifact.
    /// </summary>
    /// <exception cref="WasmFormatException">Malformed or unsupported wasm.</exception>
    /// <exception cref="ArtifactCompilationException">A tool is missing or failed.</exception>
    /// <exception cref="ArtifactFormatException">The artifact's metadata is corrupt or for another ABI.</exception>
    public static Task<WasmModule> LoadAsync(byte[] wasm, ArtifactOptions? options = null,
        IProgress<ArtifactProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wasm);
        return ArtifactCompiler.CompileAsync(wasm, options, progress, cancellationToken)
            .ContinueWith(t => Open(t.GetAwaiter().GetResult().LibraryPath, t.GetAwaiter().GetResult(), options), cancellationToken,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Loads an artifact compiled earlier (for instance by <see cref="ArtifactCompiler.CompileAsync"/> ahead of time).</summary>
    /// <inheritdoc cref="Open(string)"/>
    public static WasmModule Open(Artifact artifact)
    {
        ArgumentNullException.ThrowIfNull(artifact);
        return Open(artifact.LibraryPath, artifact, null);
    }

    /// <summary>
    /// Loads the artifact at <paramref name="libraryPath"/>: <c>dlopen</c>, then the metadata block it exports is
    /// checked where it was mapped (bounds, hash, ABI version). The wasm is not needed.
    /// </summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="libraryPath"/>.</exception>
    /// <exception cref="DllNotFoundException">The file is not a loadable shared object.</exception>
    /// <exception cref="ArtifactFormatException">No metadata block, a corrupt one, or one for another ABI. Nothing stays loaded.</exception>
    /// <remarks>A guard-page artifact installs the process's fault handler on first load (<see cref="Native.GuardPages"/>),
    /// building it in the default artifact cache if needed.</remarks>
    public static WasmModule Open(string libraryPath) => Open(libraryPath, null, null);

    private static WasmModule Open(string libraryPath, Artifact? artifact, ArtifactOptions? options)
    {
        ArgumentException.ThrowIfNullOrEmpty(libraryPath);
        string full = Path.GetFullPath(libraryPath);
        // The file is opened once, without following a link, checked through that descriptor (a cache artifact: owner,
        // permissions, manifest) and loaded through it, so what was checked is what runs.
        using SafeFileHandle opened = artifact is null
            ? FileTrust.OpenLibrary(full, requirePrivate: false)
            : ArtifactCache.OpenTrusted(full, options?.VerifyLibraryHash ?? false);
        return new WasmModule(full, artifact, FileTrust.Load(opened), options ?? new ArtifactOptions());
    }

    /// <summary>Where the artifact's metadata block is mapped, and its length (valid while the module is loaded).</summary>
    internal nint MetadataBlock { get; }

    /// <inheritdoc cref="MetadataBlock"/>
    internal int MetadataLength { get; }

    private static (nint Block, int Length) FindMetadata(nint library, string path)
    {
        if (!NativeLibrary.TryGetExport(library, ArtifactAbi.Metadata, out nint block) ||
            !NativeLibrary.TryGetExport(library, ArtifactAbi.MetadataSize, out nint size))
        {
            throw new ArtifactFormatException(path,
                $"exports no {ArtifactAbi.Metadata} metadata block: it was built for runtime ABI 1 or is not a CowWasm artifact. " +
                "Rebuild it with this CowWasm (delete its cache entry to rebuild)");
        }

        // SAFETY: cw_metadata_size is an exported const uint64_t in the library's read-only data, mapped while the
        // library is loaded (the caller frees it only after this returns or throws).
        ulong length = *(ulong*)size;
        if (length > ArtifactMetadata.MaxBlockBytes)
        {
            throw new ArtifactFormatException(path, $"metadata block claims {length:N0} bytes (more than {ArtifactMetadata.MaxBlockBytes:N0})");
        }

        // cw_metadata is the exported const array whose length cw_metadata_size records (the generator writes both).
        return (block, (int)length);
    }

    /// <summary>Synchronous form of <see cref="LoadAsync"/>.</summary>
    public static WasmModule Load(byte[] wasm, ArtifactOptions? options = null, IProgress<ArtifactProgress>? progress = null) =>
        LoadAsync(wasm, options, progress).GetAwaiter().GetResult();

    /// <summary>Creates an instance: links imports, allocates memory through <see cref="InstanceOptions.Memory"/>, runs data/element segments and the start function.</summary>
    /// <exception cref="WasmLinkException">An import is missing or mistyped.</exception>
    /// <exception cref="WasmTrapException">The start function or a segment trapped.</exception>
    public WasmInstance Instantiate(Linker linker, InstanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(linker);
        var imports = linker.Resolve(Info);
        AddInstance(); // Create releases it if instantiation fails
        return WasmInstance.Create(this, imports, options ?? new InstanceOptions());
    }

    IGuestInstance IGuestModule.Instantiate(Linker linker, InstanceOptions? options) => Instantiate(linker, options);


    internal void AddInstance()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _liveInstances++;
        }
    }

    internal void RemoveInstance()
    {
        lock (_gate)
        {
            if (--_liveInstances == 0 && _disposed)
            {
                Unload();
            }
        }
    }

    private void Unload() => NativeLibrary.Free(_library);

    /// <summary>Unloads the artifact now, or when the last instance is disposed.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_liveInstances == 0)
            {
                Unload();
            }
        }
    }
}
