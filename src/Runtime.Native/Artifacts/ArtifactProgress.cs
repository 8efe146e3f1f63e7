namespace CowWasm.Runtime.Native;

/// <summary>A progress report: stage and time since the compilation started.</summary>
public readonly record struct ArtifactProgress(ArtifactStage Stage, TimeSpan Elapsed, string Message);
