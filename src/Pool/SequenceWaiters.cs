namespace CowWasm.Pool;

/// <summary>
/// Tasks waiting for a sequence number to be reached (a commit published, or applied), completed by whoever advances
/// it (<see cref="Release"/>), or failed once the thing advancing it has stopped: what both kinds of
/// <see cref="IReadOnlyPool"/> and the JetStream publisher wait with, instead of polling. Thread-safe.
/// </summary>
/// <param name="reached">The sequence reached now.</param>
/// <param name="stopped">For a waiter of <c>sequence</c> when <c>reached</c> is the sequence reached: the exception that
/// fails it because the source has stopped, or null while the source runs.</param>
public sealed class SequenceWaiters(Func<long> reached, Func<long, long, Exception?> stopped)
{
    private readonly Lock _lock = new();
    private readonly List<(long Sequence, TaskCompletionSource Done)> _waiters = [];

    /// <summary>A task that completes once <paramref name="sequence"/> is reached, or fails once the source stopped before.</summary>
    public Task WaitAsync(long sequence, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _waiters.Add((sequence, done));
        }

        Release();
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Completes the waits the sequence now reached covers, and fails the rest if the source has stopped. Call it
    /// after each advance and when the source stops.</summary>
    public void Release()
    {
        long now = reached();
        lock (_lock)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                (long sequence, TaskCompletionSource done) = _waiters[i];
                if (sequence <= now)
                {
                    done.TrySetResult();
                }
                else if (stopped(sequence, now) is { } failure)
                {
                    done.TrySetException(failure);
                }
                else
                {
                    continue;
                }

                _waiters.RemoveAt(i);
            }
        }
    }
}
