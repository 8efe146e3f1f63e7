namespace CowWasm.Runtime;

/// <summary>
/// A compiled guest module, whatever runs it: <c>CowWasm.Runtime.Native.WasmModule</c> (our runtime: wasm2c + gcc
/// artifacts) or <c>CowWasm.Runtime.Wasmtime.WasmtimeModule</c> (Cranelift). See docs/design.md, "Backends".
/// </summary>
public interface IGuestModule : IDisposable
{
    /// <summary>What the module declares.</summary>
    WasmModuleInfo Info { get; }

    /// <summary>
    /// Whether the guest's own stores (store instructions, <c>memory.fill</c>/<c>copy</c>/<c>init</c>, data segments)
    /// mark its memory's <see cref="CowWasm.Memory.PageMemory.DirtyMap"/>, so a
    /// <see cref="CowWasm.Memory.Trackers.TrackerKind.StoreBarrier"/> tracker sees them.
    /// </summary>
    bool MarksStores { get; }

    /// <summary>Creates an instance with <paramref name="linker"/>'s host functions.</summary>
    IGuestInstance Instantiate(Linker linker, InstanceOptions? options = null);
}
