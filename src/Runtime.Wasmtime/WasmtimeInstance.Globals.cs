namespace CowWasm.Runtime.Wasmtime;

/// <summary>Globals (through the exports the rewrite added) and tables (as instantiated: modules that change them are refused).</summary>
public sealed unsafe partial class WasmtimeInstance
{
    /// <inheritdoc/>
    public ulong[] CaptureGlobals()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        GlobalSlot[] globals = _globals;
        var values = new ulong[globals.Length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = globals[i].Get();
        }

        return values;
    }

    /// <inheritdoc/>
    public void RestoreGlobals(ReadOnlySpan<ulong> values)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        GlobalSlot[] globals = _globals;
        if (values.Length != globals.Length)
        {
            throw new ArgumentException($"Expected {globals.Length} globals, got {values.Length}.", nameof(values));
        }

        for (int i = 0; i < values.Length; i++)
        {
            globals[i].Set(values[i]); // immutable globals hold the module's value in every instance: skipped
        }
    }

    /// <inheritdoc/>
    public TableState CaptureTables() => new(_module, []);

    /// <inheritdoc/>
    public void RestoreTables(TableState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!ReferenceEquals(state.Module, _module))
        {
            throw new ArgumentException("The table state comes from another module.", nameof(state));
        }
    }
}
