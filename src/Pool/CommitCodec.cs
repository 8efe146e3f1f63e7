using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using CowWasm.Memory;

namespace CowWasm.Pool;

/// <summary>
/// The one encoding of a commit (<see cref="CommitRecord"/>): a self-checking delta. JetStream carries it (split into
/// chunks no larger than a NATS message may be) and the commit log stores it. Layout (little-endian):
/// <code>
///    0  8  magic "CWDELTA\n"           64  4  global count g        end−32  32  SHA-256 of every byte before it
///    8  4  version (2)                  68  4  run count r
///   12  4  flags: 1 = pages Brotli,     72 32  parent's identity (<see cref="CommitId"/>)
///            2 = the leader's tables changed (a follower cannot apply this),
///            4 = no SHA-256 (zeros: the commit log checks its records with a CRC-32),
///            8 = pages as patches (<see cref="PagePatches"/>)
///   16  8  commit sequence             104 32  the commit's identity (checked against the pages once applied)
///   24  8  memory byte length           136 8g  globals
///   32 32  module hash (SHA-256)         ..16r  runs (start page, page count)
///                                        ..  8  raw page bytes (pages × 4096, or the patches' length)
///                                        ..  8  payload length, then the payload (raw or compressed)
/// </code>
/// Decoding checks everything before it allocates for the pages: sizes against the declared module's memory, the
/// checksum, the module, the runs' order and bounds, and that the pages decompress to exactly the declared length.
/// Version 1 (no parent, no identity; globals at 72) is read from the commit log only, with an unknown parent.
/// </summary>
public static class CommitCodec
{
    /// <summary>The format version this build writes and reads.</summary>
    public const int Version = 2;
    private const int FlagBrotli = 1;
    private const int FlagTablesChanged = 2;
    private const int FlagUnhashed = 4; // the container checks it (the commit log's CRC-32); the trailer is zeros
    private const int FlagPatches = 8;
    private const int FixedBytes = 136;
    private const int FixedBytesV1 = 72;
    private const int HashBytes = 32;
    private static ReadOnlySpan<byte> Magic => "CWDELTA\n"u8;

    /// <summary>Encodes <paramref name="record"/> for <paramref name="moduleHash"/>; <paramref name="compress"/>: Brotli the pages when it saves a tenth.</summary>
    /// <param name="record">The commit.</param>
    /// <param name="moduleHash">The module's SHA-256.</param>
    /// <param name="compress">Brotli the pages when it saves a tenth.</param>
    /// <param name="hash">Compute the SHA-256 trailer (default). Off only for a container that checks its records itself
    /// (the commit log: a CRC-32 per record), where the SHA-256 of every commit's pages would cost the write path most of
    /// its time; such a delta decodes only with <c>fromLog</c>.</param>
    public static byte[] Encode(CommitRecord record, ReadOnlySpan<byte> moduleHash, bool compress, bool hash = true)
    {
        ReadOnlySpan<byte> pages = record.Pages.Span;
        byte[]? packed = compress && pages.Length >= 1024 ? TryCompress(pages) : null;
        byte[] delta = GC.AllocateUninitializedArray<byte>(EncodedLength(record, (packed ?? pages).Length));
        EncodeInto(record, moduleHash, packed, hash, delta);
        return delta;
    }

    /// <summary>
    /// Encodes <paramref name="record"/> uncompressed into a buffer rented from <see cref="ArrayPool{T}.Shared"/> (return it
    /// when done): a commit's pages are large-object-heap sized, and the commit log encodes one per commit.
    /// </summary>
    public static (byte[] Buffer, int Length) EncodeRented(CommitRecord record, ReadOnlySpan<byte> moduleHash, bool hash)
    {
        int length = EncodedLength(record, record.Pages.Length);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        EncodeInto(record, moduleHash, packed: null, hash, buffer.AsSpan(0, length));
        return (buffer, length);
    }

    private static int EncodedLength(CommitRecord record, int payloadBytes) =>
        checked(FixedBytes + 8 * record.Globals.Count + 16 * record.Runs.Count + 16 + payloadBytes + HashBytes);

    private static void EncodeInto(CommitRecord record, ReadOnlySpan<byte> moduleHash, byte[]? packed, bool hash, Span<byte> d)
    {
        ReadOnlySpan<byte> pages = record.Pages.Span;
        ReadOnlySpan<byte> payload = packed ?? pages;
        Magic.CopyTo(d);
        BinaryPrimitives.WriteInt32LittleEndian(d[8..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(d[12..],
            (packed is null ? 0 : FlagBrotli) | (record.TablesChanged ? FlagTablesChanged : 0) | (hash ? 0 : FlagUnhashed)
            | (record.Encoding == PageEncoding.Patches ? FlagPatches : 0));
        BinaryPrimitives.WriteInt64LittleEndian(d[16..], record.Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(d[24..], record.MemoryByteLength);
        moduleHash.CopyTo(d[32..]);
        BinaryPrimitives.WriteInt32LittleEndian(d[64..], record.Globals.Count);
        BinaryPrimitives.WriteInt32LittleEndian(d[68..], record.Runs.Count);
        record.Parent.WriteTo(d[72..]);
        record.Id.WriteTo(d[104..]);
        int at = FixedBytes;
        foreach (ulong global in record.Globals)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(d[at..], global);
            at += 8;
        }

        foreach (PageRun run in record.Runs)
        {
            BinaryPrimitives.WriteInt64LittleEndian(d[at..], run.StartPage);
            BinaryPrimitives.WriteInt64LittleEndian(d[(at + 8)..], run.PageCount);
            at += 16;
        }

        BinaryPrimitives.WriteInt64LittleEndian(d[at..], pages.Length);
        BinaryPrimitives.WriteInt64LittleEndian(d[(at + 8)..], payload.Length);
        at += 16;
        payload.CopyTo(d[at..]);
        at += payload.Length;
        if (hash)
        {
            SHA256.HashData(d[..at], d[at..]);
        }
        else
        {
            d[at..].Clear();
        }
    }

    /// <summary>Brotli at its fastest level, kept only when it saves a tenth.</summary>
    private static byte[]? TryCompress(ReadOnlySpan<byte> pages)
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(pages.Length - pages.Length / 10);
        using var encoder = new BrotliEncoder(quality: 1, window: 22);
        OperationStatus status = encoder.Compress(pages, buffer, out _, out int written, isFinalBlock: true);
        return status == OperationStatus.Done ? buffer.AsSpan(0, written).ToArray() : null;
    }

    /// <summary>
    /// Decodes and checks a whole delta against <paramref name="moduleHash"/>, for a memory of at most
    /// <paramref name="maxMemoryBytes"/>.
    /// </summary>
    /// <exception cref="CommitFormatException">The delta is damaged, truncated, or of another module.</exception>
    /// <param name="delta">The encoded commit.</param>
    /// <param name="moduleHash">The module it must be of.</param>
    /// <param name="maxMemoryBytes">The largest memory the module can have.</param>
    /// <param name="fromLog">The delta comes from the commit log, which checks its records itself: accept one without its
    /// SHA-256, and one of version 1 (written before the hash chain; its parent is <see cref="CommitId.Unknown"/>).</param>
    public static CommitRecord Decode(ReadOnlySpan<byte> delta, ReadOnlySpan<byte> moduleHash, long maxMemoryBytes, bool fromLog = false)
    {
        if (delta.Length < FixedBytesV1 + 16 + HashBytes || !delta[..8].SequenceEqual(Magic))
        {
            throw new CommitFormatException($"A delta of {delta.Length} bytes is not a CowWasm delta (bad magic or too short).");
        }

        long sequence = BinaryPrimitives.ReadInt64LittleEndian(delta[16..]);
        bool unhashed = (BinaryPrimitives.ReadInt32LittleEndian(delta[12..]) & FlagUnhashed) != 0;
        if (unhashed && !fromLog)
        {
            throw new CommitFormatException(sequence, $"The delta of commit {sequence} carries no SHA-256; only the commit log stores such deltas.");
        }

        Span<byte> hash = stackalloc byte[HashBytes];
        if (!unhashed)
        {
            SHA256.HashData(delta[..^HashBytes], hash);
        }

        if (!hash.SequenceEqual(delta[^HashBytes..]))
        {
            throw new CommitFormatException(sequence, $"The delta of commit {sequence} fails its SHA-256 checksum: it was damaged in transit or storage.");
        }

        int version = BinaryPrimitives.ReadInt32LittleEndian(delta[8..]);
        if (version != Version && !(version == 1 && fromLog))
        {
            throw new CommitFormatException(sequence, version == 1
                ? $"The delta of commit {sequence} is of format version 1, written by a build before commits named their parent; " +
                  "a follower cannot check it continues its history. Publish under a new replication name."
                : $"Delta format version {version}; this build reads version {Version}.");
        }

        int fixedBytes = version == 1 ? FixedBytesV1 : FixedBytes;
        if (!delta.Slice(32, 32).SequenceEqual(moduleHash))
        {
            throw new CommitFormatException(sequence,
                $"Commit {sequence} comes from module {Convert.ToHexString(delta.Slice(32, 32))[..16]}…, not the module this pool runs " +
                $"({Convert.ToHexString(moduleHash)[..16]}…).");
        }

        int flags = BinaryPrimitives.ReadInt32LittleEndian(delta[12..]);
        long memoryBytes = BinaryPrimitives.ReadInt64LittleEndian(delta[24..]);
        int globalCount = BinaryPrimitives.ReadInt32LittleEndian(delta[64..]);
        int runCount = BinaryPrimitives.ReadInt32LittleEndian(delta[68..]);
        long body = delta.Length - HashBytes;
        if ((flags & ~(FlagBrotli | FlagTablesChanged | FlagUnhashed | FlagPatches)) != 0 || (version == 1 && (flags & FlagPatches) != 0) || sequence < 1 || memoryBytes <= 0 || memoryBytes > maxMemoryBytes || globalCount < 0
            || runCount < 0 || fixedBytes + 8L * globalCount + 16L * runCount + 16 > body)
        {
            throw new CommitFormatException(sequence,
                $"The delta of commit {sequence} is corrupt: flags {flags}, {memoryBytes} memory bytes (at most {maxMemoryBytes}), " +
                $"{globalCount} globals, {runCount} runs in {delta.Length} bytes.");
        }

        CommitId parent = version == 1 ? CommitId.Unknown : CommitId.Read(delta.Slice(FixedBytesV1, CommitId.Size));
        var globals = new ulong[globalCount];
        int at = fixedBytes;
        for (int i = 0; i < globalCount; i++, at += 8)
        {
            globals[i] = BinaryPrimitives.ReadUInt64LittleEndian(delta[at..]);
        }

        var runs = new PageRun[runCount];
        long pageCount = memoryBytes / Pages.Size;
        long pages = 0;
        long end = 0;
        for (int i = 0; i < runCount; i++, at += 16)
        {
            var run = new PageRun(BinaryPrimitives.ReadInt64LittleEndian(delta[at..]), BinaryPrimitives.ReadInt64LittleEndian(delta[(at + 8)..]));
            if (run.StartPage < end || run.PageCount <= 0 || run.PageCount > pageCount || run.StartPage > pageCount - run.PageCount)
            {
                throw new CommitFormatException(sequence, $"The delta of commit {sequence} has run {run}, out of order or outside its {pageCount} pages.");
            }

            runs[i] = run;
            end = run.EndPage;
            pages += run.PageCount;
        }

        bool patched = (flags & FlagPatches) != 0;
        long rawBytes = BinaryPrimitives.ReadInt64LittleEndian(delta[at..]);
        long payloadBytes = BinaryPrimitives.ReadInt64LittleEndian(delta[(at + 8)..]);
        at += 16;
        if ((patched ? rawBytes < 2 * pages || rawBytes > PagePatches.MaxPageBytes * pages : rawBytes != Pages.ToBytes(pages))
            || payloadBytes != body - at || ((flags & FlagBrotli) == 0 && payloadBytes != rawBytes))
        {
            throw new CommitFormatException(sequence,
                $"The delta of commit {sequence} is corrupt: {rawBytes} page bytes for {pages} pages, a payload of {payloadBytes} bytes where {body - at} remain.");
        }

        ReadOnlySpan<byte> payload = delta.Slice(at, (int)payloadBytes);
        byte[] raw;
        if ((flags & FlagBrotli) == 0)
        {
            raw = payload.ToArray();
        }
        else
        {
            raw = GC.AllocateUninitializedArray<byte>(checked((int)rawBytes));
            using var decoder = new BrotliDecoder();
            OperationStatus status = decoder.Decompress(payload, raw, out int consumed, out int written);
            if (status != OperationStatus.Done || consumed != payload.Length || written != raw.Length)
            {
                throw new CommitFormatException(sequence,
                    $"The pages of commit {sequence} do not decompress to the declared {rawBytes} bytes ({status}, {written} written).");
            }
        }

        if (patched && PagePatches.Check(raw, pages) is { } problem)
        {
            throw new CommitFormatException(sequence, $"The page patches of commit {sequence} are corrupt: {problem}.");
        }

        var record = new CommitRecord(sequence, parent, memoryBytes, globals, runs, raw, TablesChanged: (flags & FlagTablesChanged) != 0)
        {
            Encoding = patched ? PageEncoding.Patches : PageEncoding.Full,
        };
        if (version == 1)
        {
            return record; // no identity stored: the applying pool computes it from its own head
        }

        CommitId id = CommitId.Read(delta.Slice(104, CommitId.Size));
        if (!patched && record.Id != id)
        {
            throw new CommitFormatException(sequence, $"The delta of commit {sequence} names identity {id}, but its content makes {record.Id}.");
        }

        return record.StatingId(id);
    }
}
