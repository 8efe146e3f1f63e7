namespace CowWasm.Runtime;

/// <summary>A guest trapped, exited or a host function it called failed. The instance stays usable.</summary>
public sealed class WasmTrapException : Exception
{
    internal WasmTrapException(TrapKind kind, string function, int? exitCode = null, Exception? inner = null)
        : base(Describe(kind, function, exitCode, inner), inner)
    {
        Kind = kind;
        ExitCode = exitCode;
        Function = function;
    }

    /// <summary>What happened.</summary>
    public TrapKind Kind { get; }

    /// <summary>The exit code when <see cref="Kind"/> is <see cref="TrapKind.Exit"/>.</summary>
    public int? ExitCode { get; }

    /// <summary>The export (or "instantiate") that was running.</summary>
    public string Function { get; }

    private static string Describe(TrapKind kind, string function, int? exitCode, Exception? inner) => kind switch
    {
        TrapKind.Exit => $"The guest exited with code {exitCode} during {function}.",
        TrapKind.HostError => $"A host function failed during {function}: {inner?.Message}",
        TrapKind.Interrupted => $"The guest was interrupted during {function}.",
        _ => $"Wasm trap in {function}: {kind}.",
    };
}
