using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Pool;
using CowWasm.Replication;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Pooling;
using CowWasm.Tests.Support;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Xunit.Abstractions;

namespace CowWasm.Tests.Replication;

/// <summary>
/// Followers on other hosts through NATS JetStream (CommitPublisher, CommitFollower), against real nats-server
/// processes on loopback ports: the kv guest's commits replayed exactly, snapshots, restarts, damaged and reordered
/// deltas, another module, and a three-node cluster losing a node.
/// </summary>
[Collection(nameof(ReplicationCollection))]
public sealed class ReplicationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    private static ReplicationOptions Options(string name, int replicas = 1) => new() { Name = name, Replicas = replicas };

    private static PoolOptions OneReplica => new() { ReplicaCount = 1 };

    private static void Put(GuestPool pool, int key, long value) => pool.Write(g =>
    {
        KvGuest.Put(g, key, value);
        return 0;
    });

    /// <summary>Same commit, same memory bytes, same length, same globals (read through the follower's replicas).</summary>
    private static async Task AssertSameStateAsync(GuestPool leader, CommitFollower follower)
    {
        await follower.WaitForAsync(leader.CommitSequence).WaitAsync(Patience);
        Assert.Equal(leader.CommitSequence, follower.Sequence);
        SyncStrategy l = leader.Strategy, f = follower.Pool.Strategy;
        Assert.Equal(l.CommittedPageCount, f.CommittedPageCount);
        var run = new PageRun(0, l.CommittedPageCount);
        byte[] expected = new byte[run.ByteLength], actual = new byte[run.ByteLength];
        l.Base.Read(run, expected);
        f.Base.Read(run, actual);
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"the follower's memory differs from the leader's at commit {leader.CommitSequence}");
        (int sp, int size) = leader.Read(g => (KvGuest.Sp(g), g.GetFunction<int>("size")()));
        FollowerRead<(int, int)> read = await follower.ReadAsync(g => ValueTask.FromResult((KvGuest.Sp(g), g.GetFunction<int>("size")())));
        Assert.Equal((sp, size), read.Result);
        Assert.Equal(leader.CommitSequence, read.Sequence);
    }

    [Theory]
    [InlineData(false)] // deltas compressed, one message each
    [InlineData(true)] // uncompressed and cut into 128-byte chunks: every commit is several messages
    public async Task Followers_EqualTheLeader_AfterEveryCommit_ThroughRollbacksGrowthSnapshotsAttachesAndDetaches(bool chunked)
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection leaderConnection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, leaderConnection,
            chunked ? Options("walk") with { Compress = false, MaxChunkBytes = 128 } : Options("walk"));
        var followers = new List<(NatsConnection Connection, CommitFollower Follower)>();
        var random = new Random(2311);
        int attached = 0, fromSnapshot = 0;
        try
        {
            for (int step = 0; step < 60; step++)
            {
                switch (random.Next(12))
                {
                    case 0 when followers.Count < 3:
                        NatsConnection connection = nats.Connect();
                        CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options("walk"), OneReplica);
                        followers.Add((connection, follower));
                        attached++;
                        fromSnapshot += follower.SnapshotSequence > 0 ? 1 : 0;
                        break;
                    case 1 when followers.Count > 0:
                        int gone = random.Next(followers.Count);
                        await followers[gone].Follower.DisposeAsync();
                        await followers[gone].Connection.DisposeAsync();
                        followers.RemoveAt(gone);
                        break;
                    case 2:
                        Assert.ThrowsAny<Exception>(() => leader.Write<int>(g =>
                        {
                            g.GetFunction("put_then_fail").Invoke([(uint)random.Next(64), 999], []);
                            return 0;
                        })); // rolled back: never published
                        break;
                    case 3:
                        await publisher.PublishSnapshotAsync();
                        break;
                    case 4:
                        leader.Write(g => g.GetFunction<int, int>("grow")(1)); // a longer memory travels with the commit
                        break;
                    default:
                        Put(leader, random.Next(64), random.NextInt64(1, long.MaxValue));
                        break;
                }

                foreach ((_, CommitFollower follower) in followers)
                {
                    await AssertSameStateAsync(leader, follower);
                }
            }

            Assert.True(attached >= 3 && fromSnapshot >= 1, $"{attached} followers attached, {fromSnapshot} from a snapshot: the walk did not exercise both");
            Assert.Equal(leader.CommitSequence, publisher.PublishedSequence);
            // Every message ever stored (snapshots purge the stream's head, so count to its last sequence, not what is left).
            long messages = (long)(await new NatsJSContext(leaderConnection).GetStreamAsync("COWWASM_walk")).Info.State.LastSeq;
            Assert.True(chunked ? messages >= 2 * publisher.CommitsPublished : messages == publisher.CommitsPublished,
                $"{messages} messages for {publisher.CommitsPublished} commits");
        }
        finally
        {
            foreach ((NatsConnection connection, CommitFollower follower) in followers)
            {
                await follower.DisposeAsync();
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Each snapshot deletes the commits before the previous snapshot from the stream (before: the stream grew without
    /// bound until JetStream refused every write), and a follower started afterwards still converges from the newest
    /// snapshot. With <see cref="ReplicationOptions.PurgeStream"/> off, everything stays.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Snapshots_PurgeTheStreamBeforeThePreviousOne_AndNewFollowersConverge(bool purge)
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        string name = purge ? "purge" : "keep";
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection, Options(name) with { PurgeStream = purge });
        for (int i = 1; i <= 30; i++)
        {
            Put(leader, i % 8, i);
            if (i % 10 == 0)
            {
                await publisher.WaitPublishedAsync(leader.CommitSequence).WaitAsync(Patience);
                await publisher.PublishSnapshotAsync();
            }
        }

        await publisher.WaitPublishedAsync(leader.CommitSequence).WaitAsync(Patience);
        var state = (await new NatsJSContext(connection).GetStreamAsync($"COWWASM_{name}")).Info.State;
        if (purge)
        {
            Assert.True(state.FirstSeq > 10, $"the stream still starts at {state.FirstSeq}");
        }
        else
        {
            Assert.Equal(1ul, state.FirstSeq);
        }

        await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options(name), OneReplica);
        await AssertSameStateAsync(leader, follower);
    }

    /// <summary>A follower downloads the snapshot into a file only its user can read (before: the umask's mode, usually 0644).</summary>
    [Fact]
    public void ADownloadedSnapshot_IsTheUsersAlone()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }

        string path = Path.Combine(Path.GetTempPath(), $"cowwasm-mode-{Guid.NewGuid():N}.snap");
        try
        {
            using (FileStream file = CommitFollower.CreateDownload(path))
            {
                file.WriteByte(1);
            }

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task AFollowerStoppedMidStream_AndStartedAgain_Converges()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection leaderConnection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, leaderConnection, Options("restart"));
        using var writing = new CancellationTokenSource();
        Task writer = Task.Run(async () =>
        {
            for (int i = 0; !writing.IsCancellationRequested; i++)
            {
                Put(leader, i % 64, i);
                if (i == 100)
                {
                    await publisher.PublishSnapshotAsync();
                }

                await Task.Yield();
            }
        });

        await using (NatsConnection first = nats.Connect())
        {
            CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), first, Options("restart"), OneReplica);
            await follower.WaitForAsync(60).WaitAsync(Patience);
            await follower.DisposeAsync(); // mid-stream: commits keep coming
        }

        await leader.ReadAsync(_ => ValueTask.FromResult(0)); // let the writer run on
        await publisher.WaitPublishedAsync(150).WaitAsync(Patience);
        await using NatsConnection second = nats.Connect();
        await using CommitFollower again = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), second, Options("restart"), OneReplica);
        Assert.True(again.SnapshotSequence >= 100, $"started from snapshot {again.SnapshotSequence}");
        await again.WaitForAsync(leader.CommitSequence).WaitAsync(Patience);
        await writing.CancelAsync();
        await writer;
        await AssertSameStateAsync(leader, again);
    }

    [Fact]
    public async Task ALeaderRestartedFromAnOlderSnapshot_CatchesUpFromTheStream_AndOneThatForked_IsRefused()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        string dir = Directory.CreateTempSubdirectory("cowwasm-leader-").FullName;
        string older = Path.Combine(dir, "older.snap");
        try
        {
            await using NatsConnection followerConnection = nats.Connect();
            await using (NatsConnection connection = nats.Connect())
            await using (GuestPool first = KvGuest.Pool(replicas: 1))
            await using (CommitPublisher publisher = await CommitPublisher.StartAsync(first, connection, Options("leader")))
            {
                for (int i = 1; i <= 5; i++)
                {
                    Put(first, i, i * 10);
                    if (i == 3)
                    {
                        Assert.Equal(3, await first.SaveSnapshotAsync(older));
                    }
                }

                await publisher.WaitPublishedAsync(5).WaitAsync(Patience);
            }

            await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), followerConnection, Options("leader"), OneReplica);
            await follower.WaitForAsync(5).WaitAsync(Patience);

            // Old leaders that wrote on their own after commit 3 (as after a failover): at the stream's sequence, and behind it.
            foreach (int ownWrites in new[] { 2, 1 })
            {
                await using GuestPool forked = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), older, OneReplica);
                for (int i = 0; i < ownWrites; i++)
                {
                    Put(forked, 4 + i, 999);
                }

                await using NatsConnection connection = nats.Connect();
                var refused = await Assert.ThrowsAsync<ReplicationException>(() => CommitPublisher.StartAsync(forked, connection, Options("leader")));
                Assert.Contains(ownWrites == 2 ? "history forked" : "the two histories forked", refused.Message);
                Assert.Equal(3 + ownWrites, forked.CommitSequence); // nothing of the stream was applied onto the other heap
                Put(forked, 9, 9); // and it is detached again: its commits go nowhere
            }

            // An old leader of the same history takes commits 4 and 5 from the stream, then leads.
            await using GuestPool stale = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), older, OneReplica);
            Assert.Equal(3, stale.CommitSequence);
            await using NatsConnection again = nats.Connect();
            await using CommitPublisher continued = await CommitPublisher.StartAsync(stale, again, Options("leader"));
            Assert.Equal((5L, 50L), (stale.CommitSequence, stale.Read(g => KvGuest.Get(g, 5))));
            Put(stale, 6, 60);
            Assert.Equal(6, stale.CommitSequence);
            await AssertSameStateAsync(stale, follower);
            Assert.Equal(60, (await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Get(g, 6)))).Result);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ALeaderAheadOfTheStream_PublishesWhatOnlyItsLogHas_AndOneWhoseLogForked_IsRefused()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        string dir = Directory.CreateTempSubdirectory("cowwasm-ahead-").FullName;
        try
        {
            byte[] module = PoolSnapshot.ModuleHashOf(KvGuest.Module);
            string at2 = Path.Combine(dir, "at2.snap");
            await using NatsConnection connection = nats.Connect();
            using (var log = CowWasm.Pool.Log.CommitLog.Open(Path.Combine(dir, "log"), module))
            await using (GuestPool leader = KvGuest.Pool(replicas: 1))
            {
                await leader.AttachLogAsync(log);
                await using (CommitPublisher first = await CommitPublisher.StartAsync(leader, connection, Options("ahead")))
                {
                    for (int k = 1; k <= 3; k++)
                    {
                        Put(leader, k, k * 10);
                        if (k == 2)
                        {
                            await leader.SaveSnapshotAsync(at2);
                        }
                    }

                    await first.WaitPublishedAsync(3).WaitAsync(Patience);
                }

                // Commits 4 and 5 reach the log but not the stream (the leader stopped publishing, as if it crashed).
                Put(leader, 4, 40);
                Put(leader, 5, 50);
                await using CommitPublisher next = await CommitPublisher.StartAsync(leader, connection, Options("ahead"));
                Assert.Equal((5L, 0L), (next.PublishedSequence, next.SnapshotSequence)); // from the log, no snapshot needed
                await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options("ahead"), OneReplica);
                await AssertSameStateAsync(leader, follower);
            }

            // Another history: from the snapshot at 2, its own commits 3 and 4 in its own log; the stream's 3..5 are not its.
            using (var log = CowWasm.Pool.Log.CommitLog.Open(Path.Combine(dir, "other-log"), module, emptyAfter: 2))
            await using (GuestPool forked = GuestPool.CreateFromSnapshot(KvGuest.Module, KvGuest.Linker(), at2, OneReplica))
            {
                await forked.AttachLogAsync(log);
                for (int k = 3; k <= 6; k++)
                {
                    Put(forked, k, 999);
                }

                var refused = await Assert.ThrowsAsync<ReplicationException>(() => CommitPublisher.StartAsync(forked, connection, Options("ahead")));
                Assert.Contains("forked", refused.Message);
                Assert.Empty(forked.Listeners.OfType<CommitPublisher>()); // detached again
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Commits key k = k × 11 for k = 1…<paramref name="count"/> through a publisher that is gone afterwards.</summary>
    private static async Task PublishCommitsAsync(GuestPool leader, NatsConnection connection, string name, int count)
    {
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection, Options(name));
        for (int k = 1; k <= count; k++)
        {
            Put(leader, k, k * 11);
        }

        await publisher.WaitPublishedAsync(count).WaitAsync(Patience);
    }

    /// <summary>Publishes one message on the commit subject, as a hostile or broken publisher would.</summary>
    private static async Task InjectAsync(NatsConnection connection, string name, long sequence, byte[] data, string chunk = "0/1",
        CommitId? parent = null)
    {
        var headers = new NatsHeaders { ["Cw-Commit"] = sequence.ToString(), ["Cw-Chunk"] = chunk, ["Cw-Epoch"] = "intruder" };
        if (parent is { } id)
        {
            headers["Cw-Parent"] = id.ToHex(); // as a publisher sends it: a later publisher learns the last whole commit's identity
        }

        PubAckResponse ack = await new NatsJSContext(connection).PublishAsync($"cowwasm.{name}.commits", data, headers: headers);
        ack.EnsureSuccess();
    }

    /// <summary>A commit of the kv guest after <paramref name="parent"/>: one page of 0x5A, the stack pointer at 7.</summary>
    private static CommitRecord Record(long sequence, CommitId parent) =>
        new(sequence, parent, 2 * 65536, [7UL], [new PageRun(3, 1)], Enumerable.Repeat((byte)0x5A, 4096).ToArray(), false);

    /// <summary>A valid delta of the kv guest for <paramref name="sequence"/> (see <see cref="Record"/>).</summary>
    private static byte[] Delta(long sequence, CommitId parent, byte[]? moduleHash = null) => CommitCodec.Encode(
        Record(sequence, parent), moduleHash ?? PoolSnapshot.ModuleHashOf(KvGuest.Module), compress: true);

    [Theory]
    [InlineData("checksum", "fails its SHA-256 checksum")]
    [InlineData("gap", "commits 3 to 3 are missing")]
    [InlineData("reordered", "whose first chunk never came")]
    [InlineData("module", "not the module this pool runs")]
    [InlineData("garbage", "not a CowWasm delta")]
    [InlineData("fork", "the two histories forked")]
    public async Task ADamagedOrMisplacedDelta_StopsTheFollower_WithTheError_AndItsReadsSaySo(string damage, string error)
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        string name = "damage-" + damage;
        await PublishCommitsAsync(leader, connection, name, 2);

        await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options(name), OneReplica);
        await follower.WaitForAsync(2).WaitAsync(Patience);
        byte[] valid = Delta(3, leader.Head);
        switch (damage)
        {
            case "checksum":
                valid[valid.Length / 2] ^= 0x01;
                await InjectAsync(connection, name, 3, valid);
                break;
            case "gap":
                await InjectAsync(connection, name, 4, Delta(4, Record(3, leader.Head).Id));
                break;
            case "reordered":
                await InjectAsync(connection, name, 3, valid, chunk: "1/2");
                break;
            case "module":
                await InjectAsync(connection, name, 3, Delta(3, leader.Head, PoolSnapshot.ModuleHashOf(TestModules.Get("basic"))));
                break;
            case "fork":
                // Commit 3 of another history: the right sequence and a valid delta, after another commit 2.
                await InjectAsync(connection, name, 3, Delta(3, Record(2, leader.Head).Id));
                break;
            default:
                await InjectAsync(connection, name, 3, "not a delta at all"u8.ToArray());
                break;
        }

        var stopped = await Assert.ThrowsAsync<ReplicationException>(() => follower.Completion.WaitAsync(Patience));
        Assert.Contains(error, stopped.Message);
        Assert.Equal(2, follower.Sequence); // nothing of the bad delta was applied
        var refused = await Assert.ThrowsAsync<ReplicationException>(async () => await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Get(g, 1))));
        Assert.Contains(error, refused.Message);
        Assert.Equal(22, follower.Pool.Read(g => KvGuest.Get(g, 2))); // the state it stopped at is intact
    }

    [Fact]
    public async Task AValidInjectedDelta_IsApplied_SoTheDamageTestsAboveTestTheDamage()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await PublishCommitsAsync(leader, connection, "valid", 1);

        await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options("valid"), OneReplica);
        CommitRecord injected = Record(2, leader.Head);
        await InjectAsync(connection, "valid", 2, Delta(2, leader.Head));
        await follower.WaitForAsync(2).WaitAsync(Patience);
        FollowerRead<(int, byte)> read = await follower.ReadAsync(g => ValueTask.FromResult((KvGuest.Sp(g), g.Memory!.ReadSpan(3 * 4096 + 17, 1)[0])));
        Assert.Equal(((7, (byte)0x5A), 2L), (read.Result, read.Sequence));

        // Commit 2 again (a duplicate the stream stored twice) is skipped, not applied twice: exactly once.
        byte[] other = CommitCodec.Encode(new CommitRecord(2, leader.Head, 2 * 65536, [9UL], [], Array.Empty<byte>(), false),
            PoolSnapshot.ModuleHashOf(KvGuest.Module), compress: false);
        await InjectAsync(connection, "valid", 2, other);
        await InjectAsync(connection, "valid", 3, Delta(3, injected.Id));
        await follower.WaitForAsync(3).WaitAsync(Patience);
        Assert.Equal(7, (await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Sp(g)))).Result);
        Assert.False(follower.Completion.IsCompleted);
    }

    [Fact]
    public async Task ACommitLeftHalfPublished_IsRedoneByTheNextLeader_AndFollowersTakeTheRedo()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await PublishCommitsAsync(leader, connection, "redo", 1); // then that leader's publisher goes away

        await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options("redo"), OneReplica);
        // The first of two chunks of a commit 2 that a leader crashed while publishing: the rest never comes.
        byte[] half = Delta(2, leader.Head);
        await InjectAsync(connection, "redo", 2, half[..(half.Length / 2)], chunk: "0/2", parent: leader.Head);
        await using CommitPublisher next = await CommitPublisher.StartAsync(leader, connection, Options("redo")); // the stream's last whole commit is 1
        Put(leader, 2, 22); // commit 2 again, under the new publisher's epoch
        await AssertSameStateAsync(leader, follower);
        Assert.Equal(22, (await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Get(g, 2)))).Result);
    }

    [Fact]
    public async Task AFollowerOfAnotherModule_IsRefused_BySnapshot_AndByDelta()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection, Options("kv"));
        Put(leader, 1, 11);
        await publisher.WaitPublishedAsync(1).WaitAsync(Patience);
        WasmModule basic = TestModules.Get("basic");
        var options = new PoolOptions { ReplicaCount = 1, Instance = new InstanceOptions { Wasi = new CowWasm.Runtime.Wasi.WasiConfiguration() } };

        // No snapshot yet: the follower starts from its own instantiation, and the first delta names the other module.
        await using (CommitFollower follower = await CommitFollower.StartAsync(basic, TestModules.BasicLinker(basic), connection, Options("kv"), options))
        {
            var stopped = await Assert.ThrowsAsync<ReplicationException>(() => follower.Completion.WaitAsync(Patience));
            Assert.Contains("not the module this pool runs", stopped.Message);
            Assert.Equal(0, follower.Sequence);
        }

        await publisher.PublishSnapshotAsync();
        var refused = await Assert.ThrowsAsync<ReplicationException>(() =>
            CommitFollower.StartAsync(basic, TestModules.BasicLinker(basic), connection, Options("kv"), options));
        Assert.Contains("not of the module this follower runs", refused.Message);
        var missing = await Assert.ThrowsAsync<ReplicationException>(() =>
            CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), connection, Options("nobody"), OneReplica));
        Assert.Contains("no leader has published", missing.Message);
    }

    [Fact]
    public async Task ANodeKilledInAThreeNodeCluster_LosesNoCommit()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using NatsServers cluster = await NatsServers.StartAsync(count: 3);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: cluster up");
        await using NatsConnection leaderConnection = cluster.Connect();
        await using NatsConnection followerConnection = cluster.Connect(cluster.Nodes[1].Url + "," + cluster.Nodes[2].Url + "," + cluster.Nodes[0].Url);
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, leaderConnection, Options("cluster", replicas: 3));
        await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), followerConnection, Options("cluster", replicas: 3), OneReplica);
        for (int i = 0; i < 20; i++)
        {
            Put(leader, i, i + 1000);
        }

        await publisher.WaitPublishedAsync(20).WaitAsync(Patience);
        StreamInfo info = (await new NatsJSContext(leaderConnection).GetStreamAsync("COWWASM_cluster")).Info;
        string streamLeader = info.Cluster?.Leader ?? throw new InvalidOperationException("the stream reports no cluster leader");
        NatsServers.Node victim = cluster.Nodes.Single(n => n.Name == streamLeader);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: 20 commits published; killing {victim.Name}, the stream's leader");
        await victim.KillAsync(); // the node leading the stream: JetStream elects another and the publisher retries

        for (int i = 20; i < 40; i++)
        {
            Put(leader, i % 64, i + 1000);
        }

        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: 40 commits made");
        await publisher.WaitPublishedAsync(40).WaitAsync(Patience);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: 40 commits published");
        await AssertSameStateAsync(leader, follower);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: the follower has them");

        // A new follower replays all 40 commits from instantiation off the two surviving nodes: none was lost.
        await using NatsConnection lateConnection = cluster.Connect();
        await using CommitFollower late = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), lateConnection, Options("cluster", replicas: 3), OneReplica);
        Assert.Equal(0, late.SnapshotSequence);
        await AssertSameStateAsync(leader, late);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: a new follower replayed them");
        Assert.True(publisher.Completion.Status != TaskStatus.Faulted, publisher.Completion.Exception?.ToString());
    }

    [Fact]
    public async Task ASecondLeaderOnTheSameStream_IsFencedOff_AndItsPoolRefusesCommits()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection first = nats.Connect(), second = nats.Connect();
        await using GuestPool a = KvGuest.Pool(replicas: 1), b = KvGuest.Pool(replicas: 1);
        await using CommitPublisher pa = await CommitPublisher.StartAsync(a, first, Options("fenced"));
        await using CommitPublisher pb = await CommitPublisher.StartAsync(b, second, Options("fenced")); // both at commit 0
        Put(a, 1, 11);
        await pa.WaitPublishedAsync(1).WaitAsync(Patience);
        Put(b, 1, 99); // b's commit 1 is a different history: JetStream refuses it
        var fenced = await Assert.ThrowsAsync<ReplicationException>(() => pb.Completion.WaitAsync(Patience));
        Assert.Contains("another leader", fenced.Message);
        var refused = Assert.Throws<ReplicationException>(() => Put(b, 2, 22));
        Assert.Contains("stopped taking commits", refused.Message);
        Assert.Equal(1, b.CommitSequence); // the refused write was rolled back
        Assert.Equal(0, b.Read(g => KvGuest.Get(g, 2)));

        await using CommitFollower follower = await CommitFollower.StartAsync(KvGuest.Module, KvGuest.Linker(), first, Options("fenced"), OneReplica);
        await AssertSameStateAsync(a, follower); // only a's history is in the stream
        Assert.Equal(11, (await follower.ReadAsync(g => ValueTask.FromResult(KvGuest.Get(g, 1)))).Result);
    }

    [Fact]
    public async Task WhenTheLogIsGone_TheLeaderRefusesCommits_AfterTheRetryTimeout_AndKeepsServingReads()
    {
        NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection,
            Options("gone") with { RetryTimeout = TimeSpan.FromSeconds(1), MaxPendingCommits = 2 });
        try
        {
            Put(leader, 1, 11);
            await publisher.WaitPublishedAsync(1).WaitAsync(Patience);
            await nats.DisposeAsync(); // the only server dies

            Put(leader, 2, 22); // committed locally and queued: the publisher retries for a second, then gives up
            var stopped = await Assert.ThrowsAsync<ReplicationException>(() => publisher.Completion.WaitAsync(Patience));
            Assert.Contains("did not store", stopped.Message);
            Assert.Equal(1, publisher.PublishedSequence);
            var refused = Assert.Throws<ReplicationException>(() => Put(leader, 3, 33));
            Assert.Contains("stopped taking commits", refused.Message);
            Assert.Equal((2L, 22L, 0L), (leader.CommitSequence, leader.Read(g => KvGuest.Get(g, 2)), leader.Read(g => KvGuest.Get(g, 3))));
        }
        finally
        {
            await publisher.DisposeAsync();
            await nats.DisposeAsync();
        }
    }

    /// <summary>
    /// Pending commits are bounded in bytes as well as in number (before: 1,024 commits of any size could queue while
    /// JetStream was away): one commit over the budget alone goes, the next waits for room, then is refused and rolled back.
    /// </summary>
    [Fact]
    public async Task PendingCommits_AreBoundedInBytes()
    {
        NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        await using GuestPool leader = KvGuest.Pool(replicas: 1);
        CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection,
            Options("bytes") with { RetryTimeout = TimeSpan.FromSeconds(3), MaxPendingBytes = 4096 });
        try
        {
            Put(leader, 1, 11);
            await publisher.WaitPublishedAsync(1).WaitAsync(Patience);
            await nats.DisposeAsync(); // JetStream goes away: nothing is acknowledged from here on

            Put(leader, 2, 22); // alone over nothing pending: taken
            var refused = Assert.Throws<ReplicationException>(() => Put(leader, 3, 33));
            Assert.Contains("MaxPendingBytes", refused.Message, StringComparison.Ordinal);
            Assert.Equal((2L, 0L), (leader.CommitSequence, leader.Read(g => KvGuest.Get(g, 3))));
        }
        finally
        {
            await publisher.DisposeAsync();
            await nats.DisposeAsync();
        }
    }

    [Fact]
    public async Task ACommitThatChangedTheLeadersTables_StopsTheFollower_InsteadOfDivergingSilently()
    {
        await using NatsServers nats = await NatsServers.StartAsync();
        await using NatsConnection connection = nats.Connect();
        WasmModule tables = TestModules.Get("tables");
        await using GuestPool leader = GuestPool.Create(tables, new Linker(), OneReplica);
        await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader, connection, Options("tables"));
        await using CommitFollower follower = await CommitFollower.StartAsync(tables, new Linker(), connection, Options("tables"), OneReplica);
        leader.Write(g =>
        {
            g.GetAction<int>("minit")(0); // memory only: follows
            return 0;
        });
        await follower.WaitForAsync(1).WaitAsync(Patience);
        leader.Write(g =>
        {
            g.GetAction<int>("set_two")(1); // a table element: a native address of the leader's process
            return 0;
        });
        var stopped = await Assert.ThrowsAsync<ReplicationException>(() => follower.Completion.WaitAsync(Patience));
        Assert.Contains("tables", stopped.Message);
        Assert.Equal(1, follower.Sequence);
    }
}

[CollectionDefinition(nameof(ReplicationCollection), DisableParallelization = true)]
public sealed class ReplicationCollection;
