using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// Our <see cref="Linker"/>'s host functions (the WASI host among them) as a Wasmtime linker, one per (module, linker)
/// (<see cref="WasmtimeModule.LinkerFor"/>), shared by every store: each callback finds its
/// <see cref="WasmtimeInstance"/> in the store's data.
/// </summary>
internal static class HostLinker
{
    public static global::Wasmtime.Linker Build(WasmtimeModule module, Linker linker)
    {
        (HostFunction Function, WasmFunctionType Type)[] resolved = linker.Resolve(module.Info);
        var native = new global::Wasmtime.Linker(WasmtimeModule.Engine.Engine);
        int k = 0;
        foreach (WasmImport import in module.Info.Imports.Where(i => i.Kind == WasmExternKind.Function))
        {
            (HostFunction function, WasmFunctionType type) = resolved[k++];
            native.DefineFunction(import.Module, import.Name, Callback(function, type),
                [.. type.Parameters.Select(Kind)], [.. type.Results.Select(Kind)]);
        }

        return native;
    }

    private static Function.UntypedCallbackDelegate Callback(HostFunction function, WasmFunctionType type) =>
        (Caller caller, ReadOnlySpan<ValueBox> args, Span<ValueBox> results) =>
        {
            var instance = (WasmtimeInstance)caller.GetData()!;
            Span<ulong> a = stackalloc ulong[args.Length];
            Span<ulong> r = stackalloc ulong[results.Length];
            for (int i = 0; i < a.Length; i++)
            {
                a[i] = type.Parameters[i] switch
                {
                    WasmValueKind.I32 => (uint)args[i].AsInt32(),
                    WasmValueKind.I64 => (ulong)args[i].AsInt64(),
                    WasmValueKind.F32 => BitConverter.SingleToUInt32Bits(args[i].AsSingle()),
                    _ => BitConverter.DoubleToUInt64Bits(args[i].AsDouble()),
                };
            }

            try
            {
                function(instance, a, r);
            }
            catch (Exception e)
            {
                // Kept for the call site, which reports HostError (or Exit) with this exception; Wasmtime only sees a trap.
                instance.PendingException = e;
                throw new HostFunctionFailed();
            }

            for (int i = 0; i < r.Length; i++)
            {
                // Each arm converts to ValueBox itself (a switch over int, long, float and double would be typed double).
                results[i] = type.Results[i] switch
                {
                    WasmValueKind.I32 => (ValueBox)(int)(uint)r[i],
                    WasmValueKind.I64 => (ValueBox)(long)r[i],
                    WasmValueKind.F32 => (ValueBox)BitConverter.UInt32BitsToSingle((uint)r[i]),
                    _ => (ValueBox)BitConverter.UInt64BitsToDouble(r[i]),
                };
            }
        };

    private static ValueKind Kind(WasmValueKind kind) => kind switch
    {
        WasmValueKind.I32 => ValueKind.Int32,
        WasmValueKind.I64 => ValueKind.Int64,
        WasmValueKind.F32 => ValueKind.Float32,
        WasmValueKind.F64 => ValueKind.Float64,
        _ => throw new NotSupportedException($"Host functions with {kind} values are not supported on the Wasmtime backend."),
    };

    private sealed class HostFunctionFailed() : Exception("a host function failed");
}
