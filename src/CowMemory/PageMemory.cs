using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;

namespace CowWasm.Memory;

/// <summary>
/// Page-granular memory at an address that never moves: a <c>PROT_NONE</c> reservation of
/// <see cref="ReservedBytes"/> (at least <see cref="MaxPageCount"/> pages), of which the first <see cref="PageCount"/>
/// are mapped read-write. What lies beyond <see cref="MaxPageCount"/> stays <c>PROT_NONE</c> for good: a guard region
/// (a guard-page Wasm memory reserves 8 GiB so that no 32-bit address plus offset can leave it).
/// <code>
///  Address                Address + ByteLength     Address + MaxPageCount * 4096     Address + ReservedBytes
///  |-- mapped (rw) -------|---- PROT_NONE (can grow into) ----|---- PROT_NONE (guard) ----|
/// </code>
/// Growing maps more of the reservation in place, so pointers and spans into the mapped part stay valid.
/// </summary>
/// <remarks>
/// <para><b>Lifetime:</b> a span or pointer obtained from this object is valid until the memory is disposed or
/// shrunk below it. Accessing it afterwards is undefined (typically a segmentation fault).</para>
/// <para><b>Thread-safety:</b> the bytes may be read and written from any thread; <see cref="Resize"/>,
/// the reset methods and <see cref="Dispose()"/> need exclusive access, which the owning
/// <see cref="SyncStrategy"/> provides.</para>
/// </remarks>
public abstract unsafe class PageMemory : IDisposable
{
    private readonly SafeMappingHandle _reservation;
    private readonly List<DirtyTracker> _trackers = [];
    private long _pageCount;
    private byte* _dirtyMap;

    private protected PageMemory(long maxPageCount, long reservedBytes)
    {
        if (maxPageCount < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPageCount), maxPageCount, "The page count cannot be negative.");
        }

        Pages.ValidatePageCount(maxPageCount, nameof(maxPageCount));
        if (reservedBytes < 0 || reservedBytes > MaxReservedBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(reservedBytes), reservedBytes,
                $"A reservation lies in [0, {MaxReservedBytes}] bytes.");
        }

        MaxPageCount = maxPageCount;
        // At least one page, so that even a memory that can never hold a page has an address (and a guard).
        long bytes = Math.Max(Pages.Size, Math.Max(Pages.ToBytes(maxPageCount), (reservedBytes + Pages.Size - 1) & ~(long)(Pages.Size - 1)));
        nint address = Libc.Mmap(0, bytes, Prot.PROT_NONE,
            MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS | MapFlags.MAP_NORESERVE, -1, 0);
        _reservation = new SafeMappingHandle(address, bytes);
        ReservedBytes = bytes;
    }

    /// <summary>The largest reservation a memory may ask for (1 TiB; a guard-page Wasm memory takes 8 GiB + 64 KiB).</summary>
    public const long MaxReservedBytes = 1L << 40;

    /// <summary>The address space reserved: at least <see cref="MaxPageCount"/> pages (and at least one page).</summary>
    public long ReservedBytes { get; }

    /// <summary>The mapped length in pages.</summary>
    public long PageCount => Volatile.Read(ref _pageCount);

    /// <summary>The mapped length in bytes.</summary>
    public long ByteLength => Pages.ToBytes(PageCount);

    /// <summary>The size of the reservation in pages: the most this memory can grow to.</summary>
    public long MaxPageCount { get; }

    /// <summary>Whether <see cref="Dispose()"/> has run.</summary>
    public bool IsDisposed => _reservation.IsClosed;

    /// <summary>The first byte. Stable for the object's lifetime (see the lifetime remarks).</summary>
    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return (byte*)_reservation.Address;
        }
    }

    internal nint Address => _reservation.Address;

    /// <summary>
    /// A writable span over <paramref name="length"/> bytes at <paramref name="byteOffset"/> (bounds-checked). Counts
    /// as a write of those pages for a store-barrier tracker (<see cref="DirtyMap"/>); use <see cref="ReadSpan"/> to
    /// only read.
    /// </summary>
    public Span<byte> GetSpan(long byteOffset, int length)
    {
        CheckRange(byteOffset, length);
        MarkWrittenUnchecked(byteOffset, length);
        // SAFETY: the range was just checked against the mapped part of the reservation.
        return new Span<byte>((byte*)_reservation.Address + byteOffset, length);
    }

    /// <summary>A read-only span over <paramref name="length"/> bytes at <paramref name="byteOffset"/> (bounds-checked; marks nothing).</summary>
    public ReadOnlySpan<byte> ReadSpan(long byteOffset, int length)
    {
        CheckRange(byteOffset, length);
        // SAFETY: the range was just checked against the mapped part of the reservation.
        return new ReadOnlySpan<byte>((byte*)_reservation.Address + byteOffset, length);
    }

    /// <summary>
    /// The store barrier's dirty map while a <see cref="TrackerKind.StoreBarrier"/> tracker watches this memory (null
    /// otherwise): one byte per page of the whole reservation; a writer sets byte <c>offset / 4096</c> to non-zero for
    /// every page it writes. <b>Contract:</b> while it is non-null, anything that writes this memory other than through
    /// <see cref="GetSpan"/>/<see cref="GetPage"/> marks the pages it writes, here or with <see cref="MarkWritten"/>.
    /// Valid until the tracker is disposed.
    /// </summary>
    public byte* DirtyMap => _dirtyMap;

    /// <summary>Records a write of [<paramref name="byteOffset"/>, +<paramref name="length"/>) for a store-barrier tracker (no-op without one).</summary>
    public void MarkWritten(long byteOffset, long length)
    {
        CheckRange(byteOffset, length);
        MarkWrittenUnchecked(byteOffset, length);
    }

    private void MarkWrittenUnchecked(long byteOffset, long length)
    {
        byte* map = _dirtyMap;
        if (map != null && length > 0)
        {
            // SAFETY: the range lies in the mapped part, and the map covers the whole reservation.
            new Span<byte>(map + (byteOffset >> Pages.Shift), checked((int)(((byteOffset + length - 1) >> Pages.Shift) - (byteOffset >> Pages.Shift) + 1))).Fill(1);
        }
    }

    private void CheckRange(long byteOffset, long length)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (byteOffset < 0 || length < 0 || byteOffset + length > ByteLength)
        {
            throw new ArgumentOutOfRangeException(nameof(byteOffset),
                $"[{byteOffset}, {byteOffset + length}) lies outside the {ByteLength} mapped bytes.");
        }
    }

    internal void AttachDirtyMap(byte* map)
    {
        if (_dirtyMap != null)
        {
            throw new InvalidOperationException("The memory already has a store-barrier tracker; one per memory.");
        }

        _dirtyMap = map;
    }

    internal void DetachDirtyMap(byte* map)
    {
        if (_dirtyMap == map)
        {
            _dirtyMap = null;
        }
    }

    /// <summary>A span over one page.</summary>
    public Span<byte> GetPage(long pageIndex) => GetSpan(Pages.ToBytes(pageIndex), Pages.Size);

    /// <summary>
    /// Maps or unmaps pages at the end so that <paramref name="pageCount"/> pages are mapped. New pages show
    /// what the memory's source holds there (zero for private memory, the base for a view); pages cut off
    /// are discarded. Attached trackers follow.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The page count is negative or exceeds <see cref="MaxPageCount"/>.</exception>
    public void Resize(long pageCount)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (pageCount < 0 || pageCount > MaxPageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount,
                $"The memory's reservation holds {MaxPageCount} pages; cannot map {pageCount}.");
        }

        long old = _pageCount;
        if (pageCount > old)
        {
            MapPages(old, pageCount);
        }
        else if (pageCount < old)
        {
            // Replace the tail with fresh PROT_NONE reservation (MAP_FIXED swaps it atomically).
            Libc.Mmap(Address + (nint)Pages.ToBytes(pageCount), Pages.ToBytes(old - pageCount), Prot.PROT_NONE,
                MapFlags.MAP_PRIVATE | MapFlags.MAP_ANONYMOUS | MapFlags.MAP_NORESERVE | MapFlags.MAP_FIXED, -1, 0);
        }

        Volatile.Write(ref _pageCount, pageCount);
        foreach (DirtyTracker tracker in _trackers)
        {
            tracker.OnResized(old, pageCount);
        }
    }

    /// <summary>
    /// Maps every page again at its fixed address (after the base switched files): private copies are dropped and
    /// trackers re-arm on the new mapping. The owner must have saved any private bytes it still needs.
    /// </summary>
    internal void Remap()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (PageCount > 0)
        {
            MapPages(0, PageCount);
        }

        foreach (DirtyTracker tracker in _trackers)
        {
            tracker.OnRemapped();
        }
    }

    /// <summary>Maps pages [<paramref name="fromPage"/>, <paramref name="toPage"/>) read-write at their fixed addresses.</summary>
    private protected abstract void MapPages(long fromPage, long toPage);

    internal byte* PointerTo(long pageIndex) => (byte*)_reservation.Address + Pages.ToBytes(pageIndex);

    internal void CheckRun(PageRun run)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (run.StartPage < 0 || run.PageCount < 0 || run.EndPage > PageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(run), run, $"The run lies outside the {PageCount} mapped pages.");
        }
    }

    /// <summary>Copies the given runs from <paramref name="source"/> into the same pages of this memory.</summary>
    internal void CopyRunsFrom(PageMemory source, IReadOnlyList<PageRun> runs)
    {
        for (int i = 0; i < runs.Count; i++)
        {
            PageRun run = runs[i];
            CheckRun(run);
            source.CheckRun(run);
            // SAFETY: both runs were checked against the mapped parts of their reservations, which do not overlap.
            Buffer.MemoryCopy(source.PointerTo(run.StartPage), PointerTo(run.StartPage), run.ByteLength, run.ByteLength);
            MarkWrittenUnchecked(run.ByteOffset, run.ByteLength);
        }
    }

    internal void Attach(DirtyTracker tracker) => _trackers.Add(tracker);

    /// <summary>Whether a userfaultfd tracker watches this memory (its markers look like swap entries in the pagemap).</summary>
    internal bool HasUffdTracker => _trackers.Exists(t => t.Kind == TrackerKind.UffdWriteProtect);

    internal void Detach(DirtyTracker tracker) => _trackers.Remove(tracker);

    /// <summary>Unmaps the whole reservation. Attached trackers must be disposed first (they are left unusable otherwise).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the reservation; subclasses release what they own first.</summary>
    protected virtual void Dispose(bool disposing) => _reservation.Dispose();
}
