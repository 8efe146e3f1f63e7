namespace CowWasm.Runtime;

/// <summary>Per-instance options.</summary>
public sealed record InstanceOptions
{
    /// <summary>Creates the instance's linear memory. Default: <see cref="StandaloneMemory.Create"/>.</summary>
    public LinearMemoryFactory Memory { get; init; } = StandaloneMemory.Create;

    /// <summary>WASI configuration for this instance (args, environment, files); null for none.</summary>
    public CowWasm.Runtime.Wasi.WasiConfiguration? Wasi { get; init; }
}
