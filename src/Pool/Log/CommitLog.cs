using System.Buffers.Binary;
using System.IO.Hashing;
using CowWasm.Memory;
using CowWasm.Memory.IO;
using CowWasm.Runtime;
using Microsoft.Win32.SafeHandles;

namespace CowWasm.Pool.Log;

/// <summary>
/// A write-ahead log of commits: append-only segment files of checksummed records in one directory, made durable with
/// group commit (appenders waiting at the same time share one fsync), read back in order at start-up, and dropped a
/// segment at a time once a snapshot covers them. It stores each commit's bytes as given; what they mean is the
/// commit codec's business.
/// </summary>
/// <remarks>
/// <para><b>Files.</b> <c>{first sequence:D20}.cwlog</c>, mode 0600, each starting with a 64-byte header:</para>
/// <code>
///  offset size  field
///   0      8    magic "CWLOG\r\n\x1a"
///   8      4    format version (1)
///  12      4    0
///  16      8    the sequence of the segment's first record
///  24     32    identity: whose commits these are (a pool's module hash); another identity is refused
///  56      4    CRC-32 of bytes 0..55
///  60      4    0
/// </code>
/// <para>then records, back to back:</para>
/// <code>
///  offset size  field
///   0      4    payload length n (at most MaxRecordBytes: checked before anything is allocated)
///   4      4    CRC-32 of bytes 8..16+n (sequence and payload)
///   8      8    sequence (each record's is the previous one's + 1, across segments)
///  16      n    payload
/// </code>
/// <para><b>Recovery</b> (<see cref="Open"/>): every record of every segment is checked. A damaged <i>last</i> record
/// of the last segment — cut short, or checksummed wrong and reaching the end of the file, or followed only by zeros —
/// is what a crash in the middle of an append leaves: it was never acknowledged, so it is cut off and reported through
/// the <c>tornTail</c> callback. Any other damage, a gap in the sequence, or another identity stops with a
/// <see cref="CommitLogFormatException"/> naming the file and offset: a commit is never skipped silently.</para>
/// <para><b>Durability.</b> An append completes when its record and all before it are on disk. Appends are queued in
/// sequence order; one flusher thread takes every append waiting, makes and writes their records in order, runs one
/// fdatasync for the batch and releases its waiters (group commit); appends made meanwhile form the next batch. So the
/// caller's ordering lock (a pool's write gate) covers only the queueing, no sync holds a thread-pool thread, and
/// segments are preallocated, so an append allocates no blocks.</para>
/// <para><b>Thread-safety:</b> appends, reads and truncation may come from any threads; appends are ordered by
/// sequence, so callers append under their own commit order (a pool's write gate).</para>
/// </remarks>
public sealed class CommitLog : IDisposable
{
    /// <summary>The largest payload a record may carry (256 MiB).</summary>
    public const int MaxRecordBytes = 256 << 20;

    /// <summary>A segment is closed and a new one started once it holds this many bytes (default).</summary>
    public const long DefaultSegmentBytes = 64L << 20;

    private const int HeaderBytes = 64, RecordHeaderBytes = 16, Version = 1;
    private const string Extension = ".cwlog";
    private static ReadOnlySpan<byte> Magic => "CWLOG\r\n\x1a"u8;

    // _lock guards _queue, _flushFailure, _segments, _last and _disposed. _handle and _writeOffset belong to the flusher
    // thread (a roll swaps them under _lock too; Dispose touches them only after the flusher ended).
    private readonly Lock _lock = new();
    private List<Pending> _queue = []; // appends not yet written, in sequence order (the flusher takes them in batches)
    private readonly AutoResetEvent _flushWanted = new(false);
    private readonly Thread _flusher;
    private Exception? _flushFailure;
    private readonly FileStream _owner; // the directory's lock file, held exclusively while the log is open
    private readonly byte[] _identity;
    private readonly long _segmentBytes;
    private readonly List<(long First, string Path)> _segments;
    private SafeFileHandle _handle;
    private long _writeOffset;
    private long _last;
    private long _flushes;
    private bool _disposed;

    private CommitLog(string directory, FileStream owner, byte[] identity, long segmentBytes, List<(long First, string Path)> segments,
        SafeFileHandle handle, long writeOffset, long last)
    {
        Directory = directory;
        _owner = owner;
        _identity = identity;
        _segmentBytes = segmentBytes;
        _segments = segments;
        _handle = handle;
        _writeOffset = writeOffset;
        _last = last;
        _flusher = new Thread(FlushLoop) { IsBackground = true, Name = "CowWasm commit log flusher" };
        _flusher.Start();
    }

    /// <summary>The log's directory.</summary>
    public string Directory { get; }

    /// <summary>The sequence of the last record appended (or found at <see cref="Open"/>); the first record follows it.</summary>
    public long LastSequence
    {
        get
        {
            lock (_lock)
            {
                return _last;
            }
        }
    }

    /// <summary>How many fsyncs appends have cost (fewer than appends when they overlap: group commit).</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>
    /// Opens the log in <paramref name="directory"/> (created 0700 if missing) for commits of <paramref name="identity"/>,
    /// checking every record; a log without segments starts after <paramref name="emptyAfter"/>.
    /// </summary>
    /// <param name="directory">Where the segments are.</param>
    /// <param name="identity">32 bytes naming whose commits these are (a module hash).</param>
    /// <param name="emptyAfter">The sequence the first record will follow when there are no segments yet.</param>
    /// <param name="tornTail">Told the file, offset and reason when a torn last record is cut off.</param>
    /// <param name="segmentBytes">When to start a new segment.</param>
    /// <exception cref="CommitLogFormatException">Damage other than a torn tail, a sequence gap, or another identity.</exception>
    public static CommitLog Open(string directory, ReadOnlySpan<byte> identity, long emptyAfter = 0,
        Action<string, long, string>? tornTail = null, long segmentBytes = DefaultSegmentBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (identity.Length != 32)
        {
            throw new ArgumentException("The identity is 32 bytes (a SHA-256).", nameof(identity));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(segmentBytes, HeaderBytes + RecordHeaderBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(emptyAfter);
        directory = System.IO.Path.GetFullPath(directory);
        PrivateDirectory.Create(directory);
        FileStream owner = TakeDirectory(directory);
        try
        {
            return OpenOwned(directory, owner, identity.ToArray(), emptyAfter, tornTail, segmentBytes);
        }
        catch
        {
            owner.Dispose();
            throw;
        }
    }

    /// <summary>One process appends to a log at a time: an exclusive lock on <c>LOCK</c> in its directory.</summary>
    private static FileStream TakeDirectory(string directory)
    {
        string path = System.IO.Path.Combine(directory, "LOCK");
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"The commit log in {directory} is open elsewhere (its LOCK file is held); one process writes a log at a time.", e);
        }
    }

    private static CommitLog OpenOwned(string directory, FileStream owner, byte[] id, long emptyAfter,
        Action<string, long, string>? tornTail, long segmentBytes)
    {
        var segments = System.IO.Directory.GetFiles(directory, "*" + Extension)
            .Select(path => (First: ParseName(path), Path: path))
            .OrderBy(s => s.First)
            .ToList();
        long last = emptyAfter;
        long writeOffset = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            bool isLast = i == segments.Count - 1;
            (long first, string path) = segments[i];
            if (i > 0 && first != last + 1)
            {
                throw new CommitLogFormatException(path, 0, $"it starts at commit {first} but the segment before ends at {last}");
            }

            (last, writeOffset) = Scan(path, first, id, isLast, tornTail);
        }

        SafeFileHandle handle;
        if (segments.Count == 0)
        {
            (handle, string path) = CreateSegment(directory, last + 1, id, segmentBytes);
            segments.Add((last + 1, path));
            writeOffset = HeaderBytes;
        }
        else
        {
            handle = File.OpenHandle(segments[^1].Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        }

        return new CommitLog(directory, owner, id, segmentBytes, segments, handle, writeOffset, last);
    }

    /// <summary>An append waiting for the flusher: what to write, and whom to tell once it is durable.</summary>
    private sealed record Pending(long Sequence, Func<(ReadOnlyMemory<byte> Payload, Action? Written)> Produce, TaskCompletionSource Done);

    /// <summary>
    /// Appends commit <paramref name="sequence"/> (the one after <see cref="LastSequence"/>) and completes once it is
    /// durable. <paramref name="payload"/> must stay unchanged until then.
    /// </summary>
    /// <exception cref="ArgumentException">The sequence does not follow the last one, or the payload is too large.</exception>
    public ValueTask AppendAsync(long sequence, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        if (payload.Length > MaxRecordBytes)
        {
            throw new ArgumentException($"A record carries at most {MaxRecordBytes} bytes; this one has {payload.Length}.", nameof(payload));
        }

        return AppendAsync(sequence, () => (payload, null), cancellationToken);
    }

    /// <summary>
    /// Appends commit <paramref name="sequence"/>, whose bytes <paramref name="produce"/> makes on the log's flusher thread
    /// (in sequence order, so the caller's ordering lock need not cover encoding, checksumming or writing); the action it
    /// returns, if any, runs once the bytes are written (to return a rented buffer). Completes once the record is durable.
    /// </summary>
    /// <exception cref="ArgumentException">The sequence does not follow the last one.</exception>
    /// <exception cref="IOException">The log failed earlier and takes no more commits.</exception>
    public async ValueTask AppendAsync(long sequence, Func<(ReadOnlyMemory<byte> Payload, Action? Written)> produce,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(produce);
        TaskCompletionSource durable = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_flushFailure is { } failure)
            {
                throw new IOException($"The commit log {Directory} failed earlier; it takes no more commits.", failure);
            }

            if (sequence != _last + 1)
            {
                throw new ArgumentException($"The log holds commits up to {_last}; the next is {_last + 1}, not {sequence}.", nameof(sequence));
            }

            _last = sequence;
            _queue.Add(new Pending(sequence, produce, durable));
        }

        _flushWanted.Set();
        using (cancellationToken.Register(static d => ((TaskCompletionSource)d!).TrySetCanceled(), durable))
        {
            await durable.Task.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The flusher thread: takes every append waiting, writes them in order (making their bytes here: encoding and
    /// CRC-32 off the appenders' path), then one fdatasync for the batch, then releases its waiters (group commit).
    /// A dedicated thread, so a sync never holds a thread-pool thread.
    /// </summary>
    private void FlushLoop()
    {
        while (true)
        {
            _flushWanted.WaitOne();
            List<Pending> batch;
            lock (_lock)
            {
                if (_queue.Count == 0)
                {
                    if (_disposed)
                    {
                        return;
                    }

                    continue;
                }

                batch = _queue;
                _queue = [];
            }

            Exception? failure = null;
            try
            {
                foreach (Pending pending in batch)
                {
                    (ReadOnlyMemory<byte> payload, Action? written) = pending.Produce();
                    try
                    {
                        WriteRecord(pending.Sequence, payload);
                    }
                    finally
                    {
                        written?.Invoke();
                    }
                }

                AtomicFile.SyncData(_handle);
                Interlocked.Increment(ref _flushes);
            }
            catch (Exception e)
            {
                failure = e;
            }

            List<Pending> failed = [];
            lock (_lock)
            {
                if (failure is not null)
                {
                    _flushFailure ??= failure;
                    failed = _queue; // nothing after a failed write may be acknowledged
                    _queue = [];
                }

                if (_queue.Count > 0 || _disposed)
                {
                    _flushWanted.Set(); // appended while we wrote: go again (or, disposing, end at the top)
                }
            }

            foreach (Pending pending in batch.Concat(failed))
            {
                if (failure is null)
                {
                    pending.Done.TrySetResult();
                }
                else
                {
                    pending.Done.TrySetException(new IOException($"The commit log {Directory} could not write or sync commit {pending.Sequence}.", failure));
                }
            }
        }
    }

    /// <summary>On the flusher thread: one record at the end of the current segment, rolling to a new one when full.</summary>
    private void WriteRecord(long sequence, ReadOnlyMemory<byte> payload)
    {
        if (payload.Length > MaxRecordBytes)
        {
            throw new ArgumentException($"A record carries at most {MaxRecordBytes} bytes; commit {sequence} has {payload.Length}.");
        }

        // Header and payload are written together (pwritev), the payload never copied: a commit's pages are large
        // enough to land on the large-object heap, and a copy per commit cost the write path dearly (bench durability).
        byte[] header = RecordHeader(sequence, payload.Span);
        long recordLength = RecordHeaderBytes + (long)payload.Length;
        if (_writeOffset + recordLength > _segmentBytes && _writeOffset > HeaderBytes)
        {
            lock (_lock)
            {
                RollUnsynchronized(sequence);
            }
        }

        RandomAccess.Write(_handle, [header, payload], _writeOffset);
        _writeOffset += recordLength;
    }

    /// <summary>Every record after <paramref name="afterSequence"/>, in order (checked when the log was opened).</summary>
    public IEnumerable<CommitLogEntry> ReadAfter(long afterSequence)
    {
        List<(long First, string Path)> segments;
        long last;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            segments = [.. _segments];
            last = _last;
        }

        for (int i = 0; i < segments.Count; i++)
        {
            long next = i + 1 < segments.Count ? segments[i + 1].First : last + 1;
            if (next <= afterSequence + 1)
            {
                continue; // every record of this segment is at or before afterSequence
            }

            foreach (CommitLogEntry entry in ReadSegment(segments[i].Path, last))
            {
                if (entry.Sequence > afterSequence)
                {
                    yield return entry;
                }
            }
        }
    }

    /// <summary>
    /// Deletes the segments whose every record is at or before <paramref name="sequence"/> (a snapshot covers them);
    /// the segment being appended to stays. Returns how many were deleted.
    /// </summary>
    public int DeleteThrough(long sequence)
    {
        var doomed = new List<string>();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            while (_segments.Count > 1 && _segments[1].First <= sequence + 1)
            {
                doomed.Add(_segments[0].Path);
                _segments.RemoveAt(0);
            }
        }

        foreach (string path in doomed)
        {
            File.Delete(path);
        }

        if (doomed.Count > 0)
        {
            AtomicFile.SyncDirectory(Directory);
        }

        return doomed.Count;
    }

    /// <summary>Closes the current segment. Records appended are already durable; nothing else is written.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _flushWanted.Set();
        _flusher.Join(); // it syncs what is waiting, then ends
        lock (_lock)
        {
            foreach (Pending pending in _queue)
            {
                pending.Done.TrySetException(new ObjectDisposedException(nameof(CommitLog)));
            }

            _queue.Clear();
            _handle.Dispose();
            _owner.Dispose();
        }

        _flushWanted.Dispose();
    }

    private void RollUnsynchronized(long firstSequence)
    {
        AtomicFile.SyncData(_handle); // the closed segment is whole on disk before any record follows it
        (SafeFileHandle handle, string path) = CreateSegment(Directory, firstSequence, _identity, _segmentBytes);
        _handle.Dispose();
        _handle = handle;
        _segments.Add((firstSequence, path));
        _writeOffset = HeaderBytes;
    }

    private static (SafeFileHandle Handle, string Path) CreateSegment(string directory, long first, byte[] identity, long preallocate = 0)
    {
        string path = System.IO.Path.Combine(directory, first.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + Extension);
        // Blocks allocated up front (the length stays what is written): an append then allocates nothing.
        SafeFileHandle handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, FileOptions.None,
            preallocationSize: preallocate);
        try
        {
            if (OperatingSystem.IsLinux())
            {
                File.SetUnixFileMode(handle, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            Span<byte> header = stackalloc byte[HeaderBytes];
            header.Clear();
            Magic.CopyTo(header);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], Version);
            BinaryPrimitives.WriteInt64LittleEndian(header[16..], first);
            identity.CopyTo(header[24..56]);
            BinaryPrimitives.WriteUInt32LittleEndian(header[56..], Crc32.HashToUInt32(header[..56]));
            RandomAccess.Write(handle, header, 0);
            RandomAccess.FlushToDisk(handle);
            AtomicFile.SyncDirectory(directory);
            return (handle, path);
        }
        catch
        {
            handle.Dispose();
            File.Delete(path);
            throw;
        }
    }

    /// <summary>A record's 16-byte header: payload length, CRC-32 of (sequence, payload), sequence.</summary>
    private static byte[] RecordHeader(long sequence, ReadOnlySpan<byte> payload)
    {
        byte[] header = new byte[RecordHeaderBytes];
        BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), sequence);
        var crc = new Crc32();
        crc.Append(header.AsSpan(8));
        crc.Append(payload);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), crc.GetCurrentHashAsUInt32());
        return header;
    }

    private static long ParseName(string path)
    {
        string name = System.IO.Path.GetFileNameWithoutExtension(path);
        return name.Length == 20 && long.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long first)
            ? first
            : throw new CommitLogFormatException(path, 0, "its name is not a 20-digit first sequence");
    }

    /// <summary>Checks a segment; returns its last sequence and the offset after its last good record (a torn tail cut).</summary>
    private static (long Last, long End) Scan(string path, long first, byte[] identity, bool isLast, Action<string, long, string>? tornTail)
    {
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, isLast ? FileAccess.ReadWrite : FileAccess.Read, FileShare.Read);
        long length = RandomAccess.GetLength(handle);
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (length < HeaderBytes || RandomAccess.Read(handle, header, 0) != HeaderBytes)
        {
            throw new CommitLogFormatException(path, 0, $"it has {length} bytes, less than the {HeaderBytes}-byte header");
        }

        if (!header[..8].SequenceEqual(Magic) || BinaryPrimitives.ReadUInt32LittleEndian(header[56..]) != Crc32.HashToUInt32(header[..56]))
        {
            throw new CommitLogFormatException(path, 0, "its header is not a commit log segment's (magic or checksum)");
        }

        if (BinaryPrimitives.ReadInt32LittleEndian(header[8..]) != Version)
        {
            throw new CommitLogFormatException(path, 8, $"format version {BinaryPrimitives.ReadInt32LittleEndian(header[8..])}, not {Version}");
        }

        if (BinaryPrimitives.ReadInt64LittleEndian(header[16..]) != first)
        {
            throw new CommitLogFormatException(path, 16, "its header's first sequence differs from its name");
        }

        if (!header[24..56].SequenceEqual(identity))
        {
            throw new CommitLogFormatException(path, 24, "it holds another module's commits (identity differs)");
        }

        long offset = HeaderBytes, expected = first;
        byte[] buffer = new byte[64 * 1024];
        while (offset < length)
        {
            string? damage = ReadRecord(handle, offset, length, expected, ref buffer, out int payloadLength);
            if (damage is null)
            {
                offset += RecordHeaderBytes + payloadLength;
                expected++;
                continue;
            }

            long recordEnd = offset + RecordHeaderBytes + (long)payloadLength;
            bool torn = isLast && (length - offset < RecordHeaderBytes || recordEnd >= length || ZerosFrom(handle, offset, length));
            if (!torn)
            {
                throw new CommitLogFormatException(path, offset, damage);
            }

            RandomAccess.SetLength(handle, offset);
            RandomAccess.FlushToDisk(handle);
            tornTail?.Invoke(path, offset, damage);
            break;
        }

        return (expected - 1, offset);
    }

    /// <summary>Checks the record at <paramref name="offset"/>; null when it is sound, else what is wrong.</summary>
    private static string? ReadRecord(SafeFileHandle handle, long offset, long length, long expected, ref byte[] buffer, out int payloadLength)
    {
        payloadLength = 0;
        if (length - offset < RecordHeaderBytes)
        {
            return $"{length - offset} bytes left, less than a record header";
        }

        Span<byte> head = stackalloc byte[RecordHeaderBytes];
        RandomAccess.Read(handle, head, offset);
        payloadLength = BinaryPrimitives.ReadInt32LittleEndian(head);
        if (payloadLength < 0 || payloadLength > MaxRecordBytes || offset + RecordHeaderBytes + payloadLength > length)
        {
            int claimed = payloadLength;
            payloadLength = Math.Clamp(payloadLength, 0, MaxRecordBytes);
            return $"a record claims {claimed} payload bytes; {length - offset - RecordHeaderBytes} remain";
        }

        if (buffer.Length < 8 + payloadLength)
        {
            buffer = new byte[Math.Max(8 + payloadLength, buffer.Length * 2)];
        }

        head[8..].CopyTo(buffer);
        if (RandomAccess.Read(handle, buffer.AsSpan(8, payloadLength), offset + RecordHeaderBytes) != payloadLength)
        {
            return "the file ended inside a record";
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(head[4..]) != Crc32.HashToUInt32(buffer.AsSpan(0, 8 + payloadLength)))
        {
            return "a record's checksum does not match";
        }

        long sequence = BinaryPrimitives.ReadInt64LittleEndian(head[8..]);
        return sequence == expected ? null : $"commit {sequence} where {expected} should follow";
    }

    private static bool ZerosFrom(SafeFileHandle handle, long offset, long length)
    {
        byte[] buffer = new byte[64 * 1024];
        for (long at = offset; at < length;)
        {
            int read = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - at)), at);
            if (read == 0 || buffer.AsSpan(0, read).ContainsAnyExcept((byte)0))
            {
                return read == 0;
            }

            at += read;
        }

        return true;
    }

    private static IEnumerable<CommitLogEntry> ReadSegment(string path, long last)
    {
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long length = RandomAccess.GetLength(handle);
        long offset = HeaderBytes;
        byte[] head = new byte[RecordHeaderBytes];
        while (offset + RecordHeaderBytes <= length)
        {
            RandomAccess.Read(handle, head, offset);
            int n = BinaryPrimitives.ReadInt32LittleEndian(head);
            long sequence = BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(8));
            if (sequence > last || n < 0 || offset + RecordHeaderBytes + n > length)
            {
                yield break; // past what this log holds (an append still being written)
            }

            byte[] payload = new byte[n];
            RandomAccess.Read(handle, payload, offset + RecordHeaderBytes);
            yield return new CommitLogEntry(sequence, payload);
            offset += RecordHeaderBytes + n;
        }
    }
}
