using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;

namespace CowWasm.Tests.Prolog;

/// <summary>A Prolog goal that never ends (<c>repeat, fail.</c>) is stopped by its timeout and the pool keeps serving.</summary>
[Collection(TreallaCollection.Name)]
public sealed class PrologTimeoutTests(TreallaFixture trealla)
{
    [Theory]
    [MemberData(nameof(TreallaFixture.Configs), MemberType = typeof(TreallaFixture))]
    public async Task ARunawayQuery_TimesOut_AndTheReplicasServeCorrectAnswersAfterwards(string config)
    {
        await using PrologPool pool = trealla.Pool(config, replicas: 2);
        await pool.AssertAsync("fact(1)");
        for (int round = 0; round < 3; round++)
        {
            // Both replicas: two concurrent runaways, then ordinary queries on whatever replica comes.
            Task<PrologAnswer>[] runaways =
            [
                pool.QueryOnceAsync("repeat, fail", TimeSpan.FromMilliseconds(50)).AsTask(),
                pool.QueryOnceAsync("assertz(junk), repeat, fail", TimeSpan.FromMilliseconds(50)).AsTask(),
            ];
            foreach (Task<PrologAnswer> runaway in runaways)
            {
                var e = await Assert.ThrowsAsync<TimeoutException>(() => runaway);
                Assert.Equal(TrapKind.Interrupted, Assert.IsType<WasmTrapException>(e.InnerException).Kind);
            }

            IReadOnlyList<PrologAnswer>[] answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => pool.QueryAllAsync("fact(X)").AsTask()));
            Assert.All(answers, a => Assert.Equal([1], a.Select(x => (int)((PrologInteger)x["X"]).Value)));
            Assert.False((await pool.QueryOnceAsync("junk")).IsSuccess);
        }
    }

    [Theory]
    [InlineData("DefaultOptions")]
    [InlineData("Wasmtime/DefaultOptions")]
    public async Task ARunawayWrite_IsCancelled_AndRolledBack(string config)
    {
        await using PrologPool pool = trealla.Pool(config, replicas: 1);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAsync<OperationCanceledException>(async () =>
            await pool.ExecuteAsync("assertz(fact(9)), repeat, fail", cancel.Token));
        Assert.False((await pool.QueryOnceAsync("fact(9)")).IsSuccess);
        await pool.AssertAsync("fact(10)");
        Assert.True((await pool.QueryOnceAsync("fact(10)")).IsSuccess);
    }

    [Theory]
    [InlineData("DefaultOptions")]
    [InlineData("Wasmtime/DefaultOptions")]
    public async Task AGoalWithInfinitelyManySolutions_StopsAtTheDefaultCap_AndTheTokenStopsItBetweenSolutions(string config)
    {
        await using PrologPool pool = trealla.Pool(config, replicas: 1);
        IReadOnlyList<PrologAnswer> answers = await pool.QueryAllAsync("repeat");
        Assert.Equal(PrologPool.DefaultMaxSolutions, answers.Count);
        Assert.Equal(3, (await pool.QueryAllAsync("repeat", maxSolutions: 3)).Count);

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            await Task.Run(() => pool.QueryAllAsync("repeat", int.MaxValue, cancel.Token).AsTask()));
        Assert.Equal(2, (await pool.QueryAllAsync("member(X, [a, b])")).Count); // still serving
    }
}
