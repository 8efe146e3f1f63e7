using CowWasm.Memory.Native;

namespace CowWasm.Memory;

/// <summary>Private anonymous memory in a never-moving reservation: zero-filled when mapped, shares nothing.</summary>
public sealed class PrivateMemory : PageMemory
{
    /// <summary>
    /// Maps <paramref name="pageCount"/> zero pages in a reservation of <paramref name="maxPageCount"/> pages, or of
    /// <paramref name="reservedBytes"/> if that is larger (a guard region).
    /// </summary>
    public PrivateMemory(long pageCount, long maxPageCount, long reservedBytes = 0)
        : base(maxPageCount, reservedBytes)
    {
        try
        {
            Resize(pageCount);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private protected override void MapPages(long fromPage, long toPage) =>
        Libc.Mmap(Address + (nint)Pages.ToBytes(fromPage), Pages.ToBytes(toPage - fromPage),
            Prot.PROT_READ | Prot.PROT_WRITE, MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS | MapFlags.MAP_FIXED, -1, 0);
}
