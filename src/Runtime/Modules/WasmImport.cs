namespace CowWasm.Runtime;

/// <summary>An import: module and field name, kind, and for functions the signature.</summary>
public sealed record WasmImport(string Module, string Name, WasmExternKind Kind, WasmFunctionType? FunctionType)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Module}.{Name} ({Kind}{(FunctionType is null ? "" : " " + FunctionType)})";
}
