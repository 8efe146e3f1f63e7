using System.Runtime.InteropServices;

namespace CowWasm.Runtime.Native;

/// <summary>
/// The artifact's entry points, resolved once from a loaded library: the only table of unmanaged function pointers
/// in the runtime. Names and signatures are <see cref="ArtifactAbi"/>'s.
/// </summary>
internal sealed unsafe class ArtifactEntryPoints
{
    /// <summary>Resolves every entry point; a missing one is an <see cref="ArtifactFormatException"/> naming it.</summary>
    public ArtifactEntryPoints(nint library, string path, int functionExportCount)
    {
        AbiVersion = (delegate* unmanaged<int>)Resolve(library, path, ArtifactAbi.AbiVersion);
        SetHost = (delegate* unmanaged<nint, void>)Resolve(library, path, ArtifactAbi.SetHost);
        InstanceSize = (delegate* unmanaged<nuint>)Resolve(library, path, ArtifactAbi.InstanceSize);
        InitModule = (delegate* unmanaged<void>)Resolve(library, path, ArtifactAbi.InitModule);
        Free = (delegate* unmanaged<nint, void>)Resolve(library, path, ArtifactAbi.Free);
        Instantiate = (delegate* unmanaged<nint, nint, int>)Resolve(library, path, ArtifactAbi.Instantiate);
        Memory = (delegate* unmanaged<nint, ArtifactAbi.WasmRtMemory*>)Resolve(library, path, ArtifactAbi.Memory);
        Global = (delegate* unmanaged<nint, uint, nint>)Resolve(library, path, ArtifactAbi.Global);
        Clone = (delegate* unmanaged<nint, nint, nint, byte*, int>)Resolve(library, path, ArtifactAbi.Clone);
        TablesSize = (delegate* unmanaged<nint, nuint>)Resolve(library, path, ArtifactAbi.TablesSize);
        TablesCapture = (delegate* unmanaged<nint, byte*, void>)Resolve(library, path, ArtifactAbi.TablesCapture);
        TablesRestore = (delegate* unmanaged<nint, byte*, nuint, int>)Resolve(library, path, ArtifactAbi.TablesRestore);
        var exports = new nint[functionExportCount];
        for (int i = 0; i < exports.Length; i++)
        {
            exports[i] = Resolve(library, path, ArtifactAbi.ExportTrampoline(i));
        }

        Exports = exports;
    }

    public delegate* unmanaged<int> AbiVersion { get; }

    public delegate* unmanaged<nint, void> SetHost { get; }


    public delegate* unmanaged<nuint> InstanceSize { get; }

    public delegate* unmanaged<void> InitModule { get; }

    public delegate* unmanaged<nint, void> Free { get; }

    /// <summary>A trampoline: (instance, ctx) → status.</summary>
    public delegate* unmanaged<nint, nint, int> Instantiate { get; }

    public delegate* unmanaged<nint, ArtifactAbi.WasmRtMemory*> Memory { get; }

    public delegate* unmanaged<nint, uint, nint> Global { get; }

    /// <summary>(template, destination, ctx, memory data) → status.</summary>
    public delegate* unmanaged<nint, nint, nint, byte*, int> Clone { get; }

    public delegate* unmanaged<nint, nuint> TablesSize { get; }

    /// <summary>(instance, out): writes <see cref="TablesSize"/> bytes.</summary>
    public delegate* unmanaged<nint, byte*, void> TablesCapture { get; }

    /// <summary>(instance, state, length) → 0, CW_STATUS_OOM or -1 (not a state of this artifact).</summary>
    public delegate* unmanaged<nint, byte*, nuint, int> TablesRestore { get; }

    /// <summary>Export trampolines as <c>delegate* unmanaged&lt;nint, nint, ulong*, ulong*, int&gt;</c>: (instance, ctx, args, results) → status.</summary>
    public nint[] Exports { get; }

    private static nint Resolve(nint library, string path, string name) =>
        NativeLibrary.TryGetExport(library, name, out nint address)
            ? address
            : throw new ArtifactFormatException(path, $"lacks the entry point {name}");
}
