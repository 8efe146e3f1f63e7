namespace CowWasm.Runtime.Native;

public sealed unsafe partial class WasmInstance
{
    IGuestFunction IGuestInstance.GetFunction(string name) => GetFunction(name);

    /// <summary>The exported function <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such function export.</exception>
    public WasmFunction GetFunction(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _module.FunctionExports.TryGetValue(name, out var entry)
            ? new WasmFunction(this, name, entry.Index, entry.Export.FunctionType!)
            : throw new KeyNotFoundException($"The module exports no function named \"{name}\".");
    }

    /// <summary>The number of globals the module defines.</summary>
    public int GlobalCount => _module.Info.Globals.Count;

    /// <summary>Reads global <paramref name="index"/> as a raw slot (zero-extended; floats as bits).</summary>
    public ulong GetGlobal(int index)
    {
        byte* p = GlobalPointer(index, out bool wide);
        return wide ? *(ulong*)p : *(uint*)p;
    }

    /// <summary>Writes global <paramref name="index"/> from a raw slot (also immutable ones: used to restore snapshots).</summary>
    public void SetGlobal(int index, ulong value)
    {
        byte* p = GlobalPointer(index, out bool wide);
        if (wide)
        {
            *(ulong*)p = value;
        }
        else
        {
            *(uint*)p = (uint)value;
        }
    }

    /// <summary>Reads the exported global <paramref name="name"/> as a raw slot.</summary>
    public ulong GetGlobal(string name) => GetGlobal(ExportedGlobal(name));

    /// <summary>Copies every global's value (e.g. the shadow stack pointer) so it can travel with a memory snapshot.</summary>
    public ulong[] CaptureGlobals()
    {
        var values = new ulong[GlobalCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = GetGlobal(i);
        }

        return values;
    }

    /// <summary>Restores globals captured with <see cref="CaptureGlobals"/> (from this instance or a clone of the same module).</summary>
    public void RestoreGlobals(ReadOnlySpan<ulong> values)
    {
        if (values.Length != GlobalCount)
        {
            throw new ArgumentException($"Expected {GlobalCount} globals, got {values.Length}.", nameof(values));
        }

        for (int i = 0; i < values.Length; i++)
        {
            SetGlobal(i, values[i]);
        }
    }

    private int ExportedGlobal(string name)
    {
        WasmExport export = _module.Info.Exports.FirstOrDefault(e => e.Kind == WasmExternKind.Global && e.Name == name)
            ?? throw new KeyNotFoundException($"The module exports no global named \"{name}\".");
        // Artifacts define all their globals (imported globals are rejected), so the index is the field index.
        return (int)export.Index;
    }

    private byte* GlobalPointer(int index, out bool wide)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, GlobalCount);
        int owner = Volatile.Read(ref _owner);
        if (owner != 0 && owner != Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException($"The instance is in use by thread {owner}.");
        }

        wide = _module.Info.Globals[index].Type is WasmValueKind.I64 or WasmValueKind.F64;
        return (byte*)_module.EntryPoints.Global(_native, (uint)index);
    }
}
