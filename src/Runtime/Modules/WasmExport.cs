namespace CowWasm.Runtime;

/// <summary>An export: name, kind, index in its index space, and for functions the signature.</summary>
public sealed record WasmExport(string Name, WasmExternKind Kind, uint Index, WasmFunctionType? FunctionType);
