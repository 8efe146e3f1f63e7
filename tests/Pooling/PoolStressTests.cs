using System.Buffers.Binary;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;
using CowWasm.Runtime;
using Xunit.Abstractions;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// Concurrency stress, bounded in time (COWWASM_STRESS_SECONDS, default 20 for SharedBase and a quarter of
/// that for the copy strategies): 2 writers append to a counter+log in guest memory while 6 readers check
/// that what they see is a committed version — log consistent with the counter, never older than the last
/// version the same thread saw. Afterwards the counter equals the number of writes: none lost.
/// </summary>
[Collection(nameof(StressCollection))]
public sealed class PoolStressTests(ITestOutputHelper output)
{
    private static int Seconds =>
        int.TryParse(Environment.GetEnvironmentVariable("COWWASM_STRESS_SECONDS"), out int s) && s > 0 ? s : 20;

    [Theory]
    [InlineData(SyncStrategyKind.SharedBase, 1)]
    [InlineData(SyncStrategyKind.DirtyCopy, 4)]
    [InlineData(SyncStrategyKind.FullCopy, 4)]
    public async Task ReadersAndWriters_NoWriteLost_NoReadTorn(SyncStrategyKind strategy, int fraction)
    {
        using GuestPool pool = KvGuest.Pool(new SyncOptions { Strategy = strategy }, replicas: 4);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(Math.Max(1, Seconds / fraction)));
        long writes = 0, reads = 0;
        Task[] writers = [.. Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await pool.WriteAsync(g => ValueTask.FromResult(g.GetFunction<int>("append")()));
                Interlocked.Increment(ref writes);
            }
        }))];
        Task[] readers = [.. Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            int last = 0;
            while (!stop.IsCancellationRequested)
            {
                string? torn = await pool.ReadAsync(g => ValueTask.FromResult(Check(g, ref last)));
                Assert.Null(torn);
                Interlocked.Increment(ref reads);
            }
        }))];
        await Task.WhenAll(writers.Concat(readers));

        int counter = pool.Read(g => BinaryPrimitives.ReadInt32LittleEndian(g.GetMemory(0, 4)));
        output.WriteLine($"{strategy}: {writes} writes, {reads} reads in {Math.Max(1, Seconds / fraction)} s; final counter {counter}");
        Assert.Equal(writes, counter);
        Assert.True(writes > 0 && reads > 0);
    }

    private static string? Check(IGuestInstance g, ref int last)
    {
        int counter = BinaryPrimitives.ReadInt32LittleEndian(g.GetMemory(0, 4));
        if (counter < last)
        {
            return $"saw version {counter} after {last}";
        }

        ReadOnlySpan<byte> log = g.GetMemory(32768, 8192 * 4);
        for (int n = Math.Max(1, counter - 8191); n <= counter; n++)
        {
            int entry = BinaryPrimitives.ReadInt32LittleEndian(log[((n & 8191) * 4)..]);
            if (entry != n)
            {
                return $"counter {counter} but log[{n & 8191}] = {entry}";
            }
        }

        last = counter;
        return null;
    }
}

[CollectionDefinition(nameof(StressCollection), DisableParallelization = true)]
public sealed class StressCollection;
