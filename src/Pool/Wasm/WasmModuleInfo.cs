namespace CowWasm.Pool.Wasm;

/// <summary>A WebAssembly value type.</summary>
public enum WasmValueKind : byte
{
    /// <summary>32-bit integer.</summary>
    I32 = 0x7F,

    /// <summary>64-bit integer.</summary>
    I64 = 0x7E,

    /// <summary>32-bit float.</summary>
    F32 = 0x7D,

    /// <summary>64-bit float.</summary>
    F64 = 0x7C,

    /// <summary>128-bit vector (not supported by the artifact ABI).</summary>
    V128 = 0x7B,

    /// <summary>Function reference.</summary>
    FuncRef = 0x70,

    /// <summary>External reference.</summary>
    ExternRef = 0x6F,
}

/// <summary>What an import or export refers to.</summary>
public enum WasmExternKind : byte
{
    /// <summary>A function.</summary>
    Function = 0,

    /// <summary>A table.</summary>
    Table = 1,

    /// <summary>A linear memory.</summary>
    Memory = 2,

    /// <summary>A global.</summary>
    Global = 3,
}

/// <summary>A function signature.</summary>
public sealed record WasmFunctionType(IReadOnlyList<WasmValueKind> Parameters, IReadOnlyList<WasmValueKind> Results)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"({string.Join(", ", Parameters)}) -> ({string.Join(", ", Results)})";
}

/// <summary>Limits in units of the thing limited (Wasm pages for memories, elements for tables).</summary>
public readonly record struct WasmLimits(ulong Minimum, ulong? Maximum);

/// <summary>An import: module and field name, kind, and for functions the signature.</summary>
public sealed record WasmImport(string Module, string Name, WasmExternKind Kind, WasmFunctionType? FunctionType)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Module}.{Name} ({Kind}{(FunctionType is null ? "" : " " + FunctionType)})";
}

/// <summary>An export: name, kind, index in its index space, and for functions the signature.</summary>
public sealed record WasmExport(string Name, WasmExternKind Kind, uint Index, WasmFunctionType? FunctionType);

/// <summary>A global defined by the module (imported globals are not supported by artifacts).</summary>
public sealed record WasmGlobal(WasmValueKind Type, bool Mutable);

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

/// <summary>The bytes are not a well-formed WebAssembly module (or use a feature this runtime does not support).</summary>
public sealed class WasmFormatException(string message) : FormatException(message);
