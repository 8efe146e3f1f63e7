using System.Net.Sockets;
using CowWasm.Memory;
using CowWasm.Memory.Sharing;
using CowWasm.Memory.Sync;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Sharing;

/// <summary>
/// Followers of a leader's committed state over a real Unix socket with the base passed by SCM_RIGHTS
/// (src/CowMemory/Sharing, docs/followers.md). The follower runs in this process, but its replicas map the memfd it
/// received, not the leader's objects.
/// </summary>
public sealed class FollowerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-follow-").FullName;

    private string SocketPath => Path.Combine(_dir, "hub.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static SyncStrategy Leader(long pages = 16) => SyncStrategy.Create(new SyncOptions
    {
        Strategy = SyncStrategyKind.SharedBase,
        InitialPageCount = pages,
        MaxPageCount = 256,
        SkipUnchangedPages = true,
    });

    private static byte[] Committed(SyncStrategy leader, long page)
    {
        byte[] bytes = new byte[Pages.Size];
        leader.Base.Read(new PageRun(page, 1), bytes);
        return bytes;
    }

    [Fact]
    public async Task AFollower_EqualsTheLeaderAfterEveryCommit_ThroughWritesRollbacksAndGrowth()
    {
        using SyncStrategy leader = Leader();
        long commits = 0;
        var drops = new List<string>();
        using var hub = FollowerHub.Attach(leader, SocketPath, "module-a"u8.ToArray(), () => BitConverter.GetBytes(commits));
        hub.Dropped = drops.Add;
        using BaseFollower follower = BaseFollower.Connect(SocketPath,
            new FollowerOptions { ReplicaCount = 2, MaxPageCount = 256, ExpectedIdentity = "module-a"u8.ToArray() });
        var random = new Random(20261123);
        for (int step = 0; step < 60; step++)
        {
            if (random.Next(8) == 0 && leader.Leader.PageCount < 200)
            {
                leader.GrowLeader(leader.Leader.PageCount + random.Next(1, 20));
            }

            for (int w = random.Next(1, 6); w > 0; w--)
            {
                Bytes.Fill(leader.Leader, random.NextInt64(leader.Leader.PageCount), (byte)random.Next(1, 256));
            }

            if (random.Next(4) == 0)
            {
                leader.Rollback();
                continue;
            }

            commits++;
            leader.Commit();
            Assert.Equal(commits, hub.Sequence);
            Assert.True(drops.Count == 0, string.Join("; ", drops));
            await follower.WaitForSequenceAsync(commits).WaitAsync(TimeSpan.FromSeconds(10));
            FollowedReplica replica = await follower.RentAsync();
            Assert.Equal(commits, replica.Sequence);
            Assert.Equal(commits, BitConverter.ToInt64(replica.State.Span));
            Assert.Equal(leader.CommittedPageCount, replica.Memory.PageCount);
            for (long page = 0; page < leader.CommittedPageCount; page++)
            {
                Assert.True(replica.Memory.GetPage(page).SequenceEqual(Committed(leader, page)), $"step {step}, page {page}");
            }

            replica.Memory.GetPage(0).Fill(0xEE); // a read's scribble: gone before the next rental
            Assert.True(follower.Return(replica));
        }

        Assert.Equal(1, hub.FollowerCount);
    }

    [Fact]
    public async Task ARentedReplica_KeepsItsCommit_WhileLaterCommitsLand()
    {
        using SyncStrategy leader = Leader();
        Bytes.Fill(leader.Leader, 3, 1);
        leader.Commit();
        using var hub = FollowerHub.Attach(leader, SocketPath, default, () => [], sequence: 1);
        using BaseFollower follower = BaseFollower.Connect(SocketPath, new FollowerOptions { ReplicaCount = 1, MaxPageCount = 256 });

        FollowedReplica reading = await follower.RentAsync();
        Assert.Equal(1, reading.Memory.GetPage(3)[0]); // mapped, never written by the reader: it shows the base
        for (byte value = 2; value <= 4; value++)
        {
            Bytes.Fill(leader.Leader, 3, value);
            Bytes.Fill(leader.Leader, 5, value);
            leader.Commit();
        }

        await follower.WaitForSequenceAsync(4).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, reading.Memory.GetPage(3)[0]); // pinned before each base write: still commit 1
        Assert.Equal(0, reading.Memory.GetPage(5)[0]);
        Assert.True(follower.Return(reading));

        FollowedReplica next = await follower.RentAsync();
        Assert.Equal((4L, (byte)4, (byte)4), (next.Sequence, next.Memory.GetPage(3)[0], next.Memory.GetPage(5)[0]));
        Assert.True(follower.Return(next));
    }

    [Fact]
    public async Task AFollowerThatDoesNotPin_IsDropped_AndTheOthersStay()
    {
        using SyncStrategy leader = Leader();
        var reasons = new List<string>();
        using var hub = FollowerHub.Attach(leader, SocketPath, default, () => [],
            new FollowerHubOptions { PinTimeout = TimeSpan.FromMilliseconds(200) });
        hub.Dropped = r => { lock (reasons) { reasons.Add(r); } };
        using BaseFollower good = BaseFollower.Connect(SocketPath, new FollowerOptions { MaxPageCount = 256 });
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        silent.Connect(new UnixDomainSocketEndPoint(SocketPath)); // takes the descriptors and the hello, never answers
        while (hub.FollowerCount < 2)
        {
            await Task.Delay(5);
        }

        Bytes.Fill(leader.Leader, 1, 7);
        leader.Commit(); // waits the pin timeout for the silent one, then drops it and writes
        Assert.Equal(1, hub.FollowerCount);
        lock (reasons)
        {
            Assert.Contains(reasons, r => r.Contains("did not pin commit 1", StringComparison.Ordinal));
        }

        await good.WaitForSequenceAsync(1).WaitAsync(TimeSpan.FromSeconds(10));
        Bytes.Fill(leader.Leader, 1, 8);
        leader.Commit();
        await good.WaitForSequenceAsync(2).WaitAsync(TimeSpan.FromSeconds(10)); // the good follower was never the laggard
        Assert.Equal(1, hub.FollowerCount);
        lock (reasons)
        {
            Assert.Single(reasons);
        }
    }

    [Fact]
    public async Task AFollowerThatFellBehind_ReportsItsReadInFlightTorn_AndStopsRenting()
    {
        using SyncStrategy leader = Leader();
        using var hub = FollowerHub.Attach(leader, SocketPath, default, () => [],
            new FollowerHubOptions { PinTimeout = TimeSpan.FromMilliseconds(50) });
        using BaseFollower follower = BaseFollower.Connect(SocketPath, new FollowerOptions { ReplicaCount = 1, MaxPageCount = 256 });
        FollowedReplica reading = await follower.RentAsync();
        while (hub.FollowerCount == 0)
        {
            await Task.Delay(5);
        }

        follower.ApplyGate.Reset(); // the follower falls behind: the prepare waits unapplied past the pin timeout
        Bytes.Fill(leader.Leader, 2, 9);
        leader.Commit();
        Assert.Equal(0, hub.FollowerCount);
        Assert.Equal(9, reading.Memory.GetPage(2)[0]); // the base changed under the read: what a torn read looks like
        follower.ApplyGate.Set();
        var stopped = await Assert.ThrowsAnyAsync<IOException>(() => follower.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("did not pin commit 1", stopped.Message);
        Assert.False(follower.Return(reading)); // pinned too late: the read is reported, not passed off as consistent
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => follower.RentAsync().AsTask());
        Assert.Contains("stopped", refused.Message);
    }

    [Fact]
    public void ASocketPathInUse_IsAClearError()
    {
        using SyncStrategy leader = Leader();
        using var first = FollowerHub.Attach(leader, SocketPath, default, () => []);
        using SyncStrategy other = Leader();
        var taken = Assert.Throws<IOException>(() => FollowerHub.Attach(other, SocketPath, default, () => []));
        Assert.Contains("already exists", taken.Message);
        Assert.Null(other.CommitObserver); // the failed hub left the strategy alone
    }

    [Fact]
    public async Task AFollowerOfAnotherIdentity_OrBeyondTheLimit_IsRefused()
    {
        using SyncStrategy leader = Leader();
        var reasons = new List<string>();
        using var hub = FollowerHub.Attach(leader, SocketPath, "module-a"u8.ToArray(), () => [], new FollowerHubOptions { MaxFollowers = 1 });
        hub.Dropped = r => { lock (reasons) { reasons.Add(r); } };
        var wrong = Assert.Throws<InvalidDataException>(() =>
            BaseFollower.Connect(SocketPath, new FollowerOptions { MaxPageCount = 256, ExpectedIdentity = "module-b"u8.ToArray() }));
        Assert.Contains("another module", wrong.Message);

        while (hub.FollowerCount > 0)
        {
            await Task.Delay(5); // the refused follower's connection closes; the hub notices
            Bytes.Fill(leader.Leader, 1, 1);
            leader.Commit();
        }

        using BaseFollower first = BaseFollower.Connect(SocketPath, new FollowerOptions { MaxPageCount = 256 });
        var full = Assert.Throws<IOException>(() => BaseFollower.Connect(SocketPath, new FollowerOptions { MaxPageCount = 256 }));
        Assert.Contains("at most 1 followers", full.Message);
    }
}

/// <summary>A follower in another process (tests/CrashProbe, scenario <c>follower</c>), killed and restarted mid-stream.</summary>
public sealed class FollowerProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-follow-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The follower scenario: for each commit asked for, "seq S pages P sha256 HEX consistent B".</summary>
    private sealed class Child(string socketPath) : IDisposable
    {
        private readonly ProbeProcess _process = new("connected at ", "follower", socketPath, "-");

        public string StateAt(long sequence)
        {
            _process.WriteLine(sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return _process.ReadLine();
        }

        public void Kill() => _process.Kill();

        public void Dispose() => _process.Dispose();
    }

    private static string Expected(SyncStrategy leader, long sequence)
    {
        byte[] all = new byte[Pages.ToBytes(leader.CommittedPageCount)];
        leader.Base.Read(new PageRun(0, leader.CommittedPageCount), all);
        return $"seq {sequence} pages {leader.CommittedPageCount} sha256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(all))} consistent True";
    }

    [Fact]
    public void AFollowerProcess_EqualsTheLeader_AndAKilledOneRestartsAndConverges()
    {
        string socketPath = Path.Combine(_dir, "hub.sock");
        using SyncStrategy leader = SyncStrategy.Create(new SyncOptions
        {
            Strategy = SyncStrategyKind.SharedBase, InitialPageCount = 16, MaxPageCount = 256, SkipUnchangedPages = true,
        });
        var drops = new List<string>();
        using var hub = FollowerHub.Attach(leader, socketPath, default, () => [], new FollowerHubOptions { PinTimeout = TimeSpan.FromSeconds(2) });
        hub.Dropped = r => { lock (drops) { drops.Add(r); } };
        var random = new Random(7);
        long sequence = 0;
        void CommitSome(int count)
        {
            for (int i = 0; i < count; i++)
            {
                if (random.Next(6) == 0)
                {
                    leader.GrowLeader(Math.Min(200, leader.Leader.PageCount + 3));
                }

                Bytes.Fill(leader.Leader, random.NextInt64(leader.Leader.PageCount), (byte)random.Next(1, 256));
                leader.Commit();
                sequence++;
            }
        }

        using (var child = new Child(socketPath))
        {
            for (int round = 0; round < 5; round++)
            {
                CommitSome(4);
                Assert.Equal(Expected(leader, sequence), child.StateAt(sequence));
            }

            child.Kill(); // mid-stream: the hub sees the closed connection at the next commit and drops it
            CommitSome(3);
        }

        Assert.Equal(0, hub.FollowerCount);
        lock (drops)
        {
            Assert.Contains(drops, d => d.Contains("connection", StringComparison.Ordinal));
        }

        using var restarted = new Child(socketPath); // starts from the current state; nothing to replay
        Assert.Equal(Expected(leader, sequence), restarted.StateAt(sequence));
        CommitSome(5);
        Assert.Equal(Expected(leader, sequence), restarted.StateAt(sequence));
    }
}
