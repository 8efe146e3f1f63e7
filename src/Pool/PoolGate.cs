namespace CowWasm.Pool;

/// <summary>
/// Readers–writer exclusion for the pool that never blocks a thread: waiting is an awaited
/// <see cref="TaskCompletionSource"/>, and the state lives under one short lock that is never held across an await.
/// </summary>
/// <remarks>
/// <para><b>Fairness:</b> waiters queue in arrival order. A reader is admitted at once when no writer holds the gate
/// and nobody waits; a writer when the room is empty and nobody waits. When the gate frees up, the head of the
/// queue goes first: a writer alone, or every reader up to the next waiting writer together. So no writer starves
/// under a stream of readers, and each reader waits at most for the writers that arrived before it.</para>
/// <para><b>Why not SemaphoreSlims:</b> the previous gate took a semaphore synchronously on exit that an entering
/// reader held across an await; under load thread-pool threads piled up in futex waits while no work item completed
/// (rounds of 100 <c>test(X)</c> stalled for 1.4–19.4 s). Completions here run asynchronously
/// (<see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>), outside the lock.</para>
/// <para><b>Thread-safety:</b> every member; <c>_lock</c> guards all fields. Cancelling a waiter removes it and
/// lets the waiters behind it in if they can go now.</para>
/// </remarks>
internal sealed class PoolGate : IDisposable
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Waiter> _queue = [];
    private int _readers;
    private bool _writer;

    /// <summary>Readers inside (for tests and invariants).</summary>
    public int Readers
    {
        get
        {
            lock (_lock)
            {
                return _readers;
            }
        }
    }

    public ValueTask EnterReadAsync(CancellationToken cancellationToken) => EnterAsync(isWriter: false, cancellationToken);

    public ValueTask EnterWriteAsync(CancellationToken cancellationToken) => EnterAsync(isWriter: true, cancellationToken);

    public void ExitRead()
    {
        List<Waiter>? admitted;
        lock (_lock)
        {
            if (_readers <= 0)
            {
                throw new InvalidOperationException("ExitRead without a reader inside the gate.");
            }

            _readers--;
            admitted = AdmitUnsynchronized();
        }

        Complete(admitted);
    }

    public void ExitWrite()
    {
        List<Waiter>? admitted;
        lock (_lock)
        {
            if (!_writer)
            {
                throw new InvalidOperationException("ExitWrite without a writer inside the gate.");
            }

            _writer = false;
            admitted = AdmitUnsynchronized();
        }

        Complete(admitted);
    }

    private ValueTask EnterAsync(bool isWriter, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Waiter waiter;
        lock (_lock)
        {
            if (_queue.Count == 0 && !_writer && (!isWriter || _readers == 0))
            {
                if (isWriter)
                {
                    _writer = true;
                }
                else
                {
                    _readers++;
                }

                return ValueTask.CompletedTask; // the uncontended path allocates nothing
            }

            waiter = new Waiter(isWriter);
            waiter.Node = _queue.AddLast(waiter);
        }

        if (cancellationToken.CanBeCanceled)
        {
            waiter.Registration = cancellationToken.UnsafeRegister(static (state, token) =>
            {
                (PoolGate gate, Waiter w) = ((PoolGate, Waiter))state!;
                gate.Cancel(w, token);
            }, (this, waiter));
        }

        return new ValueTask(waiter.Completion.Task);
    }

    private void Cancel(Waiter waiter, CancellationToken token)
    {
        List<Waiter>? admitted;
        lock (_lock)
        {
            if (waiter.Node is null)
            {
                return; // already admitted: the caller owns the gate now and exits it as usual
            }

            _queue.Remove(waiter.Node);
            waiter.Node = null;
            admitted = AdmitUnsynchronized(); // a cancelled writer at the head may have held readers back
        }

        waiter.Completion.TrySetCanceled(token);
        Complete(admitted);
    }

    /// <summary>Admits the head of the queue while it can go: a writer into an empty room, or readers while no writer is in.</summary>
    private List<Waiter>? AdmitUnsynchronized()
    {
        List<Waiter>? admitted = null;
        while (_queue.First is { } head && !_writer)
        {
            Waiter next = head.Value;
            if (next.IsWriter)
            {
                if (_readers != 0)
                {
                    break;
                }

                _writer = true;
            }
            else
            {
                _readers++;
            }

            _queue.RemoveFirst();
            next.Node = null;
            (admitted ??= []).Add(next);
        }

        return admitted;
    }

    private static void Complete(List<Waiter>? admitted)
    {
        if (admitted is null)
        {
            return;
        }

        foreach (Waiter waiter in admitted)
        {
            waiter.Registration.Unregister(); // does not wait for a running callback (which finds the waiter admitted)
            waiter.Completion.TrySetResult();
        }
    }

    public void Dispose()
    {
        // Nothing to free: waiters are tasks. Disposal of the pool cancels its waiters through their tokens.
    }

    private sealed class Waiter(bool isWriter)
    {
        public bool IsWriter { get; } = isWriter;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public LinkedListNode<Waiter>? Node { get; set; }

        public CancellationTokenRegistration Registration { get; set; }
    }
}
