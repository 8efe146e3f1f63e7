using System.Buffers.Binary;
using System.Security.Cryptography;
using CowWasm.Memory.Native;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Memory;

/// <summary>A snapshot file is unusable: bad magic, unknown format version, corrupt header, truncated data, wrong module or page size.</summary>
public sealed class SnapshotFormatException(string path, string problem) : IOException($"Snapshot '{path}': {problem}")
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong, without the path.</summary>
    public string Problem { get; } = problem;
}

/// <summary>What a snapshot's header says (everything but the pages).</summary>
/// <param name="FormatVersion">The file format version.</param>
/// <param name="PageSize">Bytes per page (4096).</param>
/// <param name="PageCount">Committed pages; the memory's length is <c>PageCount × PageSize</c>.</param>
/// <param name="ModuleHash">SHA-256 identifying the module whose state this is (32 bytes).</param>
/// <param name="DataHash">SHA-256 of the page data (32 bytes), checked by <see cref="Snapshot.VerifyData"/>.</param>
/// <param name="Globals">The module's global values, as raw 64-bit slots.</param>
/// <param name="DataOffset">Where page 0 starts in the file (a page multiple).</param>
public sealed record SnapshotHeader(int FormatVersion, int PageSize, long PageCount, byte[] ModuleHash, byte[] DataHash,
    IReadOnlyList<ulong> Globals, long DataOffset);

/// <summary>
/// The on-disk snapshot format (little-endian, one flat header, then page-aligned data):
/// <code>
///   0  8  magic "CWSNAP\r\n"          40  8  flags (0)
///   8  4  format version (1)           48 32  module hash (SHA-256)
///  12  4  header bytes H = 176 + 8n    80 32  data hash (SHA-256 of the pages)
///  16  4  page size (4096)            112 32  reserved (0)
///  20  4  global count n              144 32  header hash: SHA-256 of bytes [0, H) with this field zeroed
///  24  8  page count                  176 8n  globals (raw 64-bit slots)
///  32  8  data offset (page multiple ≥ H)
/// </code>
/// Loading reads and checks the header (a few hundred bytes) and maps the data; nothing else is read.
/// </summary>
public static class SnapshotFile
{
    /// <summary>The format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    internal const int FixedHeaderBytes = 176;
    internal const int HeaderHashOffset = 144;
    private const int MaxGlobals = (Pages.Size - FixedHeaderBytes) / 8;
    private static ReadOnlySpan<byte> Magic => "CWSNAP\r\n"u8;

    /// <summary>
    /// Writes <paramref name="pageCount"/> pages of <paramref name="image"/> with <paramref name="globals"/> and the
    /// module's identity to <paramref name="path"/>, atomically: a temp file in the same directory, fsync, rename,
    /// fsync of the directory. An existing file is replaced only when the new one is complete.
    /// The caller keeps the image from changing meanwhile (the pool holds its write gate).
    /// </summary>
    /// <exception cref="ArgumentException">The hash is not 32 bytes, there are too many globals, or the page count exceeds the image.</exception>
    public static void Save(string path, PageBase image, long pageCount, ReadOnlySpan<byte> moduleHash, IReadOnlyList<ulong> globals)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(globals);
        if (moduleHash.Length != 32)
        {
            throw new ArgumentException($"The module hash must be 32 bytes (SHA-256), not {moduleHash.Length}.", nameof(moduleHash));
        }

        if (globals.Count > MaxGlobals)
        {
            throw new ArgumentException($"A snapshot holds at most {MaxGlobals} globals; the module has {globals.Count}.", nameof(globals));
        }

        if (pageCount < 0 || pageCount > image.PageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, $"The image has {image.PageCount} pages.");
        }

        string fullPath = System.IO.Path.GetFullPath(path);
        string directory = System.IO.Path.GetDirectoryName(fullPath)!;
        string temp = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(fullPath)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        int headerBytes = FixedHeaderBytes + 8 * globals.Count;
        const long dataOffset = Pages.Size;
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None))
            {
                file.SetLength(dataOffset + Pages.ToBytes(pageCount));
                byte[] dataHash = WriteData(file.SafeFileHandle, image, pageCount, dataOffset);
                byte[] header = new byte[headerBytes];
                WriteHeader(header, pageCount, dataOffset, moduleHash, dataHash, globals);
                RandomAccess.Write(file.SafeFileHandle, header, 0);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, fullPath, overwrite: true); // rename(2): readers see the old file or the new one, never a mix
            FsyncDirectory(directory);
        }
        catch
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }

            throw;
        }
    }

    private static byte[] WriteData(SafeFileHandle file, PageBase image, long pageCount, long dataOffset) =>
        HashPages(image, pageCount, (run, chunk) => RandomAccess.Write(file, chunk, dataOffset + run.ByteOffset));

    /// <summary>SHA-256 of the first <paramref name="pageCount"/> pages, read in 1 MiB chunks, each also handed to <paramref name="sink"/>.</summary>
    internal static byte[] HashPages(PageBase image, long pageCount, Action<PageRun, ReadOnlySpan<byte>>? sink = null)
    {
        const int chunkPages = 256; // 1 MiB
        byte[] buffer = new byte[Pages.ToBytes(chunkPages)];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long page = 0; page < pageCount; page += chunkPages)
        {
            var run = new PageRun(page, Math.Min(chunkPages, pageCount - page));
            Span<byte> chunk = buffer.AsSpan(0, (int)run.ByteLength);
            image.Read(run, chunk);
            hash.AppendData(chunk);
            sink?.Invoke(run, chunk);
        }

        return hash.GetHashAndReset();
    }

    internal static void WriteHeader(Span<byte> header, long pageCount, long dataOffset, ReadOnlySpan<byte> moduleHash,
        ReadOnlySpan<byte> dataHash, IReadOnlyList<ulong> globals, int formatVersion = FormatVersion, int pageSize = Pages.Size)
    {
        header.Clear();
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], formatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], header.Length);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], pageSize);
        BinaryPrimitives.WriteInt32LittleEndian(header[20..], globals.Count);
        BinaryPrimitives.WriteInt64LittleEndian(header[24..], pageCount);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], dataOffset);
        moduleHash.CopyTo(header[48..]);
        dataHash.CopyTo(header[80..]);
        for (int i = 0; i < globals.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(header[(FixedHeaderBytes + 8 * i)..], globals[i]);
        }

        SHA256.HashData(header, header.Slice(HeaderHashOffset, 32));
    }

    /// <summary>
    /// Opens a snapshot: checks the header (magic, version, size, checksum, page size, bounds, module) and maps
    /// nothing until all checks pass. The data is not read: <see cref="Snapshot.VerifyData"/> does that on demand.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedModuleHash">The module the caller will run (SHA-256); empty skips the check.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="SnapshotFormatException">The file is not a usable snapshot (the message says why).</exception>
    public static Snapshot Open(string path, ReadOnlySpan<byte> expectedModuleHash = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = System.IO.Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"Snapshot '{fullPath}' does not exist.", fullPath);
        }

        SafeFdHandle fd = Libc.Open(fullPath, OpenFlags.O_RDONLY);
        try
        {
            SnapshotHeader header = ReadHeader(fd, fullPath, expectedModuleHash);
            return new Snapshot(fullPath, header, PageBase.AdoptReadOnlyFile(fd, header.DataOffset, header.PageCount));
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private static SnapshotHeader ReadHeader(SafeFdHandle fd, string path, ReadOnlySpan<byte> expectedModuleHash)
    {
        using var lease = fd.Use(out int raw);
        using var file = new SafeFileHandle(raw, ownsHandle: false);
        long length = RandomAccess.GetLength(file);
        Span<byte> header = stackalloc byte[Pages.Size];
        int read = RandomAccess.Read(file, header, 0);
        header = header[..read];
        if (read < FixedHeaderBytes)
        {
            throw new SnapshotFormatException(path, $"truncated: {length} bytes is shorter than the {FixedHeaderBytes}-byte header.");
        }

        if (!header[..8].SequenceEqual(Magic))
        {
            throw new SnapshotFormatException(path, "not a CowWasm snapshot (bad magic).");
        }

        int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != FormatVersion)
        {
            throw new SnapshotFormatException(path, $"format version {version}; this build reads version {FormatVersion}.");
        }

        int headerBytes = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        int globalCount = BinaryPrimitives.ReadInt32LittleEndian(header[20..]);
        if (globalCount < 0 || globalCount > MaxGlobals || headerBytes != FixedHeaderBytes + 8 * globalCount)
        {
            throw new SnapshotFormatException(path, $"corrupt header: {headerBytes} header bytes for {globalCount} globals.");
        }

        if (headerBytes > read)
        {
            throw new SnapshotFormatException(path, $"truncated: the header needs {headerBytes} bytes, the file has {length}.");
        }

        Span<byte> check = stackalloc byte[headerBytes];
        header[..headerBytes].CopyTo(check);
        check.Slice(HeaderHashOffset, 32).Clear();
        Span<byte> actual = stackalloc byte[32];
        SHA256.HashData(check, actual);
        if (!actual.SequenceEqual(header.Slice(HeaderHashOffset, 32)))
        {
            throw new SnapshotFormatException(path, "corrupt header (header checksum mismatch).");
        }

        int pageSize = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        if (pageSize != Pages.Size || pageSize != Environment.SystemPageSize)
        {
            throw new SnapshotFormatException(path,
                $"page size {pageSize}; this build uses {Pages.Size}-byte pages and this machine {Environment.SystemPageSize}.");
        }

        long pageCount = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        long dataOffset = BinaryPrimitives.ReadInt64LittleEndian(header[32..]);
        if (pageCount < 0 || pageCount > Pages.MaxPageCount || dataOffset < headerBytes || dataOffset % Pages.Size != 0)
        {
            throw new SnapshotFormatException(path, $"corrupt header: {pageCount} pages at offset {dataOffset}.");
        }

        long needed = dataOffset + Pages.ToBytes(pageCount);
        if (length < needed)
        {
            throw new SnapshotFormatException(path, $"truncated: {pageCount} pages need {needed} bytes, the file has {length}.");
        }

        byte[] moduleHash = header.Slice(48, 32).ToArray();
        if (!expectedModuleHash.IsEmpty && !expectedModuleHash.SequenceEqual(moduleHash))
        {
            throw new SnapshotFormatException(path,
                $"saved from module {Convert.ToHexString(moduleHash)[..16]}…, not the module given ({Convert.ToHexString(expectedModuleHash)[..16]}…).");
        }

        var globals = new ulong[globalCount];
        for (int i = 0; i < globalCount; i++)
        {
            globals[i] = BinaryPrimitives.ReadUInt64LittleEndian(header[(FixedHeaderBytes + 8 * i)..]);
        }

        return new SnapshotHeader(version, pageSize, pageCount, moduleHash, header.Slice(80, 32).ToArray(), globals, dataOffset);
    }

    private static void FsyncDirectory(string directory)
    {
        using SafeFdHandle dir = Libc.Open(directory, OpenFlags.O_RDONLY);
        Libc.Fsync(dir);
    }
}

/// <summary>
/// An opened snapshot: its header and its pages as a read-only <see cref="PageBase"/> mapping the file.
/// Hand the base to <see cref="SyncStrategy.Create(SyncOptions, PageBase?)"/> (<see cref="TakeImage"/>) so the leader and
/// replicas are MAP_PRIVATE views of the file itself. The file is never written; the first commit copies the
/// image into memory. Not thread-safe.
/// </summary>
public sealed class Snapshot : IDisposable
{
    private PageBase? _image;

    internal Snapshot(string path, SnapshotHeader header, PageBase image)
    {
        Path = path;
        Header = header;
        _image = image;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>The header.</summary>
    public SnapshotHeader Header { get; }

    /// <summary>Hashes the page data (O(size); it reads every page) and compares it with the header's data hash.</summary>
    /// <exception cref="SnapshotFormatException">The data does not match (the file was modified or damaged).</exception>
    public void VerifyData()
    {
        PageBase image = _image ?? throw new InvalidOperationException("The image was taken; verify before taking it.");
        if (!SnapshotFile.HashPages(image, Header.PageCount).AsSpan().SequenceEqual(Header.DataHash))
        {
            throw new SnapshotFormatException(Path, "the page data does not match its checksum (modified or damaged).");
        }
    }

    /// <summary>Transfers the read-only image to the caller (who disposes it, or gives it to a strategy that does).</summary>
    public PageBase TakeImage()
    {
        PageBase image = _image ?? throw new InvalidOperationException("The image was already taken.");
        _image = null;
        return image;
    }

    /// <summary>Closes the file unless the image was taken.</summary>
    public void Dispose()
    {
        _image?.Dispose();
        _image = null;
    }
}
