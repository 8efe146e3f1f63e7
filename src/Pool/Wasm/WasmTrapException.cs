namespace CowWasm.Pool.Wasm;

/// <summary>Why a guest stopped abnormally. Values 1–8 are wasm2c's trap codes.</summary>
public enum TrapKind
{
    /// <summary>Out-of-bounds memory or table access.</summary>
    OutOfBounds = 1,

    /// <summary>Integer overflow (signed division of MIN by -1, or a float-to-int truncation out of range).</summary>
    IntegerOverflow = 2,

    /// <summary>Integer division or remainder by zero.</summary>
    DivideByZero = 3,

    /// <summary>Conversion of NaN to an integer.</summary>
    InvalidConversion = 4,

    /// <summary>The <c>unreachable</c> instruction.</summary>
    Unreachable = 5,

    /// <summary>call_indirect through a null entry, out of the table, or with the wrong signature.</summary>
    IndirectCallMismatch = 6,

    /// <summary>A Wasm exception nobody caught.</summary>
    UncaughtException = 7,

    /// <summary>The call stack is exhausted (depth limit or native stack margin).</summary>
    StackExhaustion = 8,

    /// <summary>A host function threw; see <see cref="Exception.InnerException"/>.</summary>
    HostError = 100,

    /// <summary>The guest called <c>proc_exit</c>; see <see cref="WasmTrapException.ExitCode"/>.</summary>
    Exit = 101,

    /// <summary>Linear memory or a table could not be allocated.</summary>
    OutOfMemory = 102,
}

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
        _ => $"Wasm trap in {function}: {kind}.",
    };
}

/// <summary>Imports the module needs are missing or have the wrong signature; every problem is listed.</summary>
public sealed class WasmLinkException(string message) : Exception(message);

/// <summary>Thrown by a host function to end the guest with an exit code (WASI proc_exit).</summary>
public sealed class GuestExitException(int code) : Exception($"proc_exit({code})")
{
    /// <summary>The exit code.</summary>
    public int Code { get; } = code;
}
