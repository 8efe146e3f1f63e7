using System.Runtime.InteropServices;
using CowWasm.Memory;

namespace CowWasm.Runtime.Wasmtime;

/// <summary>
/// Answers Wasmtime's memory requests during one instantiation, on the instantiating thread: memory 0 from the
/// instance's <see cref="LinearMemoryFactory"/> (or the memory a clone was given), memory 1 — a barrier module's dirty
/// map — from memory 0's store-barrier tracker, or scratch when none watches it.
/// </summary>
internal sealed unsafe class MemoryRequest(Func<long, long, long, ILinearMemory> createGuestMemory, bool ownsGuestMemory, Action<long> grown) : IDisposable
{
    private int _created;

    /// <summary>Why creating a memory failed, for the instantiating thread to rethrow (Wasmtime only carries a message).</summary>
    public Exception? Failure { get; set; }

    /// <summary>Memory 0, once Wasmtime asked for it.</summary>
    public GuestMemory? Guest { get; private set; }

    /// <summary>The map memory 1 uses (null before it was asked for, or without the barrier).</summary>
    public byte* Map { get; private set; }

    /// <summary>A map this instance allocated because no tracker watched memory 0 (freed by <see cref="Dispose"/>).</summary>
    public byte* ScratchMap { get; private set; }

    public HostMemory Create(long minimum, long maximum, long reserved, long guard)
    {
        switch (_created++)
        {
            case 0:
                long needed = checked(reserved + guard);
                ILinearMemory memory = createGuestMemory(minimum / Pages.Size, Math.Min(maximum, 1L << 32) / Pages.Size, needed);
                if (memory.Memory.ReservedBytes < needed || memory.Memory.ByteLength < minimum)
                {
                    long have = memory.Memory.ReservedBytes, mapped = memory.Memory.ByteLength;
                    if (ownsGuestMemory)
                    {
                        memory.Dispose();
                    }

                    throw new InvalidOperationException(
                        $"The memory has {mapped} mapped bytes in a {have}-byte reservation; Wasmtime's code needs {minimum} mapped in " +
                        $"at least {needed} (a {reserved}-byte reservation and a {guard}-byte guard).");
                }

                Guest = new GuestMemory(memory, grown);
                return Guest;
            case 1 when Guest is not null:
                PageMemory guestPages = Guest.Memory.Memory;
                Map = guestPages.DirtyMap;
                if (Map == null)
                {
                    // SAFETY: freed in Dispose, after the store that uses it.
                    ScratchMap = (byte*)NativeMemory.AllocZeroed((nuint)Math.Max(1, guestPages.MaxPageCount));
                    Map = ScratchMap;
                }

                return new MapMemory(Map, minimum);
            default:
                throw new InvalidOperationException("The module asks for more memories than the rewrite allows.");
        }
    }

    public void Dispose()
    {
        if (ScratchMap != null)
        {
            NativeMemory.Free(ScratchMap);
            ScratchMap = null;
        }
    }
}
