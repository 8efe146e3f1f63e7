namespace CowWasm.Runtime.Native;

/// <summary>Where a compilation is.</summary>
public enum ArtifactStage
{
    /// <summary>A valid cached artifact was found; nothing was compiled.</summary>
    CacheHit,

    /// <summary>wasm2c is translating the module to C.</summary>
    Translating,

    /// <summary>gcc is compiling the C (minutes for large modules).</summary>
    Compiling,

    /// <summary>The artifact was published to the cache.</summary>
    Done,
}
