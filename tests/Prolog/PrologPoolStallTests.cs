using CowWasm.Prolog;
using Xunit.Abstractions;

namespace CowWasm.Tests.Prolog;

/// <summary>
/// The seed's workload as a stall detector: rounds of 100 concurrent <c>test(X)</c> on a 2-replica pool with the
/// default options and default thread-pool settings. Before the gate stopped blocking thread-pool threads, rounds
/// took 1.4–19.4 s instead of about 0.1 s. A round that has not finished in 30 s fails the test (a liveness bound:
/// the timing targets are in <c>./run.sh --guest trealla</c>).
/// </summary>
[Collection(TreallaCollection.Name)]
public sealed class PrologPoolStallTests(TreallaFixture trealla, ITestOutputHelper output)
{
    [Fact]
    public async Task RoundsOf100ConcurrentQueries_NeverStall()
    {
        await using PrologPool pool = PrologPool.Create(trealla.Module, PrologPool.DefaultOptions with { ReplicaCount = 2 });
        await pool.ConsultAsync("test(123).");
        int maxThreads = 0;
        for (int round = 0; round < 100; round++)
        {
            Task[] queries = [.. Enumerable.Range(0, 100).Select(_ => Task.Run(async () =>
            {
                PrologAnswer answer = await pool.QueryOnceAsync("test(X)");
                Assert.True(answer.IsSuccess && answer["X"].ToString() == "123", $"wrong answer {answer}");
            }))];
            Task all = Task.WhenAll(queries);
            Task finished = await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30)));
            Assert.True(finished == all, $"round {round} stalled: not done after 30 s with {ThreadPool.ThreadCount} thread-pool threads");
            await all;
            maxThreads = Math.Max(maxThreads, ThreadPool.ThreadCount);
        }

        output.WriteLine($"100 rounds done; at most {maxThreads} thread-pool threads ({Environment.ProcessorCount} CPUs)");
    }
}
