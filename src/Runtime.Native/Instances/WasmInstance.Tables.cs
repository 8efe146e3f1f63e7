namespace CowWasm.Runtime.Native;

public sealed unsafe partial class WasmInstance
{
    /// <inheritdoc/>
    /// <remarks>Read without entering the instance: a value read while a call runs on another thread may be stale.</remarks>
    /// <exception cref="ObjectDisposedException">The instance was disposed.</exception>
    public bool TablesChanged
    {
        get
        {
            lock (_nativeGate)
            {
                ObjectDisposedException.ThrowIf(_native == 0, this);
                return Volatile.Read(ref ((ArtifactAbi.InstanceState*)_native)->TablesChanged) != 0;
            }
        }
    }

    /// <inheritdoc/>
    public TableState CaptureTables()
    {
        Enter();
        try
        {
            byte[] bytes = GC.AllocateUninitializedArray<byte>(checked((int)_module.EntryPoints.TablesSize(_native)));
            fixed (byte* p = bytes)
            {
                _module.EntryPoints.TablesCapture(_native, p);
            }

            ((ArtifactAbi.InstanceState*)_native)->TablesChanged = 0;
            return new TableState(_module, bytes);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    public void RestoreTables(TableState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!ReferenceEquals(state.Module, _module))
        {
            throw new ArgumentException("The table state was captured from an instance of another module.", nameof(state));
        }

        Enter();
        int status;
        try
        {
            fixed (byte* p = state.Bytes)
            {
                status = _module.EntryPoints.TablesRestore(_native, p, (nuint)state.Length);
            }
        }
        finally
        {
            Exit();
        }

        switch (status)
        {
            case 0:
                return;
            case ArtifactAbi.StatusOutOfMemory:
                throw new InsufficientMemoryException(
                    $"Restoring the instance's tables needs {state.Length} bytes that could not be allocated; the tables are unchanged.");
            default:
                throw new ArgumentException($"The artifact refused the table state ({state.Length} bytes, status {status}).", nameof(state));
        }
    }
}
