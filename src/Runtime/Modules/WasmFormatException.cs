namespace CowWasm.Runtime;

/// <summary>The bytes are not a well-formed WebAssembly module (or use a feature this runtime does not support).</summary>
public sealed class WasmFormatException(string message) : FormatException(message);
