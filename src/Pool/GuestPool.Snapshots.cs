using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// Snapshots of the committed state: saving one (<see cref="SaveSnapshotAsync"/>) holds writes off while it writes the
/// file; loading is <see cref="CreateFromSnapshot"/>. Beside the transactions, through the gate like a write.
/// </summary>
public sealed partial class GuestPool
{
    /// <summary>
    /// Saves the committed state (pages, memory length, globals, commit sequence, module identity) to <paramref name="path"/>,
    /// atomically (temp file, fsync, rename). Waits for transactions in flight and holds new ones off while it writes.
    /// </summary>
    /// <exception cref="NotSupportedException">Committed writes changed the tables (see <see cref="TableState"/>).</exception>
    /// <returns>The <see cref="CommitSequence"/> of the saved state.</returns>
    public async ValueTask<long> SaveSnapshotAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] moduleHash = PoolSnapshot.ModuleHashOf(_module);
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);

        try
        {
            if (!_committed.Tables.Equals(_instantiatedTables))
            {
                // Table elements are native function addresses, valid only in this process, and a pool started from a
                // snapshot gets the tables instantiation makes: saving would lose the committed table changes.
                throw new NotSupportedException(
                    "A committed write changed the guest's tables or dropped a segment (table.set/grow/fill/copy/init, " +
                    "data.drop, elem.drop); a snapshot holds memory and globals only, so it cannot hold this state.");
            }

            PoolSnapshot.Save(path, _strategy.Base, _strategy.CommittedPageCount, moduleHash, _committed.Globals, _sequence, _committed.Id);
            return _sequence;
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

    /// <summary>Synchronous form of <see cref="SaveSnapshotAsync"/>.</summary>
    public long SaveSnapshot(string path) => SaveSnapshotAsync(path).AsTask().GetAwaiter().GetResult();
}
