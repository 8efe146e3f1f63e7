using CowWasm.Pool.Log;

namespace CowWasm.Pool;

/// <summary>
/// Durability through a <see cref="CommitLog"/>: with a log attached (<see cref="AttachLogAsync"/>, which puts a
/// <see cref="LogListener"/> in the listener list), every commit is durable in it before its write returns. Under the
/// write gate the commit's pages are copied and queued (so records are in commit order); the log's flusher thread encodes
/// them with <see cref="CommitCodec"/>, writes and syncs; the write awaits the sync after the gate is released (so the
/// next write runs meanwhile, and concurrent writers share syncs). A pool started from a snapshot catches up with
/// <see cref="ReplayAsync"/> before the log is attached.
/// </summary>
/// <remarks>
/// Fields here: <c>_log</c> and <c>_logListener</c> are written under the write gate. A log that fails — its write or its
/// fsync — faults the pool: the commit happened in memory but may not be on disk, so no later write may build on it and
/// be acknowledged.
/// </remarks>
public sealed partial class GuestPool
{
    private CommitLog? _log;
    private LogListener? _logListener;
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

            if (log is not null && !ReferenceEquals(log, _log))
            {
                CheckLastLogged(log);
            }

            if (!ReferenceEquals(log, _log))
            {
                if (_logListener is not null)
                {
                    RemoveListenerUnsynchronized(_logListener);
                    _logListener = null;
                }

                if (log is not null)
                {
                    _logListener = new LogListener(this, log);
                    AddListenerUnsynchronized(_logListener);
                }
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
    /// <exception cref="CommitHistoryException">A logged commit follows another state than the pool's (the log is of
    /// another history than the snapshot the pool started from).</exception>
    public async ValueTask<long> ReplayAsync(CommitLog log, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (Log is not null)
        {
            throw new InvalidOperationException("Replay into a pool without a log attached (each replayed commit would be logged again).");
        }

        long applied = 0;
        foreach (CommitLogEntry entry in log.ReadAfter(CommitSequence))
        {
            CommitRecord record = DecodeLogged(entry);
            try
            {
                await ApplyCommitAsync(record, cancellationToken).ConfigureAwait(false);
            }
            catch (CommitHistoryException e)
            {
                throw new CommitHistoryException(e.Sequence, e.Parent, e.Head,
                    $"the commit log {log.Directory} (the log belongs to another history than the state the pool started from)");
            }

            applied++;
        }

        return applied;
    }

    /// <summary>
    /// Decodes a record of a commit log of this pool's module (<see cref="CommitLog.ReadAfter"/>): the commit it holds,
    /// checked against this module and its memory limit, and against the record's sequence.
    /// </summary>
    /// <exception cref="CommitFormatException">The record is damaged, of another module, or holds another commit.</exception>
    public CommitRecord DecodeLogged(CommitLogEntry entry)
    {
        CommitRecord record = CommitCodec.Decode(entry.Payload.Span, ModuleHashBytes, Memory.Pages.ToBytes(_strategy.Options.MaxPageCount),
            fromLog: true);
        return record.Sequence == entry.Sequence
            ? record
            : throw new CommitFormatException(entry.Sequence, $"The log's record {entry.Sequence} holds commit {record.Sequence}.");
    }

    /// <summary>
    /// Under the write gate: when the log still holds the pool's last commit, checks it is the pool's <see cref="Head"/> —
    /// a log that ends at the same sequence through other commits would otherwise be continued as if it were this history.
    /// </summary>
    private void CheckLastLogged(CommitLog log)
    {
        long sequence = _sequence;
        CommitLogEntry entry = sequence == 0 ? default : log.ReadAfter(sequence - 1).FirstOrDefault();
        if (entry.Sequence != sequence || sequence == 0)
        {
            return; // nothing logged, or the commit is covered by a snapshot and its segment deleted
        }

        CommitRecord last = DecodeLogged(entry);
        if (!last.Parent.IsUnknown && last.Id != _committed.Id)
        {
            throw new InvalidOperationException(
                $"The commit log {log.Directory} ends at commit {sequence} of identity {last.Id}, but the pool's commit {sequence} is " +
                $"{_committed.Id}: the log belongs to another history, and continuing it would mix the two.");
        }
    }

    /// <summary>
    /// The commit log in the listener list. Phase 2 queues the commit's record in the log and returns the wait for its
    /// sync. The encoding
    /// go back to the array pool once the log has written them. A failure faults the pool.
    /// </summary>
    private sealed class LogListener(GuestPool pool, CommitLog log) : ICommitListener
    {
        public ValueTask AfterBaseWrite(CommitRecord record)
        {
            // Under the gate only the queueing: the log's flusher thread encodes (no SHA-256: the log checks each record with
            // a CRC-32), checksums and writes in commit order, then returns the rented buffers (bench durability, 2026-12-07).
            byte[] moduleHash = pool.ModuleHashBytes;
            ValueTask synced;
            try
            {
                synced = log.AppendAsync(record.Sequence, () =>
                {
                    (byte[] buffer, int length) = CommitCodec.EncodeRented(record, moduleHash, hash: false);
                    return (buffer.AsMemory(0, length), () => System.Buffers.ArrayPool<byte>.Shared.Return(buffer));
                });
            }
            catch (Exception e)
            {
                throw new IOException($"Commit {record.Sequence} could not be given to the commit log {log.Directory}; the pool stops " +
                                      "rather than acknowledge writes it could lose.", e);
            }

            return synced.IsCompletedSuccessfully ? synced : WhenSyncedAsync(synced);
        }

        private async ValueTask WhenSyncedAsync(ValueTask synced)
        {
            try
            {
                await synced.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                var failure = new IOException("A commit could not be made durable in the commit log; the pool stops rather than " +
                                              "acknowledge writes it could lose.", e);
                pool.Fault(failure);
                throw failure;
            }
        }
    }
}
