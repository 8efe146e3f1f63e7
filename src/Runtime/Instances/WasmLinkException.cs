namespace CowWasm.Runtime;

/// <summary>Imports the module needs are missing or have the wrong signature; every problem is listed.</summary>
public sealed class WasmLinkException(string message) : Exception(message);
