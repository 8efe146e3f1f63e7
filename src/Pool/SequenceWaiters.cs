namespace CowWasm.Pool;

/// <summary>
/// Tasks waiting for a sequence number to be reached (a commit published, or applied), completed by whoever advances
/// it, or failed once the thing advancing it has stopped: what both kinds of <see cref="IReadOnlyPool"/> and the JetStream
/// publisher wait with, instead of polling. Thread-safe.
/// </summary>
public sealed class SequenceWaiters
{
    private readonly Lock _lock = new();
    private readonly List<(long Sequence, TaskCompletionSource Done)> _waiters = [];

    /// <summary>A task that completes once <see cref="Release"/> reports <paramref name="sequence"/> reached.</summary>
    public Task WaitAsync(long sequence, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _waiters.Add((sequence, done));
        }

        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Completes the waits for up to <paramref name="reached"/>; when <paramref name="stopped"/> is given, fails the rest
    /// with the exception it makes for each sequence.
    /// </summary>
    public void Release(long reached, Func<long, Exception>? stopped)
    {
        lock (_lock)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                (long sequence, TaskCompletionSource done) = _waiters[i];
                if (sequence <= reached)
                {
                    done.TrySetResult();
                }
                else if (stopped is not null)
                {
                    done.TrySetException(stopped(sequence));
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
