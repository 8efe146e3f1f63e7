using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>Wasmtime's trap codes as <see cref="TrapKind"/>.</summary>
internal static class TrapKinds
{
    public static TrapKind Of(Exception error, WasmtimeInstance instance)
    {
        if (instance.InterruptRequested && (error is TrapException { Type: TrapCode.Interrupt } ||
                                            error.InnerException is WasmtimeInstance.GuestInterruptedSignal))
        {
            return TrapKind.Interrupted;
        }

        return error is TrapException trap ? Of(trap.Type) : TrapKind.OutOfMemory;
    }

    public static TrapKind Of(TrapCode code) => code switch
    {
        TrapCode.MemoryOutOfBounds or TrapCode.HeapMisaligned => TrapKind.OutOfBounds,
        // Wasmtime reports call_indirect past the table's end as a table access; the native backend (wasm2c) as an
        // indirect-call failure. Guest code that reads tables otherwise (table.get) is rare; calls are not.
        TrapCode.TableOutOfBounds => TrapKind.IndirectCallMismatch,
        TrapCode.IntegerOverflow => TrapKind.IntegerOverflow,
        TrapCode.IntegerDivisionByZero => TrapKind.DivideByZero,
        TrapCode.BadConversionToInteger => TrapKind.InvalidConversion,
        TrapCode.Unreachable => TrapKind.Unreachable,
        TrapCode.IndirectCallToNull or TrapCode.BadSignature => TrapKind.IndirectCallMismatch,
        TrapCode.StackOverflow => TrapKind.StackExhaustion,
        TrapCode.Interrupt => TrapKind.Interrupted,
        TrapCode.UncaughtException => TrapKind.UncaughtException,
        TrapCode.AllocationTooLarge => TrapKind.OutOfMemory,
        _ => TrapKind.Unreachable,
    };
}
