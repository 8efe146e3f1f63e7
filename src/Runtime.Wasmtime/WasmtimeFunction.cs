using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>An exported function of a <see cref="WasmtimeInstance"/>, called with raw slots.</summary>
internal sealed class WasmtimeFunction(WasmtimeInstance instance, string name, WasmFunctionType type, Function native) : IGuestFunction
{
    public string Name { get; } = name;

    public WasmFunctionType Type { get; } = type;

    /// <summary>
    /// Calls through the instance by name, not through this object's own Wasmtime function: a caller may hold this
    /// object across a rebuild of the instance's store (<see cref="WasmtimeInstance.RefreshMemorySize"/>), after which
    /// only the instance's current functions are alive.
    /// </summary>
    public void Invoke(ReadOnlySpan<ulong> args, Span<ulong> results) => instance.Call(Name, Name, args, results);

    /// <summary>Calls with the instance entered (<see cref="WasmtimeInstance.Call"/>); maps traps.</summary>
    internal void InvokeUnchecked(ReadOnlySpan<ulong> args, Span<ulong> results, string function)
    {
        if (args.Length != Type.Parameters.Count || results.Length < Type.Results.Count)
        {
            throw new ArgumentException($"{Name} takes {Type.Parameters.Count} arguments and gives {Type.Results.Count} results.");
        }

        var boxes = new ValueBox[args.Length];
        for (int i = 0; i < boxes.Length; i++)
        {
            // Each arm converts to ValueBox itself: a switch over int, long, float and double would be typed double,
            // and an i64 above 2^53 would lose its low bits on the way.
            boxes[i] = Type.Parameters[i] switch
            {
                WasmValueKind.I32 => (ValueBox)(int)(uint)args[i],
                WasmValueKind.I64 => (ValueBox)(long)args[i],
                WasmValueKind.F32 => (ValueBox)BitConverter.UInt32BitsToSingle((uint)args[i]),
                WasmValueKind.F64 => (ValueBox)BitConverter.UInt64BitsToDouble(args[i]),
                _ => throw new NotSupportedException($"{Name} takes a {Type.Parameters[i]} value."),
            };
        }

        object? result;
        try
        {
            result = native.Invoke(boxes);
        }
        catch (WasmtimeException e)
        {
            Exception? pending = instance.PendingException;
            instance.PendingException = null;
            WasmTrapException trap = pending switch
            {
                GuestExitException exit => new WasmTrapException(TrapKind.Exit, function, exit.Code, pending),
                // A nested call (host function → guest) was interrupted and the host function let it escape.
                WasmTrapException { Kind: TrapKind.Interrupted } => new WasmTrapException(TrapKind.Interrupted, function, inner: pending),
                not null => new WasmTrapException(TrapKind.HostError, function, inner: pending),
                _ => new WasmTrapException(TrapKinds.Of(e, instance), function, inner: e),
            };
            if (trap.Kind == TrapKind.OutOfBounds)
            {
                instance.MarkLastPageAfterOutOfBounds();
            }

            throw trap;
        }

        if (Type.Results.Count == 1)
        {
            results[0] = Slot(result!);
        }
        else if (Type.Results.Count > 1)
        {
            object[] values = (object[])result!;
            for (int i = 0; i < Type.Results.Count; i++)
            {
                results[i] = Slot(values[i]);
            }
        }
    }

    private static ulong Slot(object value) => value switch
    {
        int v => (uint)v,
        long v => (ulong)v,
        float v => BitConverter.SingleToUInt32Bits(v),
        double v => BitConverter.DoubleToUInt64Bits(v),
        _ => throw new NotSupportedException($"A result of type {value.GetType()}."),
    };
}
