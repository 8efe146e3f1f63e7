using System.Buffers.Binary;
using System.Security.Cryptography;
using CowWasm.Memory.IO;
using CowWasm.Memory.Native;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Memory.Images;

/// <summary>
/// A file of whole pages with a flat, checksummed header (little-endian), then page-aligned data:
/// <code>
///   0  8  magic "CWIMAGE\n"             40  8  flags (0)
///   8  4  format version (1)             48 32  data hash (SHA-256 of the pages)
///  12  4  header bytes H = 112 + m       80 32  header hash: SHA-256 of bytes [0, H) with this field zeroed
///  16  4  page size (4096)              112  m  identity: the owner's bytes (opaque here)
///  20  4  identity bytes m
///  24  8  page count
///  32  8  data offset (page multiple ≥ H)
/// </code>
/// The engine knows pages and a data hash; what the pages belong to is the owner's (the pool records its module,
/// memory length and globals in the identity bytes and checks them itself). Opening reads and checks the header
/// (at most one page) and maps the data; nothing else is read.
/// </summary>
public static class PageImageFile
{
    /// <summary>The format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    /// <summary>The most identity bytes a file can carry (the header fits in one page).</summary>
    public const int MaxIdentityBytes = Pages.Size - FixedHeaderBytes;

    internal const int FixedHeaderBytes = 112;
    internal const int HeaderHashOffset = 80;
    private static ReadOnlySpan<byte> Magic => "CWIMAGE\n"u8;

    /// <summary>
    /// Writes the first <paramref name="pageCount"/> pages of <paramref name="image"/> with <paramref name="identity"/>
    /// to <paramref name="path"/>, atomically and durably (<see cref="AtomicFile"/>), mode 0600. The caller keeps the
    /// image from changing meanwhile (the pool holds its write gate).
    /// </summary>
    /// <exception cref="ArgumentException">The identity is over <see cref="MaxIdentityBytes"/>, or the page count exceeds the image.</exception>
    public static void Save(string path, PageBase image, long pageCount, ReadOnlySpan<byte> identity)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(image);
        if (identity.Length > MaxIdentityBytes)
        {
            throw new ArgumentException($"A page image carries at most {MaxIdentityBytes} identity bytes, not {identity.Length}.", nameof(identity));
        }

        if (pageCount < 0 || pageCount > image.PageCount)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount), pageCount, $"The image has {image.PageCount} pages.");
        }

        byte[] header = new byte[FixedHeaderBytes + identity.Length];
        identity.CopyTo(header.AsSpan(FixedHeaderBytes));
        const long dataOffset = Pages.Size;
        AtomicFile.Write(path, file =>
        {
            file.SetLength(dataOffset + Pages.ToBytes(pageCount));
            byte[] dataHash = HashPages(image, pageCount, (run, chunk) => RandomAccess.Write(file.SafeFileHandle, chunk, dataOffset + run.ByteOffset));
            WriteHeader(header, pageCount, dataOffset, dataHash);
            RandomAccess.Write(file.SafeFileHandle, header, 0);
        });
    }

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

    /// <summary>Fills the fixed fields of <paramref name="header"/> (whose identity bytes are already in place) and its hash.</summary>
    internal static void WriteHeader(Span<byte> header, long pageCount, long dataOffset, ReadOnlySpan<byte> dataHash,
        int formatVersion = FormatVersion, int pageSize = Pages.Size)
    {
        header[..FixedHeaderBytes].Clear();
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], formatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], header.Length);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], pageSize);
        BinaryPrimitives.WriteInt32LittleEndian(header[20..], header.Length - FixedHeaderBytes);
        BinaryPrimitives.WriteInt64LittleEndian(header[24..], pageCount);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], dataOffset);
        dataHash.CopyTo(header[48..]);
        SHA256.HashData(header, header.Slice(HeaderHashOffset, 32));
    }

    /// <summary>
    /// Opens a page image: checks the header (magic, version, size, checksum, page size, bounds) and maps nothing
    /// until all checks pass. A file that is this user's and writable by nobody else (what <c>Save</c> writes: 0600)
    /// is mapped in place — nothing read or copied; any other is copied into a memfd here (O(size)) and closed, since
    /// whoever else can write it could truncate or rewrite it under our mappings. The data is not verified:
    /// <see cref="PageImage.VerifyData"/> does that on demand.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="PageImageFormatException">The file is not a usable page image (the message says why); nothing stays open.</exception>
    public static PageImage Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = System.IO.Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            throw new FileNotFoundException($"'{fullPath}' does not exist.", fullPath);
        }

        SafeFdHandle fd = Libc.Open(fullPath, OpenFlags.O_RDONLY);
        PageBase? pageBase = null;
        try
        {
            PageImageHeader header = ReadHeader(fd, fullPath);
            bool mapInPlace = Libc.IsPrivateToUs(fd);
            pageBase = PageBase.AdoptReadOnlyFile(fd, header.DataOffset, header.PageCount);
            if (!mapInPlace)
            {
                // Someone else could truncate or rewrite a file we map (SIGBUS, or replicas drifting apart): take a copy
                // now, O(size), and let go of the file.
                pageBase.CopyUp("cowwasm-snapshot-copy");
            }

            return new PageImage(fullPath, header, pageBase);
        }
        catch
        {
            if (pageBase is null)
            {
                fd.Dispose();
            }
            else
            {
                pageBase.Dispose();
            }

            throw;
        }
    }

    private static PageImageHeader ReadHeader(SafeFdHandle fd, string path)
    {
        using var lease = fd.Use(out int raw);
        using var file = new SafeFileHandle(raw, ownsHandle: false);
        long length = RandomAccess.GetLength(file);
        Span<byte> header = stackalloc byte[Pages.Size];
        int read = RandomAccess.Read(file, header, 0);
        header = header[..read];
        if (read < FixedHeaderBytes)
        {
            throw new PageImageFormatException(path, $"truncated: {length} bytes is shorter than the {FixedHeaderBytes}-byte header.");
        }

        if (!header[..8].SequenceEqual(Magic))
        {
            throw new PageImageFormatException(path, "not a CowWasm page image (bad magic).");
        }

        int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != FormatVersion)
        {
            throw new PageImageFormatException(path, $"format version {version}; this build reads version {FormatVersion}.");
        }

        int headerBytes = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        int identityBytes = BinaryPrimitives.ReadInt32LittleEndian(header[20..]);
        if (identityBytes < 0 || identityBytes > MaxIdentityBytes || headerBytes != FixedHeaderBytes + identityBytes)
        {
            throw new PageImageFormatException(path, $"corrupt header: {headerBytes} header bytes for {identityBytes} identity bytes.");
        }

        if (headerBytes > read)
        {
            throw new PageImageFormatException(path, $"truncated: the header needs {headerBytes} bytes, the file has {length}.");
        }

        Span<byte> check = stackalloc byte[headerBytes];
        header[..headerBytes].CopyTo(check);
        check.Slice(HeaderHashOffset, 32).Clear();
        Span<byte> actual = stackalloc byte[32];
        SHA256.HashData(check, actual);
        if (!actual.SequenceEqual(header.Slice(HeaderHashOffset, 32)))
        {
            throw new PageImageFormatException(path, "corrupt header (header checksum mismatch).");
        }

        int pageSize = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        if (pageSize != Pages.Size || pageSize != Environment.SystemPageSize)
        {
            throw new PageImageFormatException(path,
                $"page size {pageSize}; this build uses {Pages.Size}-byte pages and this machine {Environment.SystemPageSize}.");
        }

        long pageCount = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        long dataOffset = BinaryPrimitives.ReadInt64LittleEndian(header[32..]);
        if (pageCount < 0 || pageCount > Pages.MaxPageCount || dataOffset < headerBytes || dataOffset % Pages.Size != 0)
        {
            throw new PageImageFormatException(path, $"corrupt header: {pageCount} pages at offset {dataOffset}.");
        }

        long needed = dataOffset + Pages.ToBytes(pageCount);
        if (length < needed)
        {
            throw new PageImageFormatException(path, $"truncated: {pageCount} pages need {needed} bytes, the file has {length}.");
        }

        return new PageImageHeader(version, pageSize, pageCount, header.Slice(48, 32).ToArray(),
            header.Slice(FixedHeaderBytes, identityBytes).ToArray(), dataOffset);
    }
}
