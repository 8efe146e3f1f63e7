namespace CowWasm.Runtime;

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

    /// <summary>
    /// Another thread interrupted the guest (<see cref="IGuestInstance.Interrupt"/>, a cancelled token or a timeout): it
    /// stopped at a function entry or a loop back-edge.
    /// </summary>
    Interrupted = 103,
}
