namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// One linear memory as Wasmtime sees it through the host memory creator: its base (never moves), the bytes the guest
/// may use, and growth. <see cref="GuestMemory"/> is memory 0 on memory-engine memory; <see cref="MapMemory"/> is the
/// barrier's dirty map.
/// </summary>
internal abstract unsafe class HostMemory
{
    public abstract byte* Pointer { get; }

    public abstract long ByteLength { get; }

    public abstract long ByteCapacity { get; }

    public abstract bool TryGrow(long byteLength);
}

/// <summary>Memory 0: an <see cref="ILinearMemory"/> from the instance's factory, or the replica view a clone is given.</summary>
/// <remarks>
/// <see cref="ByteLength"/> is the length Wasmtime has been told, not the memory's live length: Wasmtime asks
/// <c>get_memory</c> for the current size when it grows, so a memory resized from outside (a replica following a commit)
/// must keep reporting the old length until the instance announces the new one through a grow
/// (<see cref="WasmtimeInstance.RefreshMemorySize"/>), or the guest would grow past it.
/// </remarks>
internal sealed unsafe class GuestMemory(ILinearMemory memory, Action<long> grown) : HostMemory
{
    private long _announced = memory.Memory.ByteLength;

    public ILinearMemory Memory { get; } = memory;

    public override byte* Pointer => Memory.Memory.Pointer;

    public override long ByteLength => Volatile.Read(ref _announced);

    public override long ByteCapacity => Memory.Memory.MaxPageCount * CowWasm.Memory.Pages.Size;

    public override bool TryGrow(long byteLength)
    {
        if (byteLength % ILinearMemory.WasmPageSize != 0)
        {
            return false;
        }

        // Growth reported after the memory was resized from outside (RefreshMemorySize) is already mapped.
        if (byteLength > Memory.Memory.ByteLength && !Memory.TryGrow(byteLength / CowWasm.Memory.Pages.Size))
        {
            return false;
        }

        Volatile.Write(ref _announced, byteLength);
        grown(byteLength);
        return true;
    }
}

/// <summary>
/// Memory 1 of a barrier module: the dirty map, one byte per 4 KiB page. It is the memory's
/// <see cref="CowWasm.Memory.PageMemory.DirtyMap"/> when a store-barrier tracker watches it, else a scratch map the
/// instance owns. It never grows.
/// </summary>
/// <remarks>
/// SAFETY: Wasmtime asks this memory for a 4 GiB reservation like any other, and Cranelift drops bounds checks on it.
/// Only code the rewrite added touches memory 1, and each access marks a page of memory 0 that a store just wrote
/// successfully: its index is below memory 0's length in 4 KiB pages, which is at most its MaxPageCount, the length of
/// the map. So no access leaves the map, and the reservation behind it is never needed.
/// </remarks>
internal sealed unsafe class MapMemory(byte* map, long byteLength) : HostMemory
{
    public override byte* Pointer => map;

    public override long ByteLength => byteLength;

    public override long ByteCapacity => byteLength;

    public override bool TryGrow(long byteLength) => byteLength == ByteLength;
}
