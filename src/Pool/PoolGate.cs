namespace CowWasm.Pool;

/// <summary>
/// Readers–writer exclusion for the pool, writer-preferring: a waiting writer closes the turnstile, so readers
/// that arrive after it wait behind it, while readers already admitted finish; the writer then waits for the
/// room to empty. Writers queue on the turnstile in arrival order (SemaphoreSlim's waiters are served FIFO).
/// Hence no writer starves under a stream of readers, and readers are not starved by writers either — each
/// waits at most for the writers that arrived before it.
/// </summary>
internal sealed class PoolGate : IDisposable
{
    private readonly SemaphoreSlim _turnstile = new(1, 1);
    private readonly SemaphoreSlim _roomEmpty = new(1, 1);
    private readonly SemaphoreSlim _readerCount = new(1, 1);
    private int _readers;

    public async ValueTask EnterReadAsync(CancellationToken cancellationToken)
    {
        await _turnstile.WaitAsync(cancellationToken).ConfigureAwait(false);
        _turnstile.Release();
        await _readerCount.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_readers == 0)
            {
                await _roomEmpty.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            _readers++;
        }
        finally
        {
            _readerCount.Release();
        }
    }

    public void ExitRead()
    {
        _readerCount.Wait();
        try
        {
            if (--_readers == 0)
            {
                _roomEmpty.Release();
            }
        }
        finally
        {
            _readerCount.Release();
        }
    }

    public async ValueTask EnterWriteAsync(CancellationToken cancellationToken)
    {
        await _turnstile.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _roomEmpty.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _turnstile.Release();
            throw;
        }
    }

    public void ExitWrite()
    {
        _roomEmpty.Release();
        _turnstile.Release();
    }

    public void Dispose()
    {
        _turnstile.Dispose();
        _roomEmpty.Dispose();
        _readerCount.Dispose();
    }
}
