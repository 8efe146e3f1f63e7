using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Memory;

public sealed class StrategyTests
{
    public static TheoryData<SyncStrategyKind> Strategies() => new(Enum.GetValues<SyncStrategyKind>());

    private static SyncStrategy Create(SyncStrategyKind kind, long pages = 16, long max = 64,
        ReplicaResetMode mode = ReplicaResetMode.Madvise) =>
        SyncStrategy.Create(new SyncOptions
        {
            Strategy = kind,
            InitialPageCount = pages,
            MaxPageCount = max,
            ResetMode = mode,
        });

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Commit_WithTwoDirtyRuns_ReportsThemAndReplicasSeeNewBytes(SyncStrategyKind kind)
    {
        using SyncStrategy sync = Create(kind);
        Replica replica = sync.CreateReplica();
        Bytes.Fill(sync.Leader, 2, 1);
        Bytes.Fill(sync.Leader, 3, 1);
        Bytes.Fill(sync.Leader, 9, 2);

        CommitResult result = sync.Commit();

        Assert.Equal(new CommitResult(3, 2, 16, 1), result);
        Assert.Equal(1, replica.Memory.GetPage(3)[0]);
        Assert.Equal(2, replica.Memory.GetPage(9)[0]);
        Assert.Equal(0, replica.Memory.GetPage(4)[0]);
    }

    [Fact]
    public void SharedBase_NewReplica_SharesEveryPageWithTheBase()
    {
        using SyncStrategy sync = Create(SyncStrategyKind.SharedBase, pages: 256, max: 256);
        Bytes.Fill(sync.Leader, 100, 4);
        sync.Commit();
        Replica replica = sync.CreateReplica();
        for (int page = 0; page < 256; page++)
        {
            _ = replica.Memory.GetPage(page)[0];
        }

        var runs = new List<PageRun>();
        ((CowView)replica.Memory).CollectPrivatePages(runs);
        Assert.Empty(runs);
        Assert.Equal(4, replica.Memory.GetPage(100)[0]);
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Rollback_AfterGrowAndWrites_RestoresCommittedBytesAndLength(SyncStrategyKind kind)
    {
        using SyncStrategy sync = Create(kind);
        Bytes.Fill(sync.Leader, 1, 5);
        sync.Commit();
        Bytes.Fill(sync.Leader, 1, 6);
        sync.GrowLeader(20);
        Bytes.Fill(sync.Leader, 18, 6);

        Assert.Equal(2, sync.Rollback());

        Assert.Equal(16, sync.Leader.PageCount);
        Assert.Equal(5, sync.Leader.GetPage(1)[0]);
        sync.GrowLeader(20); // the rolled-back growth left no bytes behind in the base
        Assert.Equal(0, sync.Leader.GetPage(18)[0]);
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Commit_AfterGrow_ReplicasFollowTheLength(SyncStrategyKind kind)
    {
        using SyncStrategy sync = Create(kind);
        Replica replica = sync.CreateReplica();
        sync.GrowLeader(40);
        Bytes.Fill(sync.Leader, 39, 8);
        sync.Commit();
        Assert.Equal(40, replica.Memory.PageCount);
        Assert.Equal(8, replica.Memory.GetPage(39)[0]);
        Assert.Equal(40, sync.CommittedPageCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => sync.GrowLeader(65));
        Assert.Throws<ArgumentOutOfRangeException>(() => sync.GrowLeader(39));
    }

    [KernelFact(CowWasm.Memory.Native.KernelFeature.UserfaultfdWriteProtectAsync)]
    public void KeepResident_WithUffdReplicaTracker_RestoresOnlyThePagesTheReadWrote()
    {
        using SyncStrategy sync = SyncStrategy.Create(new SyncOptions
        {
            InitialPageCount = 16,
            ResetMode = ReplicaResetMode.KeepResident,
            ReplicaTracker = TrackerKind.UffdWriteProtect,
        });
        Replica replica = sync.CreateReplica();
        for (int page = 0; page < 8; page++)
        {
            Bytes.Fill(replica.Memory, page, 1);
        }

        Assert.Equal(8, sync.ResetReplica(replica));
        Bytes.Fill(replica.Memory, 2, 1);
        Assert.Equal(1, sync.ResetReplica(replica)); // 8 pages resident, 1 rewritten
        Bytes.Fill(sync.Leader, 2, 7);
        sync.Commit(); // refreshes the resident page 2 without reporting it as a scribble
        Assert.Equal(7, replica.Memory.GetPage(2)[0]);
        Assert.Equal(0, sync.ResetReplica(replica));
    }

    [Theory]
    [InlineData(SyncStrategyKind.SharedBase, ReplicaResetMode.Madvise)]
    [InlineData(SyncStrategyKind.SharedBase, ReplicaResetMode.KeepResident)]
    [InlineData(SyncStrategyKind.DirtyCopy, ReplicaResetMode.Madvise)]
    public void ResetReplica_ReportsPagesRestored_AndKeepResidentKeepsThemPrivate(SyncStrategyKind kind, ReplicaResetMode mode)
    {
        using SyncStrategy sync = Create(kind, mode: mode);
        Replica replica = sync.CreateReplica();
        Bytes.Fill(replica.Memory, 4, 1);
        Bytes.Fill(replica.Memory, 5, 1);

        Assert.Equal(2, sync.ResetReplica(replica));
        Assert.Equal(0, replica.Memory.GetPage(4)[0]);
        if (replica.Memory is CowView view)
        {
            var runs = new List<PageRun>();
            view.CollectPrivatePages(runs);
            Assert.Equal(mode == ReplicaResetMode.KeepResident ? [new PageRun(4, 2)] : [], runs);
        }
    }

    [Fact]
    public void KeepResident_OverItsByteCap_DiscardsTheReplicasPrivateCopies()
    {
        using SyncStrategy sync = SyncStrategy.Create(new SyncOptions
        {
            Strategy = SyncStrategyKind.SharedBase,
            ResetMode = ReplicaResetMode.KeepResident,
            ReplicaTracker = TrackerKind.StoreBarrier,
            KeepResidentMaxBytes = Pages.ToBytes(8),
            InitialPageCount = 32,
        });
        Replica replica = sync.CreateReplica();
        var view = (CowView)replica.Memory;
        var runs = new List<PageRun>();
        for (int page = 0; page < 6; page++)
        {
            Bytes.Fill(replica.Memory, page, 1);
        }

        sync.ResetReplica(replica);
        view.CollectPrivatePages(runs);
        Assert.Equal([new PageRun(0, 6)], runs); // under the cap: kept

        for (int page = 6; page < 10; page++)
        {
            Bytes.Fill(replica.Memory, page, 1); // 10 resident pages would exceed 8
        }

        sync.ResetReplica(replica);
        runs.Clear();
        view.CollectPrivatePages(runs);
        Assert.Empty(runs);
        Assert.All(Enumerable.Range(0, 10), page => Assert.Equal(0, replica.Memory.GetPage(page)[0]));
        Bytes.Fill(sync.Leader, 3, 7);
        sync.Commit(); // the replica is clean: the commit's invariant check passes
        Assert.Equal(7, replica.Memory.GetPage(3)[0]);
    }

    [Fact]
    public void SoftDirty_IsRefusedForASecondReplica_BeforeTheKernelIsAsked()
    {
        var options = new CowWasm.Pool.PoolOptions { ReplicaCount = 2, Sync = new SyncOptions { ReplicaTracker = TrackerKind.SoftDirty } };
        var e = Assert.Throws<ArgumentException>(() => CowWasm.Pool.GuestPool.Create(TestModules.Get("kv"), new CowWasm.Runtime.Linker(), options));
        Assert.Contains("one replica per strategy", e.Message);
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void ResetReplica_OnDistinctReplicasConcurrently_EachEndsClean(SyncStrategyKind kind)
    {
        using SyncStrategy sync = Create(kind);
        Bytes.Fill(sync.Leader, 0, 3);
        sync.Commit();
        Replica[] replicas = [.. Enumerable.Range(0, 4).Select(_ => sync.CreateReplica())];
        Parallel.ForEach(replicas, replica =>
        {
            for (int i = 0; i < 200; i++)
            {
                Bytes.Fill(replica.Memory, i % 16, (byte)(i + 10));
                sync.ResetReplica(replica);
                Assert.Equal(3, replica.Memory.GetPage(0)[0]);
                Assert.Equal(0, replica.Memory.GetPage(i % 16 == 0 ? 1 : i % 16)[1]);
            }
        });
    }

#if DEBUG
    [Fact]
    public void Commit_WithAReplicaNotResetAfterARead_ThrowsInDebugBuilds()
    {
        using SyncStrategy sync = Create(SyncStrategyKind.SharedBase);
        Replica replica = sync.CreateReplica();
        Bytes.Fill(replica.Memory, 3, 1);
        Bytes.Fill(sync.Leader, 3, 2);
        var e = Assert.Throws<InvalidOperationException>(() => sync.Commit());
        Assert.Contains("Invariant violated", e.Message);
    }
#endif

    [Fact]
    public void Options_Inconsistent_AreRejectedClearly()
    {
        var e = Assert.Throws<ArgumentException>(() => SyncStrategy.Create(new SyncOptions
        {
            Strategy = SyncStrategyKind.DirtyCopy,
            ReplicaTracker = TrackerKind.CowFile,
        }));
        Assert.Contains("only watches views", e.Message);
        e = Assert.Throws<ArgumentException>(() => SyncStrategy.Create(new SyncOptions { ReplicaTracker = TrackerKind.Compare }));
        Assert.Contains("identical bytes", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SyncStrategy.Create(new SyncOptions { InitialPageCount = 10, MaxPageCount = 5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyncStrategy.Create(new SyncOptions { MaxPageCount = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyncStrategy.Create(new SyncOptions { ReservedBytes = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => SyncStrategy.Create(new SyncOptions { ReservedBytes = PageMemory.MaxReservedBytes + 1 }));
        using (var empty = SyncStrategy.Create(new SyncOptions { MaxPageCount = 0 })) // a memory that can hold no page (Wasm `(memory 0 0)`)
        {
            Assert.Equal(0, empty.Leader.PageCount);
            Assert.Equal(Pages.Size, empty.Leader.ReservedBytes);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => SyncStrategy.Create(new SyncOptions { Strategy = (SyncStrategyKind)42 }));
        Assert.Throws<ArgumentNullException>(() => SyncStrategy.Create(null!));
    }

    [Fact]
    public void Replica_FromAnotherStrategy_IsRejected()
    {
        using SyncStrategy a = Create(SyncStrategyKind.SharedBase);
        using SyncStrategy b = Create(SyncStrategyKind.SharedBase);
        Replica replica = a.CreateReplica();
        Assert.Throws<ArgumentException>(() => b.ResetReplica(replica));
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Dispose_FreesReplicas_AndLaterUseThrows(SyncStrategyKind kind)
    {
        SyncStrategy sync = Create(kind);
        Replica replica = sync.CreateReplica();
        Replica other = sync.CreateReplica();
        other.Dispose();
        Assert.Equal(1, sync.ReplicaCount);
        Assert.Throws<ObjectDisposedException>(() => sync.ResetReplica(other));

        sync.Dispose();
        sync.Dispose();

        Assert.True(replica.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => replica.Memory.GetPage(0));
        Assert.Throws<ObjectDisposedException>(() => sync.Commit());
        Assert.Throws<ObjectDisposedException>(() => sync.Rollback());
        Assert.Throws<ObjectDisposedException>(() => sync.CreateReplica());
        Assert.Throws<ObjectDisposedException>(() => sync.GrowLeader(20));
        replica.Dispose();
    }
}
