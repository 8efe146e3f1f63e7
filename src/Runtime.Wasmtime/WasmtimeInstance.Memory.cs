using CowWasm.Memory;
using Wasmtime;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>Guest memory: host access, growth announced to Wasmtime, the last page after an out-of-bounds trap.</summary>
public sealed unsafe partial class WasmtimeInstance
{
    /// <inheritdoc/>
    public Span<byte> GetMemory(long address, int length)
    {
        PageMemory memory = CheckedMemory(address, length);
        return memory.GetSpan(address, length);
    }

    /// <inheritdoc/>
    public ReadOnlySpan<byte> ReadMemory(long address, int length)
    {
        PageMemory memory = CheckedMemory(address, length);
        return memory.ReadSpan(address, length);
    }

    private PageMemory CheckedMemory(long address, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        PageMemory memory = Memory ?? throw new InvalidOperationException("The module has no memory.");
        if (address < 0 || length < 0 || address + length > MemorySize)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"[{address}, {address + length}) lies outside the guest's {MemorySize} bytes.");
        }

        return memory;
    }

    /// <inheritdoc/>
    public void RefreshMemorySize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_memory is null)
        {
            return;
        }

        long bytes = _memory.Memory.ByteLength;
        long seen = MemorySize;
        if (bytes > seen)
        {
            // Wasmtime learns the new length through grow_memory, which finds it already mapped.
            _exportedMemory!.Grow((bytes - seen) / ILinearMemory.WasmPageSize);
        }
        else if (bytes < seen)
        {
            // Wasmtime cannot shrink a memory: a new store and instance over the same memory, globals carried over.
            ulong[] globals = CaptureGlobals();
            Store old = _store;
            MemoryRequest? oldRequest = _memories;
            Build(_memory);
            ReleaseStore(old, oldRequest, disposeMemory: false);
            RestoreGlobals(globals);
        }
    }

    /// <summary>
    /// After an out-of-bounds trap: a store that straddles the end of memory faults on the guard, but the CPU may first
    /// have taken the copy-on-write fault on the last page — a private copy no barrier mark reports, which would shadow
    /// later commits in a replica. Reporting the page lets the reset or rollback drop it.
    /// </summary>
    internal void MarkLastPageAfterOutOfBounds()
    {
        long bytes = _memory is null ? 0 : Math.Min(MemorySize, _memory.Memory.ByteLength);
        if (bytes > 0)
        {
            _memory!.Memory.MarkWritten(bytes - 1, 1);
        }
    }
}
