using CowWasm.Memory.Sharing;

namespace CowWasm.Pool;

/// <summary>
/// Serving the committed state to follower processes on this host: the hub (<see cref="FollowerHub"/>) in the listener
/// list. <c>_hub</c> and <c>_hubListener</c> change under the write gate and <c>_hubLock</c> (disposal reads them under
/// the lock).
/// </summary>
public sealed partial class GuestPool
{
    /// <summary>
    /// Serves the committed state to follower processes on this host (<see cref="FollowerPool.Connect"/>) through a Unix
    /// socket at <paramref name="socketPath"/>: they map the base this pool commits into, and each commit reaches them by
    /// its dirty runs and globals (docs/followers.md). One hub per pool; it is disposed with the pool.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pool already serves followers.</exception>
    /// <remarks>Waits for transactions in flight: a pool loaded from a snapshot first copies it into a memfd (the file
    /// cannot be shared), which remaps the replicas.</remarks>
    public async ValueTask<FollowerHub> ServeFollowersAsync(string socketPath, FollowerHubOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        await EnterWriteAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfFaulted();
            lock (_hubLock)
            {
                if (_hub is { IsDisposed: false })
                {
                    throw new InvalidOperationException("The pool already serves followers; dispose its hub first.");
                }

                if (_hubListener is not null)
                {
                    RemoveListenerUnsynchronized(_hubListener); // the last hub was disposed by its owner
                }

                // Followers get the globals, and whether the tables are as instantiated (else they cannot follow).
                var hub = new FollowerHub(_strategy, socketPath, PoolSnapshot.ModuleHashOf(_module),
                    FollowerPool.EncodeState(_committed.Tables.Equals(_instantiatedTables), _committed.Globals), options,
                    sequence: _sequence); // the hub counts the pool's commits: followers report CommitSequence
                _hubListener = new HubListener(hub);
                AddListenerUnsynchronized(_hubListener);
                _hub = hub;
                return hub;
            }
        }
        finally
        {
            _gate.ExitWrite();
        }
    }

    /// <summary>Synchronous form of <see cref="ServeFollowersAsync"/>.</summary>
    public FollowerHub ServeFollowers(string socketPath, FollowerHubOptions? options = null) =>
        ServeFollowersAsync(socketPath, options).AsTask().GetAwaiter().GetResult();
}
