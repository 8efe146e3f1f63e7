namespace CowWasm.Runtime.Native;

/// <summary>Compiling the artifact failed (the tool's output is in the message).</summary>
public sealed class ArtifactCompilationException(string message) : Exception(message);
