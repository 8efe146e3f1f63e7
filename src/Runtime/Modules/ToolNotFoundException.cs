namespace CowWasm.Runtime;

/// <summary>An external tool (wasm2c, gcc, npm) could not be started.</summary>
public sealed class ToolNotFoundException(string message) : Exception(message);
