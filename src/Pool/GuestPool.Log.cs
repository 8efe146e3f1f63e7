using CowWasm.Pool.Log;

namespace CowWasm.Pool;

/// <summary>
/// Durability through a <see cref="CommitLog"/>: with a log attached (<see cref="AttachLogAsync"/>), every commit is
/// durable in it before its write returns. Under the write gate the commit's pages are copied and queued (so records are
/// in commit order); the log's flusher thread encodes them with <see cref="CommitCodec"/>, writes and syncs; the write
/// awaits the sync after the gate is released (so the next write runs meanwhile, and concurrent writers share syncs). A
/// pool started from a snapshot catches up with <see cref="ReplayAsync"/> before the log is attached.
/// </summary>
/// <remarks>
/// Fields here: <c>_log</c> and <c>_durable</c> are read and written under the write gate only (<c>_durable</c> carries
/// one commit's fsync from the commit to its own write, which awaits it after leaving the gate). A log that fails — its
/// write or its fsync — faults the pool: the commit happened in memory but may not be on disk, so no later write may
/// build on it and be acknowledged.
/// </remarks>
public sealed partial class GuestPool
{
    private CommitLog? _log;
    private ValueTask _durable;
    private byte[]? _moduleHashBytes;

    /// <summary>The module's SHA-256, which every logged commit names.</summary>
    private byte[] ModuleHashBytes => _moduleHashBytes ??= PoolSnapshot.ModuleHashOf(_module);

    /// <summary>The attached commit log, if any.</summary>
    public CommitLog? Log => Volatile.Read(ref _log);

    /// <summary>
    /// Attaches <paramref name="log"/> (or detaches the current one: null): every later commit is durable in it before
    /// its write returns. The log must hold exactly the commits this pool has made (its
    /// <see cref="CommitLog.LastSequence"/> equals <see cref="CommitSequence"/>): replay it first. Waits for
    /// transactions in flight. The caller keeps the log and disposes it after the pool.
    /// </summary>
    /// <exception cref="InvalidOperationException">The log ends at another commit than the pool's, or another log is attached.</exception>
    public async ValueTask AttachLogAsync(CommitLog? log, CancellationToken cancellationToken = default)
    {
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfFaulted();
            if (log is not null && _log is not null && !ReferenceEquals(log, _log))
            {
                throw new InvalidOperationException("The pool already has a commit log; detach it first.");
            }

            if (log is not null && log.LastSequence != _sequence)
            {
                throw new InvalidOperationException(
                    $"The commit log {log.Directory} ends at commit {log.LastSequence}, the pool is at {_sequence}: " +
                    (log.LastSequence > _sequence ? "replay it first (ReplayAsync)." : "it is missing commits this pool made."));
            }

            Volatile.Write(ref _log, log);
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

    /// <summary>
    /// Applies every commit <paramref name="log"/> holds after <see cref="CommitSequence"/>, in order (start-up: the
    /// newest snapshot, then the log). Returns how many. Call it before <see cref="AttachLogAsync"/>.
    /// </summary>
    /// <exception cref="CommitFormatException">A record is damaged or of another module.</exception>
    /// <exception cref="InvalidOperationException">A log is attached, or the log skips a commit after the pool's.</exception>
    public async ValueTask<long> ReplayAsync(CommitLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (Log is not null)
        {
            throw new InvalidOperationException("Replay into a pool without a log attached (each replayed commit would be logged again).");
        }

        byte[] moduleHash = ModuleHashBytes;
        long maxBytes = Memory.Pages.ToBytes(_strategy.Options.MaxPageCount);
        long applied = 0;
        foreach (CommitLogEntry entry in log.ReadAfter(CommitSequence))
        {
            CommitRecord record = CommitCodec.Decode(entry.Payload.Span, moduleHash, maxBytes, allowUnhashed: true);
            if (record.Sequence != entry.Sequence)
            {
                throw new CommitFormatException(entry.Sequence, $"The log's record {entry.Sequence} holds commit {record.Sequence}.");
            }

            await ApplyCommitAsync(record, cancellationToken).ConfigureAwait(false);
            applied++;
        }

        return applied;
    }

    /// <summary>
    /// Under the write gate, after a commit: queues its record in the log, keeping the wait for its sync. The pages (rented
    /// when nothing else keeps the record) and the encoding go back to the array pool once the log has written them.
    /// </summary>
    private void AppendToLogUnsynchronized(CommitRecord? record, bool rentedPages)
    {
        if (_log is not { } log)
        {
            return; // pages are rented only when the log is the record's only taker, so none are here
        }

        // Under the gate only the queueing: the log's flusher thread encodes (no SHA-256: the log checks each record with
        // a CRC-32), checksums and writes in commit order, then returns the rented buffers (bench durability, 2026-12-07).
        byte[] moduleHash = ModuleHashBytes;
        CommitRecord committed = record!;
        try
        {
            _durable = log.AppendAsync(committed.Sequence, () =>
            {
                (byte[] buffer, int length) = CommitCodec.EncodeRented(committed, moduleHash, hash: false);
                return (buffer.AsMemory(0, length), () =>
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                    ReturnRentedPages(committed, rentedPages);
                });
            });
        }
        catch (Exception e)
        {
            ReturnRentedPages(committed, rentedPages);
            Fault(new IOException($"Commit {committed.Sequence} could not be given to the commit log {log.Directory}; the pool stops " +
                                  "rather than acknowledge writes it could lose.", e));
            throw;
        }
    }

    private static void ReturnRentedPages(CommitRecord record, bool rented)
    {
        if (rented && System.Runtime.InteropServices.MemoryMarshal.TryGetArray(record.Pages, out ArraySegment<byte> pages))
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(pages.Array!);
        }
    }

    /// <summary>Under the write gate: the fsync the commit just made waits for (completed without a log).</summary>
    private ValueTask TakeDurableUnsynchronized()
    {
        ValueTask durable = _durable;
        _durable = default;
        return durable;
    }

    /// <summary>After the gate: waits for the commit's fsync; a failure faults the pool.</summary>
    private async ValueTask WhenDurableAsync(ValueTask durable)
    {
        if (durable.IsCompletedSuccessfully)
        {
            return;
        }

        try
        {
            await durable.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var failure = new IOException("A commit could not be made durable in the commit log; the pool stops rather than " +
                                          "acknowledge writes it could lose.", e);
            Fault(failure);
            throw failure;
        }
    }
}
