using CowWasm.Runtime.Wasmtime.Rewriting;
using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>One global of an instance as a raw slot (i32/i64 zero-extended, f32/f64 as bits), through the export the rewrite added.</summary>
internal sealed class GlobalSlot(Func<ulong> get, Action<ulong>? set)
{
    public ulong Get() => get();

    /// <summary>Writes a mutable global; an immutable one keeps the module's value (the same in every instance).</summary>
    public void Set(ulong value) => set?.Invoke(value);

    public static GlobalSlot[] Bind(Instance instance, IReadOnlyList<WasmGlobal> globals)
    {
        var slots = new GlobalSlot[globals.Count];
        for (int i = 0; i < slots.Length; i++)
        {
            string name = ModuleRewriter.GlobalExportName(i);
            Global global = instance.GetGlobal(name) ?? throw new InvalidOperationException($"The rewritten module lacks the export {name}.");
            bool mutable = global.Mutability == Mutability.Mutable;
            slots[i] = globals[i].Type switch
            {
                WasmValueKind.I32 => Slot(global.Wrap<int>()!, mutable, v => (uint)v, s => (int)(uint)s),
                WasmValueKind.I64 => Slot(global.Wrap<long>()!, mutable, v => (ulong)v, s => (long)s),
                WasmValueKind.F32 => Slot(global.Wrap<float>()!, mutable, v => BitConverter.SingleToUInt32Bits(v), s => BitConverter.UInt32BitsToSingle((uint)s)),
                WasmValueKind.F64 => Slot(global.Wrap<double>()!, mutable, BitConverter.DoubleToUInt64Bits, BitConverter.UInt64BitsToDouble),
                _ => throw new NotSupportedException($"A global of type {globals[i].Type}."),
            };
        }

        return slots;
    }

    private static GlobalSlot Slot<T>(Global.Accessor<T> accessor, bool mutable, Func<T, ulong> toSlot, Func<ulong, T> fromSlot) =>
        new(() => toSlot(accessor.GetValue()), mutable ? v => accessor.SetValue(fromSlot(v)) : null);
}
