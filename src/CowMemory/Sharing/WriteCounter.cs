using CowWasm.Memory.Native;

namespace CowWasm.Memory.Sharing;

/// <summary>
/// One 64-bit number in a shared memfd page: the sequence of the last commit whose write into the base has
/// <i>started</i>. The hub stores it just before the base changes; a follower reads it when a read ends, to tell whether
/// the base may have changed under that read (a seqlock's check, across processes).
/// </summary>
internal sealed unsafe class WriteCounter : IDisposable
{
    private readonly SafeFdHandle _fd;
    private nint _page;

    private WriteCounter(SafeFdHandle fd, bool writable)
    {
        _fd = fd;
        using var _ = fd.Use(out int raw);
        _page = Libc.Mmap(0, Pages.Size, writable ? Prot.PROT_READ | Prot.PROT_WRITE : Prot.PROT_READ, MapFlags.MAP_SHARED, raw, 0);
    }

    public static WriteCounter Create()
    {
        SafeFdHandle fd = Libc.MemfdCreate("cowwasm-hub-writes");
        try
        {
            Libc.Ftruncate(fd, Pages.Size);
            Libc.SealAgainstShrinking(fd);
            return new WriteCounter(fd, writable: true);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>A follower's view of the hub's counter: mapped read-only (the hub sends a read-only descriptor).</summary>
    /// <exception cref="InvalidDataException">The descriptor is not a page-sized file.</exception>
    public static WriteCounter Adopt(SafeFdHandle fd)
    {
        if (Libc.FileSize(fd) != Pages.Size)
        {
            fd.Dispose();
            throw new InvalidDataException("The hub's write counter is not one page.");
        }

        return new WriteCounter(fd, writable: false);
    }

    public SafeFdHandle Handle => _fd;

    /// <summary>Full fences on both sides: a store here is ordered before the base writes after it; a load after the reads before it.</summary>
    public long Value
    {
        get
        {
            ObjectDisposedException.ThrowIf(_page == 0, this);
            Interlocked.MemoryBarrier();
            return Volatile.Read(ref *(long*)_page);
        }

        set
        {
            ObjectDisposedException.ThrowIf(_page == 0, this);
            Volatile.Write(ref *(long*)_page, value);
            Interlocked.MemoryBarrier();
        }
    }

    public void Dispose()
    {
        if (_page != 0)
        {
            Libc.TryMunmap(_page, Pages.Size);
            _page = 0;
        }

        _fd.Dispose();
    }
}
