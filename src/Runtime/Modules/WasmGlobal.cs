namespace CowWasm.Runtime;

/// <summary>A global defined by the module (imported globals are not supported by artifacts).</summary>
public sealed record WasmGlobal(WasmValueKind Type, bool Mutable);
