using System.Runtime.InteropServices;

namespace CowWasm.Pool.Wasm;

/// <summary>
/// A compiled module: a native artifact loaded with <see cref="NativeLibrary"/> plus its metadata.
/// Create instances with <see cref="Instantiate"/>.
/// </summary>
/// <remarks>
/// Thread-safe: many instances of one module may run on many threads. Disposing the module while instances
/// live defers unloading the library until the last instance is disposed.
/// </remarks>
public sealed unsafe class WasmModule : IGuestModule
{
    /// <summary>The artifact ABI this runtime speaks (cowwasm-rt.c's CW_ABI_VERSION).</summary>
    public const int AbiVersion = 1;

    private readonly nint _library;
    private readonly Lock _gate = new();
    private int _liveInstances;
    private bool _disposed;

    private WasmModule(WasmModuleInfo info, Artifact artifact, nint library)
    {
        Info = info;
        Artifact = artifact;
        _library = library;
        try
        {
            var abi = (delegate* unmanaged<int>)Export("cw_abi_version");
            int version = abi();
            if (version != AbiVersion)
            {
                throw new InvalidOperationException(
                    $"Artifact {artifact.LibraryPath} speaks ABI {version}; this runtime needs {AbiVersion}. Delete the cache entry to rebuild.");
            }

            ((delegate* unmanaged<nint, void>)Export("cw_set_host"))(NativeHost.Table);
            InstanceSize = (int)((delegate* unmanaged<nuint>)Export("cw_instance_size"))();
            Instantiate_ = (delegate* unmanaged<nint, nint, int>)Export("cw_instantiate");
            Free = (delegate* unmanaged<nint, void>)Export("cw_free");
            MemoryOf = (delegate* unmanaged<nint, nint>)Export("cw_memory");
            GlobalOf = (delegate* unmanaged<nint, uint, nint>)Export("cw_global");
            CloneInto = (delegate* unmanaged<nint, nint, nint, byte*, int>)Export("cw_clone");
            SetMaxDepth = (delegate* unmanaged<uint, void>)Export("cw_set_max_call_depth");
            var exports = new Dictionary<string, (int, WasmExport)>(StringComparer.Ordinal);
            var trampolines = new List<nint>();
            foreach (WasmExport export in info.FunctionExports)
            {
                exports[export.Name] = (trampolines.Count, export);
                trampolines.Add(Export($"cw_export_{trampolines.Count}"));
            }

            FunctionExports = exports;
            Trampolines = [.. trampolines];
            ((delegate* unmanaged<void>)Export("cw_init_module"))();
        }
        catch
        {
            NativeLibrary.Free(library);
            throw;
        }
    }

    /// <summary>What the module declares.</summary>
    public WasmModuleInfo Info { get; }

    /// <summary>The artifact on disk.</summary>
    public Artifact Artifact { get; }

    internal int InstanceSize { get; }

    internal delegate* unmanaged<nint, nint, int> Instantiate_ { get; }

    internal delegate* unmanaged<nint, void> Free { get; }

    internal delegate* unmanaged<nint, nint> MemoryOf { get; }

    internal delegate* unmanaged<nint, uint, nint> GlobalOf { get; }

    internal delegate* unmanaged<nint, nint, nint, byte*, int> CloneInto { get; }

    internal delegate* unmanaged<uint, void> SetMaxDepth { get; }

    internal IReadOnlyDictionary<string, (int Index, WasmExport Export)> FunctionExports { get; }

    internal nint[] Trampolines { get; }

    /// <summary>Compiles (or finds in the cache) and loads <paramref name="wasm"/>.</summary>
    /// <exception cref="WasmFormatException">Malformed or unsupported wasm.</exception>
    /// <exception cref="ArtifactCompilationException">A tool is missing or failed.</exception>
    public static Task<WasmModule> LoadAsync(byte[] wasm, ArtifactOptions? options = null,
        IProgress<ArtifactProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(wasm);
        WasmModuleInfo info = WasmBinaryReader.Read(wasm);
        return ArtifactCompiler.CompileAsync(wasm, options, progress, cancellationToken)
            .ContinueWith(t => Open(info, t.GetAwaiter().GetResult()), cancellationToken,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Loads an artifact compiled earlier (for instance by <see cref="ArtifactCompiler.CompileAsync"/> ahead of time).</summary>
    public static WasmModule Open(WasmModuleInfo info, Artifact artifact)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(artifact);
        return new WasmModule(info, artifact, NativeLibrary.Load(artifact.LibraryPath));
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

    /// <summary>Sets the guest call-depth limit for this artifact (default 50 000 frames; the native stack margin applies too).</summary>
    public void SetMaxCallDepth(uint depth) => SetMaxDepth(depth);

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
                NativeLibrary.Free(_library);
            }
        }
    }

    private nint Export(string name) =>
        NativeLibrary.TryGetExport(_library, name, out nint address)
            ? address
            : throw new InvalidOperationException($"Artifact {Artifact.LibraryPath} lacks the entry point {name}.");

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
                NativeLibrary.Free(_library);
            }
        }
    }
}

/// <summary>Per-instance options.</summary>
public sealed record InstanceOptions
{
    /// <summary>Creates the instance's linear memory. Default: <see cref="StandaloneMemory.Create"/>.</summary>
    public LinearMemoryFactory Memory { get; init; } = StandaloneMemory.Create;

    /// <summary>WASI configuration for this instance (args, environment, files); null for none.</summary>
    public CowWasm.Pool.Wasi.WasiConfiguration? Wasi { get; init; }
}
