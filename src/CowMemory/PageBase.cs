using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;

namespace CowWasm.Memory;

/// <summary>
/// The committed memory image: a memfd of whole 4 KiB pages that only grows. Views
/// (<see cref="CowView"/>) map it <c>MAP_PRIVATE</c>; writes go through <c>pwrite</c>.
/// </summary>
/// <remarks>
/// <para><b>Invariant:</b> pages at or beyond the committed length of whoever owns the base are zero — the
/// base grows with zero pages and only a commit writes into it, and a commit only writes pages below the
/// new committed length. A growing view can therefore map new pages without clearing them.</para>
/// <para><b>Thread-safety:</b> <see cref="Read"/> may run on many threads at once, also concurrently with
/// <see cref="Write"/> to other pages. <see cref="Grow"/> and <see cref="Write"/> are for the single owner
/// that commits (a <see cref="SyncStrategy"/> calls them under its write lock). Linux shows a pwrite to
/// every page of a private view that the view has not copied: never write pages a live reader relies on.</para>
/// </remarks>
public sealed unsafe class PageBase : IDisposable
{
    private SafeFdHandle _fd;
    private long _pageCount;
    private long _dataOffset;
    private bool _readOnly;
    private bool _followed;
    private nint _readMap;
    private long _readMapBytes;

    private PageBase(SafeFdHandle fd, long pageCount, long dataOffset = 0, bool readOnly = false)
    {
        _fd = fd;
        _pageCount = pageCount;
        _dataOffset = dataOffset;
        _readOnly = readOnly;
    }

    /// <summary>
    /// Adopts <paramref name="fd"/>, a read-only file whose pages start at <paramref name="dataOffset"/> (a page
    /// multiple), as the committed image. Views map the file directly. The file is never written: the first
    /// <see cref="SyncStrategy"/> operation that must change the image copies it into a memfd first (<see cref="CopyUp"/>).
    /// </summary>
    internal static PageBase AdoptReadOnlyFile(SafeFdHandle fd, long dataOffset, long pageCount)
    {
        Pages.ValidatePageCount(pageCount, nameof(pageCount));
        if (dataOffset < 0 || dataOffset % Pages.Size != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(dataOffset), dataOffset, "The data offset must be a non-negative page multiple.");
        }

        return new PageBase(fd, pageCount, dataOffset, readOnly: true);
    }

    /// <summary>
    /// Adopts the memfd another process commits into (received over a Unix socket, <c>SCM_RIGHTS</c>) as the base of
    /// this process's views: this process never writes or truncates it and only follows its growth
    /// (<see cref="FollowGrowth"/>).
    /// </summary>
    internal static PageBase AdoptFollowed(SafeFdHandle fd, long pageCount)
    {
        Pages.ValidatePageCount(pageCount, nameof(pageCount));
        long size = Libc.FileSize(fd);
        if (size < Pages.ToBytes(pageCount))
        {
            throw new InvalidDataException($"The shared base holds {size} bytes, fewer than the {pageCount} pages announced.");
        }

        return new PageBase(fd, pageCount) { _followed = true };
    }

    /// <summary>True for a base another process owns (<see cref="AdoptFollowed"/>): writes and growth are refused.</summary>
    public bool IsFollowed => _followed;

    /// <summary>A followed base's owner grew the file: views may map up to <paramref name="newPageCount"/> pages.</summary>
    /// <exception cref="InvalidDataException">The file is shorter than that (the owner lied, or it was truncated).</exception>
    internal void FollowGrowth(long newPageCount)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        Pages.ValidatePageCount(newPageCount, nameof(newPageCount));
        if (newPageCount <= _pageCount)
        {
            return;
        }

        long size = Libc.FileSize(_fd);
        if (size < Pages.ToBytes(newPageCount))
        {
            throw new InvalidDataException($"The shared base holds {size} bytes, fewer than the {newPageCount} pages announced.");
        }

        Volatile.Write(ref _pageCount, newPageCount);
    }

    /// <summary>True while the base maps a read-only file (a loaded snapshot) that has not been copied up yet.</summary>
    public bool IsReadOnly => Volatile.Read(ref _readOnly);

    /// <summary>Where page 0 lies in the file (0 for a memfd; the header's size for a snapshot file).</summary>
    internal long DataOffset => _dataOffset;

    /// <summary>
    /// Copies a read-only base's pages into a new memfd and switches to it (O(size), once; all-zero pages are
    /// scanned but not written, so they stay unallocated in the memfd). Views of the old file
    /// keep showing it until they are remapped (<see cref="PageMemory.Remap"/>); the file's fd is closed here.
    /// For the single owner that commits, under its write lock.
    /// </summary>
    internal void CopyUp(string name)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        if (!_readOnly)
        {
            return;
        }

        SafeFdHandle memfd = Libc.MemfdCreate(name);
        try
        {
            long length = ByteLength;
            Libc.Ftruncate(memfd, length);
            const int chunk = 1 << 20;
            byte* buffer = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc(chunk);
            try
            {
                for (long offset = 0; offset < length; offset += chunk)
                {
                    long count = Math.Min(chunk, length - offset);
                    Libc.PreadExactly(_fd, buffer, count, _dataOffset + offset);
                    WriteNonZeroRuns(memfd, buffer, count, offset);
                }
            }
            finally
            {
                System.Runtime.InteropServices.NativeMemory.Free(buffer);
            }
        }
        catch
        {
            memfd.Dispose();
            throw;
        }

        SafeFdHandle file = _fd;
        _fd = memfd;
        _dataOffset = 0;
        Volatile.Write(ref _readOnly, false);
        file.Dispose();
        if (_readMap != 0)
        {
            long maxPages = _readMapBytes / Pages.Size;
            UnmapForReading();
            MapForReading(maxPages);
        }
    }

    /// <summary>
    /// Maps the image <c>MAP_SHARED</c>, read-only, over <paramref name="maxPageCount"/> pages of address space (the
    /// most it can grow to), so that <see cref="Mapped"/> can compare pages without a syscall. Growth needs no
    /// remap (a shared file mapping follows the file's size); <see cref="CopyUp"/> remaps onto the memfd. Only
    /// pages below <see cref="PageCount"/> may be read through it (beyond the file's end they would SIGBUS). For the
    /// owner, before it shares the base; idempotent.
    /// </summary>
    internal void MapForReading(long maxPageCount)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        if (_readMap != 0)
        {
            return;
        }

        long bytes = Pages.ToBytes(Math.Max(1, maxPageCount));
        using var _ = _fd.Use(out int fd);
        _readMap = Libc.Mmap(0, bytes, Prot.PROT_READ, MapFlags.MAP_SHARED | MapFlags.MAP_NORESERVE, fd, _dataOffset);
        _readMapBytes = bytes;
    }

    /// <summary>
    /// The committed bytes of <paramref name="run"/>, read in place through the read-only shared mapping
    /// (<see cref="MapForReading"/>): what a <c>pread</c> would return, with no syscall. Valid until the next
    /// <see cref="CopyUp"/> or <see cref="Dispose"/>; the owner's commits change it.
    /// </summary>
    internal ReadOnlySpan<byte> Mapped(PageRun run)
    {
        CheckRun(run, run.ByteLength, nameof(run));
        if (_readMap == 0 || run.EndPage > _readMapBytes / Pages.Size || run.ByteLength > int.MaxValue)
        {
            throw new InvalidOperationException($"Run {run} is not readable through the base's mapping (call MapForReading first).");
        }

        // SAFETY: the mapping covers the run (checked above) and the run lies below PageCount, inside the file.
        return new ReadOnlySpan<byte>((byte*)_readMap + run.ByteOffset, (int)run.ByteLength);
    }

    private void UnmapForReading()
    {
        if (_readMap != 0)
        {
            Libc.TryMunmap(_readMap, _readMapBytes);
            _readMap = 0;
            _readMapBytes = 0;
        }
    }

    /// <summary>
    /// Writes the runs of pages of <paramref name="buffer"/> that are not all zero to <paramref name="memfd"/> at
    /// <paramref name="offset"/>. The memfd reads zeros wherever nothing was written and allocates no memory
    /// there, so zero pages cost a scan instead of a write and a page.
    /// </summary>
    private static void WriteNonZeroRuns(SafeFdHandle memfd, byte* buffer, long count, long offset)
    {
        long runStart = -1;
        for (long at = 0; at <= count; at += Pages.Size)
        {
            // SAFETY: at < count ≤ the buffer's length, and count is a page multiple (the base is page-granular).
            bool zero = at == count || new ReadOnlySpan<byte>(buffer + at, Pages.Size).IndexOfAnyExcept((byte)0) < 0;
            if (!zero && runStart < 0)
            {
                runStart = at;
            }
            else if (zero && runStart >= 0)
            {
                Libc.PwriteExactly(memfd, buffer + runStart, at - runStart, offset + runStart);
                runStart = -1;
            }
        }
    }

    /// <summary>Creates a zero-filled base of <paramref name="pageCount"/> pages.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The page count is negative or too large.</exception>
    public static PageBase Create(long pageCount, string name = "cowwasm-base")
    {
        Pages.ValidatePageCount(pageCount, nameof(pageCount));
        SafeFdHandle fd = Libc.MemfdCreate(name);
        try
        {
            Libc.Ftruncate(fd, Pages.ToBytes(pageCount));
            return new PageBase(fd, pageCount);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>The length of the image in pages.</summary>
    public long PageCount => Volatile.Read(ref _pageCount);

    /// <summary>The length of the image in bytes.</summary>
    public long ByteLength => Pages.ToBytes(PageCount);

    internal SafeFdHandle Handle => _fd;

    /// <summary>Extends the image with zero pages. A base never shrinks; growing to the current size is a no-op.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="newPageCount"/> is below the current size or too large.</exception>
    public void Grow(long newPageCount)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        Pages.ValidatePageCount(newPageCount, nameof(newPageCount));
        if (newPageCount < _pageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(newPageCount), newPageCount,
                $"A base cannot shrink below its {_pageCount} pages.");
        }

        if (newPageCount > _pageCount)
        {
            ThrowIfReadOnly();
            Libc.Ftruncate(_fd, _dataOffset + Pages.ToBytes(newPageCount));
            Volatile.Write(ref _pageCount, newPageCount);
        }
    }

    /// <summary>Writes <paramref name="source"/> (exactly <paramref name="run"/>'s byte length) into the run's pages.</summary>
    public void Write(PageRun run, ReadOnlySpan<byte> source)
    {
        CheckRun(run, source.Length, nameof(source));
        ThrowIfReadOnly();
        fixed (byte* p = source)
        {
            // SAFETY: p points at source.Length == run.ByteLength readable bytes, pinned for the call.
            Libc.PwriteExactly(_fd, p, run.ByteLength, _dataOffset + run.ByteOffset);
        }
    }

    /// <summary>Reads the run's pages into <paramref name="destination"/> (exactly the run's byte length).</summary>
    public void Read(PageRun run, Span<byte> destination)
    {
        CheckRun(run, destination.Length, nameof(destination));
        fixed (byte* p = destination)
        {
            // SAFETY: p points at destination.Length == run.ByteLength writable bytes, pinned for the call.
            Libc.PreadExactly(_fd, p, run.ByteLength, _dataOffset + run.ByteOffset);
        }
    }

    /// <summary>Copies the given runs of <paramref name="source"/> into the same pages of the base (one pwrite a run).</summary>
    internal void WriteRuns(PageMemory source, IReadOnlyList<PageRun> runs) => TransferRuns(source, runs, write: true);

    /// <summary>Copies the given runs of the base into the same pages of <paramref name="destination"/> (one pread a run).</summary>
    internal void ReadRuns(PageMemory destination, IReadOnlyList<PageRun> runs) => TransferRuns(destination, runs, write: false);

    private void TransferRuns(PageMemory memory, IReadOnlyList<PageRun> runs, bool write)
    {
        if (write && runs.Count > 0)
        {
            ThrowIfReadOnly();
        }

        for (int i = 0; i < runs.Count; i++)
        {
            PageRun run = runs[i];
            CheckRun(run, run.ByteLength, nameof(runs));
            memory.CheckRun(run);
            // SAFETY: CheckRun proved the run lies inside the memory's mapped pages and inside the base.
            byte* pages = memory.PointerTo(run.StartPage);
            if (write)
            {
                Libc.PwriteExactly(_fd, pages, run.ByteLength, _dataOffset + run.ByteOffset);
            }
            else
            {
                Libc.PreadExactly(_fd, pages, run.ByteLength, _dataOffset + run.ByteOffset);
            }
        }
    }

    private void ThrowIfReadOnly()
    {
        if (_followed)
        {
            throw new InvalidOperationException("The base is another process's (a follower's view of it): only its owner writes it.");
        }

        if (_readOnly)
        {
            throw new InvalidOperationException(
                "The base maps a snapshot file read-only; it is copied up into memory before the first change (SyncStrategy does this).");
        }
    }

    private void CheckRun(PageRun run, long byteLength, string paramName)
    {
        ObjectDisposedException.ThrowIf(_fd.IsClosed, this);
        if (run.StartPage < 0 || run.PageCount < 0 || run.EndPage > PageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(run), run, $"The run lies outside the base's {PageCount} pages.");
        }

        if (byteLength != run.ByteLength)
        {
            throw new ArgumentException(
                $"The buffer holds {byteLength} bytes but run {run} is {run.ByteLength} bytes.", paramName);
        }
    }

    /// <summary>Closes the memfd (or snapshot file). Views already mapped keep their pages until they are disposed.</summary>
    public void Dispose()
    {
        UnmapForReading();
        _fd.Dispose();
    }
}
