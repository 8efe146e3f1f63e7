using CowWasm.Pool;

namespace CowWasm.Tests.Pooling;

/// <summary>The pool's gate: exclusion, arrival-order fairness, cancellation, and no blocked threads.</summary>
public sealed class PoolGateTests
{
    [Fact]
    public async Task WaitingWriter_HoldsBackLaterReaders_AndEntersWhenTheRoomEmpties()
    {
        using var gate = new PoolGate();
        await gate.EnterReadAsync(default);
        ValueTask writer = gate.EnterWriteAsync(default);
        ValueTask laterReader = gate.EnterReadAsync(default);
        Assert.False(writer.IsCompleted);
        Assert.False(laterReader.IsCompleted); // behind the writer that arrived first

        gate.ExitRead();
        await writer;
        Assert.False(laterReader.IsCompleted);
        gate.ExitWrite();
        await laterReader;
        Assert.Equal(1, gate.Readers);
        gate.ExitRead();
    }

    [Fact]
    public async Task ReadersQueuedBetweenWriters_EnterTogether_AndTheNextWriterWaitsForThem()
    {
        using var gate = new PoolGate();
        await gate.EnterWriteAsync(default);
        ValueTask r1 = gate.EnterReadAsync(default);
        ValueTask r2 = gate.EnterReadAsync(default);
        ValueTask w2 = gate.EnterWriteAsync(default);
        gate.ExitWrite();
        await r1;
        await r2;
        Assert.Equal(2, gate.Readers);
        Assert.False(w2.IsCompleted);
        gate.ExitRead();
        Assert.False(w2.IsCompleted);
        gate.ExitRead();
        await w2;
        gate.ExitWrite();
    }

    [Fact]
    public async Task CancelledWriter_LetsTheReadersBehindItIn()
    {
        using var gate = new PoolGate();
        await gate.EnterReadAsync(default);
        using var cancel = new CancellationTokenSource();
        ValueTask writer = gate.EnterWriteAsync(cancel.Token);
        ValueTask reader = gate.EnterReadAsync(default);
        Assert.False(reader.IsCompleted);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await writer);
        await reader; // no writer ahead of it any more
        Assert.Equal(2, gate.Readers);
        gate.ExitRead();
        gate.ExitRead();
        await gate.EnterWriteAsync(default); // the room is empty again
        gate.ExitWrite();
    }

    [Fact]
    public void Exit_WithoutEnter_Throws()
    {
        using var gate = new PoolGate();
        Assert.Throws<InvalidOperationException>(gate.ExitRead);
        Assert.Throws<InvalidOperationException>(gate.ExitWrite);
    }

    [Fact]
    public async Task ManyReadersAndWriters_OnFewThreads_NeverOverlapAndAllFinish()
    {
        // Thousands of waiters and two worker threads' worth of work: a gate that blocked threads would stall here.
        using var gate = new PoolGate();
        int readersInside = 0, writersInside = 0, violations = 0;
        var rng = new Random(7);
        Task[] work = [.. Enumerable.Range(0, 4000).Select(i => rng.Next(10) == 0
            ? Task.Run(async () =>
            {
                await gate.EnterWriteAsync(default);
                if (Interlocked.Increment(ref writersInside) != 1 || Volatile.Read(ref readersInside) != 0)
                {
                    Interlocked.Increment(ref violations);
                }

                await Task.Yield();
                Interlocked.Decrement(ref writersInside);
                gate.ExitWrite();
            })
            : Task.Run(async () =>
            {
                await gate.EnterReadAsync(default);
                Interlocked.Increment(ref readersInside);
                if (Volatile.Read(ref writersInside) != 0)
                {
                    Interlocked.Increment(ref violations);
                }

                await Task.Yield();
                Interlocked.Decrement(ref readersInside);
                gate.ExitRead();
            }))];
        await Task.WhenAll(work).WaitAsync(TimeSpan.FromMinutes(2)); // a liveness bound, not a timing assertion
        Assert.Equal(0, violations);
        Assert.Equal(0, gate.Readers);
    }
}
