namespace CowWasm.Runtime;

/// <summary>What a module declares, read from its binary without running it.</summary>
public sealed record WasmModuleInfo(
    IReadOnlyList<WasmFunctionType> Types,
    IReadOnlyList<WasmImport> Imports,
    IReadOnlyList<WasmExport> Exports,
    IReadOnlyList<WasmGlobal> Globals,
    IReadOnlyList<WasmLimits> Memories,
    IReadOnlyList<WasmLimits> Tables)
{
    /// <summary>SHA-256 of the module's bytes (upper-case hex): its identity, e.g. in snapshot files. Empty when unknown.</summary>
    public string ModuleHash { get; init; } = "";

    /// <summary>The one linear memory's limits, if the module defines one.</summary>
    public WasmLimits? Memory => Memories.Count > 0 ? Memories[0] : null;

    /// <summary>Function exports in the order the artifact numbers their trampolines.</summary>
    public IEnumerable<WasmExport> FunctionExports => Exports.Where(e => e.Kind == WasmExternKind.Function);
}
