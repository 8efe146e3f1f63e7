using CowWasm.Runtime;

namespace CowWasm.Pool;

/// <summary>
/// Ties a running transaction to its caller's token and the pool's timeout: either interrupts the guest
/// (<see cref="IGuestInstance.Interrupt"/>), so a guest that never returns is stopped at its next function entry or loop
/// back-edge. Disposing it withdraws the request after the callbacks can no longer run, so nothing leaks into the
/// instance's next transaction.
/// </summary>
internal sealed class RunningGuest : IDisposable
{
    private readonly IGuestInstance _instance;
    private readonly CancellationToken _caller;
    private readonly CancellationTokenSource? _timer;
    private readonly TimeSpan _timeout;
    private CancellationTokenRegistration _callerRegistration;
    private CancellationTokenRegistration _timerRegistration;

    private RunningGuest(IGuestInstance instance, CancellationToken caller, TimeSpan timeout)
    {
        _instance = instance;
        _caller = caller;
        _timeout = timeout;
        if (caller.CanBeCanceled)
        {
            _callerRegistration = caller.UnsafeRegister(static s => ((IGuestInstance)s!).Interrupt(), instance);
        }

        if (timeout != Timeout.InfiniteTimeSpan)
        {
            _timer = new CancellationTokenSource(timeout);
            _timerRegistration = _timer.Token.UnsafeRegister(static s => ((IGuestInstance)s!).Interrupt(), instance);
        }
    }

    /// <summary>Starts watching; <paramref name="timeout"/> may be <see cref="Timeout.InfiniteTimeSpan"/>.</summary>
    public static RunningGuest Start(IGuestInstance instance, CancellationToken caller, TimeSpan timeout) => new(instance, caller, timeout);

    /// <summary>
    /// What an interruption trap becomes for the caller: <see cref="OperationCanceledException"/> when their token was
    /// cancelled, <see cref="TimeoutException"/> when the timeout fired; null for other exceptions and for an
    /// interruption someone else requested.
    /// </summary>
    public Exception? Translate(Exception e)
    {
        if (e is not WasmTrapException { Kind: TrapKind.Interrupted } trap)
        {
            return null;
        }

        if (_caller.IsCancellationRequested)
        {
            return new OperationCanceledException("The transaction was cancelled; the guest was interrupted.", trap, _caller);
        }

        return _timer is { IsCancellationRequested: true }
            ? new TimeoutException($"The transaction ran past its {_timeout.TotalMilliseconds:0.#} ms timeout; the guest was interrupted.", trap)
            : null;
    }

    /// <summary>Stops watching and withdraws any interruption request.</summary>
    public void Dispose()
    {
        _callerRegistration.Dispose(); // waits for a callback in flight
        _timerRegistration.Dispose();
        _timer?.Dispose();
        _instance.ClearInterrupt();
    }
}
