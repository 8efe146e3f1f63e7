namespace CowWasm.Runtime;

/// <summary>Limits in units of the thing limited (Wasm pages for memories, elements for tables).</summary>
public readonly record struct WasmLimits(ulong Minimum, ulong? Maximum);
