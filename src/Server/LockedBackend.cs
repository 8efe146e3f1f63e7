using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Server;

/// <summary>
/// One plain interpreter behind an async lock: the obvious alternative to the pool, kept as the load benchmark's
/// baseline. No isolation (a read's effects stay; a write that raises is not rolled back); requests time out and are
/// interrupted like on the pool, but a trap leaves the interpreter in an unknown state, so the backend then faults and
/// every later request is refused (503).
/// </summary>
internal sealed class LockedBackend : IPrologBackend
{
    private readonly IGuestInstance _guest;
    private readonly PrologInterpreter _prolog;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private Exception? _fault;

    public BackendState State => default;

    public LockedBackend(IGuestModule module, ServerOptions options)
    {
        // The same memory cap and answer budget as the pool's instances (--max-memory-mb, --max-answer-bytes).
        PoolOptions cap = options.PoolOptions;
        InstanceOptions instance = TreallaGuest.DefaultInstanceOptions with
        {
            Memory = (initial, max, reserved) => StandaloneMemory.Create(initial, Math.Max(initial, cap.CapPages(max)), reserved),
        };
        _guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), instance);
        try
        {
            _prolog = PrologInterpreter.Initialize(_guest);
            _prolog.MaxAnswerBytes = options.MaxAnswerBytes;
        }
        catch
        {
            _guest.Dispose();
            throw;
        }
    }

    public string Name => "locked";

    public int Replicas => 1;

    public Exception? FaultCause => Volatile.Read(ref _fault);

    public ValueTask<int> QueryAsync(string goal, int limit, TimeSpan timeout, Func<PrologAnswer, ValueTask> onAnswer,
        CancellationToken cancellationToken) =>
        RunAsync(prolog => prolog.QueryEachAsync(goal, limit, onAnswer, cancellationToken), timeout, cancellationToken);

    public ValueTask<T> WriteAsync<T>(Func<PrologInterpreter, T> work, TimeSpan timeout, CancellationToken cancellationToken) =>
        RunAsync(prolog => ValueTask.FromResult(work(prolog)), timeout, cancellationToken);

    public ValueTask SaveSnapshotAsync(string path, CancellationToken cancellationToken) =>
        throw new NotSupportedException("The locked interpreter has no committed state to save; run the service with --backend pool.");

    private async ValueTask<T> RunAsync<T>(Func<PrologInterpreter, ValueTask<T>> work, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _fault) is { } fault)
            {
                throw new InvalidOperationException("The locked interpreter is faulted: an earlier request trapped or timed out.", fault);
            }

            using var deadline = new CancellationTokenSource(timeout);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
            using (linked.Token.Register(static g => ((IGuestInstance)g!).Interrupt(), _guest))
            {
                try
                {
                    return await work(_prolog).ConfigureAwait(false);
                }
                catch (WasmTrapException trap)
                {
                    Volatile.Write(ref _fault, trap);
                    if (trap.Kind == TrapKind.Interrupted)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        throw new TimeoutException($"The request ran past its {timeout.TotalMilliseconds:0} ms deadline and was interrupted.", trap);
                    }

                    throw;
                }
            }
        }
        finally
        {
            _guest.ClearInterrupt();
            _lock.Release();
        }
    }

    /// <summary>Waits for the request in flight, then frees the interpreter.</summary>
    public async ValueTask DisposeAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        _guest.Dispose();
        _lock.Dispose();
    }
}
