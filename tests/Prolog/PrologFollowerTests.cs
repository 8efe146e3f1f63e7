using CowWasm.Memory.Sharing;
using CowWasm.Pool;
using CowWasm.Prolog;

namespace CowWasm.Tests.Prolog;

/// <summary>A Trealla knowledge base followed through the shared base: a follower answers like the leader, commit by commit.</summary>
[Collection(TreallaCollection.Name)]
public sealed class PrologFollowerTests(TreallaFixture trealla) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-prolog-follow-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task AFollower_AnswersLikeTheLeader_AfterEveryAssert()
    {
        await using PrologPool leader = PrologPool.Create(trealla.Module, PrologPool.DefaultOptions with { ReplicaCount = 1 });
        await leader.ConsultAsync(":- dynamic(fact/1). fact(1).");
        string socket = Path.Combine(_dir, "kb.sock");
        FollowerHub hub = await leader.ServeFollowersAsync(socket);
        using PrologFollower follower = PrologFollower.Connect(trealla.Module, socket);

        FollowerRead<PrologAnswers> first = await follower.QueryAllAsync("fact(X)");
        Assert.Equal([PrologTerm.Integer(1)], first.Result.Select(a => a["X"]));
        for (int n = 2; n <= 6; n++)
        {
            await leader.AssertAsync($"fact({n})");
            await follower.WaitForAsync(hub.Sequence).WaitAsync(TimeSpan.FromSeconds(10)); // no polling: SequenceWaiters

            FollowerRead<PrologAnswers> read = await follower.QueryAllAsync("fact(X)");
            Assert.Equal(hub.Sequence, read.Sequence);
            Assert.Equal(Enumerable.Range(1, n).Select(i => (PrologTerm)PrologTerm.Integer(i)), read.Result.Select(a => a["X"]));
            IReadOnlyList<PrologAnswer> onLeader = await leader.QueryAllAsync("fact(X)");
            Assert.Equal(onLeader.Select(a => a.ToString()), read.Result.Select(a => a.ToString()));
        }

        // A read's own assert is gone before the next read, as on the leader's replicas.
        Assert.True((await follower.QueryOnceAsync("assertz(fact(99))")).Result.IsSuccess);
        Assert.False((await follower.QueryOnceAsync("fact(99)")).Result.IsSuccess);
    }
}
