using System.Buffers.Binary;
using CowWasm.Memory;
using CowWasm.Memory.Images;
using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// A pool's committed state on disk: the engine's page image (<see cref="PageImageFile"/>) of the linear memory,
/// whose opaque identity bytes carry what is Wasm-shaped — the module's hash, the memory's byte length and the
/// globals. Layout of the identity (little-endian):
/// <code>
///   0  8  magic "CWPOOL\r\n"          16  8  memory byte length (= page count × 4096, a Wasm page multiple)
///   8  4  version (3)                 24 32  module hash (SHA-256 of the wasm)
///  12  4  global count n              56  8  commit sequence (the pool's <see cref="GuestPool.CommitSequence"/>)
///                                     64 32  the commit's identity (the pool's <see cref="GuestPool.Head"/>)
///                                     96 8n  globals (raw 64-bit slots)
/// </code>
/// Versions 1 (no sequence; globals at 56: sequence 0) and 2 (no identity; globals at 64) are still read; their
/// identity is derived from the file (<see cref="CommitId.OfLegacyState"/>). Opening checks the page image's header,
/// then the identity against the module; nothing is read beyond one page.
/// </summary>
public sealed class PoolSnapshot : IDisposable
{
    /// <summary>The identity format version this build writes and reads.</summary>
    public const int Version = 3;

    private const int FixedBytes = 96;
    private const int FixedBytesV2 = 64;
    private const int FixedBytesV1 = 56;
    private const int MaxGlobals = (PageImageFile.MaxIdentityBytes - FixedBytes) / 8;
    private static ReadOnlySpan<byte> Magic => "CWPOOL\r\n"u8;

    private readonly PageImage _image;

    private PoolSnapshot(PageImage image, byte[] moduleHash, long memoryByteLength, long sequence, CommitId head, ulong[] globals)
    {
        _image = image;
        Sequence = sequence;
        Head = head;
        ModuleHash = moduleHash;
        MemoryByteLength = memoryByteLength;
        Globals = globals;
    }

    /// <summary>The file.</summary>
    public string Path => _image.Path;

    /// <summary>SHA-256 of the module whose state this is (32 bytes).</summary>
    public byte[] ModuleHash { get; }

    /// <summary>The committed linear memory's length in bytes.</summary>
    public long MemoryByteLength { get; }

    /// <summary>The commit sequence number of the saved state (0 for a version-1 file).</summary>
    public long Sequence { get; }

    /// <summary>The identity of the saved commit (for a file of version 1 or 2, one derived from its content).</summary>
    public CommitId Head { get; }

    /// <summary>The module's global values, as raw 64-bit slots.</summary>
    public IReadOnlyList<ulong> Globals { get; }

    /// <summary>The page image's header (page count, data hash, offsets).</summary>
    public PageImageHeader Image => _image.Header;

    /// <summary>
    /// Writes the first <paramref name="pageCount"/> pages of <paramref name="image"/> with the module's identity and
    /// <paramref name="globals"/>, as commit <paramref name="sequence"/> of identity <paramref name="head"/> (atomic: temp
    /// file, fsync, rename; mode 0600).
    /// </summary>
    /// <exception cref="ArgumentException">The hash is not 32 bytes, or there are too many globals.</exception>
    public static void Save(string path, PageBase image, long pageCount, ReadOnlySpan<byte> moduleHash, IReadOnlyList<ulong> globals,
        long sequence, CommitId head)
    {
        ArgumentNullException.ThrowIfNull(globals);
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        if (moduleHash.Length != 32)
        {
            throw new ArgumentException($"The module hash must be 32 bytes (SHA-256), not {moduleHash.Length}.", nameof(moduleHash));
        }

        if (globals.Count > MaxGlobals)
        {
            throw new ArgumentException($"A snapshot holds at most {MaxGlobals} globals; the module has {globals.Count}.", nameof(globals));
        }

        byte[] identity = new byte[FixedBytes + 8 * globals.Count];
        Magic.CopyTo(identity);
        BinaryPrimitives.WriteInt32LittleEndian(identity.AsSpan(8), Version);
        BinaryPrimitives.WriteInt32LittleEndian(identity.AsSpan(12), globals.Count);
        BinaryPrimitives.WriteInt64LittleEndian(identity.AsSpan(16), Pages.ToBytes(pageCount));
        moduleHash.CopyTo(identity.AsSpan(24));
        BinaryPrimitives.WriteInt64LittleEndian(identity.AsSpan(56), sequence);
        head.WriteTo(identity.AsSpan(64));
        for (int i = 0; i < globals.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(identity.AsSpan(FixedBytes + 8 * i), globals[i]);
        }

        PageImageFile.Save(path, image, pageCount, identity);
    }

    /// <summary>
    /// Opens the snapshot at <paramref name="path"/> for <paramref name="module"/>: the page image's header, then the
    /// identity (format, module hash, memory length, global count). Nothing stays open when it throws.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="SnapshotFormatException">Damaged, or saved from another module or for another shape of it.</exception>
    public static PoolSnapshot Open(string path, IGuestModule module)
    {
        ArgumentNullException.ThrowIfNull(module);
        byte[] expected = ModuleHashOf(module);
        PageImage image;
        try
        {
            image = PageImageFile.Open(path);
        }
        catch (PageImageFormatException e)
        {
            throw new SnapshotFormatException(e.Path, e.Problem, e);
        }

        try
        {
            PoolSnapshot snapshot = Decode(image);
            if (!snapshot.ModuleHash.AsSpan().SequenceEqual(expected))
            {
                throw new SnapshotFormatException(image.Path,
                    $"saved from module {Convert.ToHexString(snapshot.ModuleHash)[..16]}…, not the module given ({Convert.ToHexString(expected)[..16]}…).");
            }

            int globalCount = module.Info.Globals.Count;
            if (snapshot.Globals.Count != globalCount)
            {
                throw new SnapshotFormatException(image.Path, $"holds {snapshot.Globals.Count} globals but the module has {globalCount}.");
            }

            // The memory must be one the module could have: instantiation writes data segments up to the declared minimum.
            long wasmPages = snapshot.MemoryByteLength / ILinearMemory.WasmPageSize;
            WasmLimits limits = module.Info.Memory
                ?? throw new SnapshotFormatException(image.Path, "holds a memory, but the module declares none.");
            if (wasmPages < (long)Math.Min(limits.Minimum, 65536) || (limits.Maximum is { } max && (ulong)wasmPages > max) || wasmPages > 65535)
            {
                throw new SnapshotFormatException(image.Path,
                    $"holds {wasmPages} Wasm pages; the module's memory takes {limits.Minimum} to {limits.Maximum?.ToString() ?? "65535"}.");
            }

            return snapshot;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>The module's identity for snapshots: the SHA-256 of its wasm.</summary>
    /// <exception cref="ArgumentException">The module has no identity hash.</exception>
    public static byte[] ModuleHashOf(IGuestModule module) => module.Info.ModuleHash.Length == 64
        ? Convert.FromHexString(module.Info.ModuleHash)
        : throw new ArgumentException("The module has no identity hash (WasmModuleInfo.ModuleHash); snapshots need one.", nameof(module));

    private static PoolSnapshot Decode(PageImage image)
    {
        ReadOnlySpan<byte> identity = image.Header.Identity;
        if (identity.Length < FixedBytes || !identity[..8].SequenceEqual(Magic))
        {
            throw new SnapshotFormatException(image.Path, "a page image, but not a pool snapshot (no pool identity).");
        }

        int version = BinaryPrimitives.ReadInt32LittleEndian(identity[8..]);
        if (version is not (1 or 2 or Version))
        {
            throw new SnapshotFormatException(image.Path, $"pool snapshot version {version}; this build reads versions 1 to {Version}.");
        }

        int fixedBytes = version switch { 1 => FixedBytesV1, 2 => FixedBytesV2, _ => FixedBytes };
        int globalCount = BinaryPrimitives.ReadInt32LittleEndian(identity[12..]);
        if (globalCount < 0 || globalCount > MaxGlobals || identity.Length != fixedBytes + 8 * globalCount)
        {
            throw new SnapshotFormatException(image.Path, $"corrupt identity: {identity.Length} bytes for {globalCount} globals.");
        }

        long sequence = version == 1 ? 0 : BinaryPrimitives.ReadInt64LittleEndian(identity[56..]);
        if (sequence < 0)
        {
            throw new SnapshotFormatException(image.Path, $"corrupt identity: commit sequence {sequence}.");
        }

        long memoryBytes = BinaryPrimitives.ReadInt64LittleEndian(identity[16..]);
        if (memoryBytes != Pages.ToBytes(image.Header.PageCount) || memoryBytes % ILinearMemory.WasmPageSize != 0)
        {
            throw new SnapshotFormatException(image.Path,
                $"records a memory of {memoryBytes} bytes over {image.Header.PageCount} pages (must be equal and a multiple of {ILinearMemory.WasmPageSize}).");
        }

        var globals = new ulong[globalCount];
        for (int i = 0; i < globalCount; i++)
        {
            globals[i] = BinaryPrimitives.ReadUInt64LittleEndian(identity[(fixedBytes + 8 * i)..]);
        }

        byte[] moduleHash = identity.Slice(24, 32).ToArray();
        CommitId head = version == Version
            ? CommitId.Read(identity.Slice(64, CommitId.Size))
            : CommitId.OfLegacyState(moduleHash, sequence, memoryBytes, globals, image.Header.DataHash);
        return new PoolSnapshot(image, moduleHash, memoryBytes, sequence, head, globals);
    }

    /// <summary>Hashes every page and compares with the recorded data hash (O(size)).</summary>
    /// <exception cref="SnapshotFormatException">The data was modified or damaged.</exception>
    public void VerifyData()
    {
        try
        {
            _image.VerifyData();
        }
        catch (PageImageFormatException e) when (e is not SnapshotFormatException)
        {
            throw new SnapshotFormatException(e.Path, e.Problem, e);
        }
    }

    /// <summary>Transfers the read-only base (the mapped pages) to the caller, who disposes it or gives it to a strategy.</summary>
    public PageBase TakeBase() => _image.TakeBase();

    /// <summary>Closes the file unless its base was taken.</summary>
    public void Dispose() => _image.Dispose();
}
