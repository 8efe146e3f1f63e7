using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;
using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>
/// A commit's identity, which makes a pool's history a hash chain: the SHA-256 of the identity of the commit it follows
/// (its parent), its sequence, memory length, tables flag, globals, page runs and a 128-bit XXH3 digest of its pages.
/// Two pools that hold the same sequence but reached it through different commits (a leader that came back after a
/// failover and wrote on its own) have different identities there, so a commit is applied only onto the state it was
/// made from. Commit 0 of a fresh pool is the module's <see cref="Genesis"/>.
/// </summary>
/// <remarks>
/// The identity detects a wrong history, not forgery: the page digest is not cryptographic (the SHA-256 per delta and
/// the log's CRC-32 detect damage; who may publish is a matter of NATS permissions). <see cref="Unknown"/> (all zeros)
/// is the parent of a commit stored by a build before the chain (commit format version 1); only the commit log's own
/// records may be of that kind.
/// </remarks>
public readonly struct CommitId : IEquatable<CommitId>
{
    /// <summary>The identity's length in bytes.</summary>
    public const int Size = 32;

    private readonly ulong _a, _b, _c, _d;

    private CommitId(ReadOnlySpan<byte> bytes)
    {
        _a = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64LittleEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]);
    }

    /// <summary>No identity: the parent of a commit written before identities existed.</summary>
    public static CommitId Unknown => default;

    /// <summary>True for <see cref="Unknown"/>.</summary>
    public bool IsUnknown => (_a | _b | _c | _d) == 0;

    /// <summary>Reads 32 bytes.</summary>
    /// <exception cref="ArgumentException">Not 32 bytes.</exception>
    public static CommitId Read(ReadOnlySpan<byte> bytes) => bytes.Length == Size
        ? new CommitId(bytes)
        : throw new ArgumentException($"A commit identity is {Size} bytes, not {bytes.Length}.", nameof(bytes));

    /// <summary>Writes the 32 bytes to <paramref name="destination"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, _a);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], _d);
    }

    /// <summary>Parses the 64 hex digits <see cref="ToHex"/> writes.</summary>
    /// <exception cref="FormatException">Not 64 hex digits.</exception>
    public static CommitId ParseHex(string hex)
    {
        ArgumentNullException.ThrowIfNull(hex);
        return hex.Length == 2 * Size ? new CommitId(Convert.FromHexString(hex)) : throw new FormatException($"A commit identity is {2 * Size} hex digits.");
    }

    /// <summary>All 64 hex digits.</summary>
    public string ToHex()
    {
        Span<byte> bytes = stackalloc byte[Size];
        WriteTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    /// <summary>The first 16 hex digits, enough to tell histories apart in a message.</summary>
    public override string ToString() => IsUnknown ? "(unknown)" : ToHex()[..16];

    /// <summary>Commit 0 of a pool made by instantiating the module (instantiation is deterministic).</summary>
    public static CommitId Genesis(ReadOnlySpan<byte> moduleHash)
    {
        Span<byte> input = stackalloc byte[8 + 32];
        "CWGENES\n"u8.CopyTo(input);
        moduleHash.CopyTo(input[8..]);
        return FromHash(input);
    }

    /// <summary>
    /// The identity of a state saved by a build before the chain (pool snapshot version 1 or 2): derived from what the
    /// file holds (the module, sequence, memory length, globals and the page image's SHA-256), so the same file always
    /// gets the same identity.
    /// </summary>
    public static CommitId OfLegacyState(ReadOnlySpan<byte> moduleHash, long sequence, long memoryBytes, IReadOnlyList<ulong> globals,
        ReadOnlySpan<byte> dataHash)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> scratch = stackalloc byte[16];
        sha.AppendData("CWLEGACY"u8);
        sha.AppendData(moduleHash);
        BinaryPrimitives.WriteInt64LittleEndian(scratch, sequence);
        BinaryPrimitives.WriteInt64LittleEndian(scratch[8..], memoryBytes);
        sha.AppendData(scratch);
        AppendGlobals(sha, globals, scratch);
        sha.AppendData(dataHash);
        return Finish(sha);
    }

    /// <summary>The identity of a commit: its parent's identity and its content, pages by their <paramref name="pagesDigest"/>
    /// (<see cref="DigestPages"/>).</summary>
    public static CommitId Of(CommitId parent, long sequence, long memoryBytes, bool tablesChanged, IReadOnlyList<ulong> globals,
        IReadOnlyList<PageRun> runs, UInt128 pagesDigest)
    {
        ArgumentNullException.ThrowIfNull(globals);
        ArgumentNullException.ThrowIfNull(runs);
        // One SHA-256 over one buffer (no hashing context per commit): tag, parent, the four fixed fields, globals, runs, digest.
        int length = checked(8 + Size + 32 + 8 + 8 * globals.Count + 16 * runs.Count + 16);
        byte[]? rented = length > 1024 ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> input = rented is null ? stackalloc byte[length] : rented.AsSpan(0, length);
        try
        {
            "CWCOMIT\n"u8.CopyTo(input);
            parent.WriteTo(input[8..]);
            int at = 8 + Size;
            BinaryPrimitives.WriteInt64LittleEndian(input[at..], sequence);
            BinaryPrimitives.WriteInt64LittleEndian(input[(at + 8)..], memoryBytes);
            BinaryPrimitives.WriteInt64LittleEndian(input[(at + 16)..], tablesChanged ? 1 : 0);
            BinaryPrimitives.WriteInt64LittleEndian(input[(at + 24)..], runs.Count);
            BinaryPrimitives.WriteInt64LittleEndian(input[(at + 32)..], globals.Count);
            at += 40;
            foreach (ulong global in globals)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(input[at..], global);
                at += 8;
            }

            foreach (PageRun run in runs)
            {
                BinaryPrimitives.WriteInt64LittleEndian(input[at..], run.StartPage);
                BinaryPrimitives.WriteInt64LittleEndian(input[(at + 8)..], run.PageCount);
                at += 16;
            }

            BinaryPrimitives.WriteUInt128LittleEndian(input[at..], pagesDigest);
            return FromHash(input);
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The identity of <paramref name="record"/> as the child of <paramref name="parent"/>.</summary>
    public static CommitId Of(CommitId parent, CommitRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return Of(parent, record.Sequence, record.MemoryByteLength, record.TablesChanged, record.Globals, record.Runs, DigestPages(record.Pages.Span));
    }

    /// <summary>The 128-bit XXH3 digest of a commit's page bytes, as <see cref="Of(CommitId, long, long, bool, IReadOnlyList{ulong}, IReadOnlyList{PageRun}, UInt128)"/> takes it.</summary>
    public static UInt128 DigestPages(ReadOnlySpan<byte> pages) => XxHash128.HashToUInt128(pages);

    private static void AppendGlobals(IncrementalHash sha, IReadOnlyList<ulong> globals, Span<byte> scratch)
    {
        BinaryPrimitives.WriteInt64LittleEndian(scratch, globals.Count);
        sha.AppendData(scratch[..8]);
        foreach (ulong global in globals)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, global);
            sha.AppendData(scratch[..8]);
        }
    }

    private static CommitId FromHash(ReadOnlySpan<byte> input)
    {
        Span<byte> hash = stackalloc byte[Size];
        SHA256.HashData(input, hash);
        return new CommitId(hash);
    }

    private static CommitId Finish(IncrementalHash sha)
    {
        Span<byte> hash = stackalloc byte[Size];
        sha.GetHashAndReset(hash);
        return new CommitId(hash);
    }

    /// <inheritdoc/>
    public bool Equals(CommitId other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is CommitId other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _d);

    /// <summary>Equal identities.</summary>
    public static bool operator ==(CommitId left, CommitId right) => left.Equals(right);

    /// <summary>Different identities.</summary>
    public static bool operator !=(CommitId left, CommitId right) => !left.Equals(right);
}
