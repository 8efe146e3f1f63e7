using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Runtime;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// Commits as patches with identities: a pool's own commits reach its listeners as page patches that reproduce it on
/// another pool of the same history, with the same identity; a state whose bytes differ under the same identity is
/// caught when a patch is applied onto it.
/// </summary>
public sealed class CommitHistoryTests
{
    /// <summary>Keeps every commit record the pool gives its listeners.</summary>
    private sealed class Recorder : ICommitListener
    {
        public List<CommitRecord> Records { get; } = [];

        public ValueTask AfterBaseWrite(CommitRecord record)
        {
            Records.Add(record);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task PatchedCommits_ReproduceTheLeader_WithItsIdentity_AndAreSmall()
    {
        using GuestPool leader = KvGuest.Pool(replicas: 1);
        using GuestPool other = KvGuest.Pool(replicas: 1);
        Assert.Equal(leader.Head, other.Head); // the same genesis
        var recorder = new Recorder();
        await leader.AddListenerAsync(recorder);
        for (int k = 0; k < 20; k++)
        {
            KvGuest.Put(leader, k, k * 7L);
        }

        leader.Write(g => g.GetFunction<int, int>("grow")(1));
        foreach (CommitRecord record in recorder.Records)
        {
            Assert.Equal(PageEncoding.Patches, record.Encoding);
            Assert.True(record.Pages.Length < 64 * record.Runs.Sum(r => r.PageCount) + 64,
                $"commit {record.Sequence}: {record.Pages.Length} bytes of patches for {record.Runs.Sum(r => r.PageCount)} pages");
            await other.ApplyCommitAsync(record);
            Assert.Equal(record.Id, other.Head);
        }

        Assert.Equal((leader.CommitSequence, leader.Head), (other.CommitSequence, other.Head));
        Assert.Equal(leader.Read(g => (KvGuest.Get(g, 19), KvGuest.Sp(g), g.GetFunction<int>("size")())),
            other.Read(g => (KvGuest.Get(g, 19), KvGuest.Sp(g), g.GetFunction<int>("size")())));
    }

    [Fact]
    public async Task APatch_AppliedOntoBytesThatDiffer_UnderTheSameIdentity_IsRefused_AndRolledBack()
    {
        using GuestPool leader = KvGuest.Pool(replicas: 1);
        using GuestPool damaged = KvGuest.Pool(replicas: 1);
        var recorder = new Recorder();
        await leader.AddListenerAsync(recorder);
        KvGuest.Put(leader, 3, 33);
        CommitRecord record = Assert.Single(recorder.Records);
        long page = record.Runs[0].StartPage;
        damaged.Strategy.Base.Write(new PageRun(page, 1), Enumerable.Repeat((byte)0xEE, Pages.Size).ToArray()); // outside the pool

        var refused = await Assert.ThrowsAsync<CommitHistoryException>(() => damaged.ApplyCommitAsync(record).AsTask());
        Assert.Contains("differ from the leader's", refused.Message);
        Assert.Equal((0L, record.Parent), (damaged.CommitSequence, damaged.Head)); // nothing of it was committed
    }
}
