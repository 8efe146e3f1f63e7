using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Memory;

[CollectionDefinition(nameof(HygieneCollection), DisableParallelization = true)]
public sealed class HygieneCollection;

/// <summary>Creating and disposing many views and replicas returns fds and mappings to baseline. Runs alone.</summary>
[Collection(nameof(HygieneCollection))]
public sealed class HygieneTests
{
    private const int Count = 10_000;

    [Fact]
    public void TenThousandViews_CreatedAndDisposed_LeaveNoFdsOrMappings()
    {
        using var pageBase = PageBase.Create(8);
        AssertNoLeak(() =>
        {
            for (int i = 0; i < Count; i++)
            {
                using var view = new CowView(pageBase, 8, 16);
                Bytes.Fill(view, i % 8, 1);
                view.Resize(4 + (i % 5));
            }
        });
    }

    [Theory]
    [InlineData(SyncStrategyKind.SharedBase, TrackerKind.CowFile)]
    [InlineData(SyncStrategyKind.DirtyCopy, TrackerKind.UffdWriteProtect)]
    [InlineData(SyncStrategyKind.FullCopy, TrackerKind.Compare)]
    public void TenThousandReplicas_CreatedAndDisposed_LeaveNoFdsOrMappings(SyncStrategyKind kind, TrackerKind replicaTracker)
    {
        if (!DirtyTracker.IsSupported(replicaTracker))
        {
            replicaTracker = TrackerKind.Compare;
        }

        AssertNoLeak(() =>
        {
            using SyncStrategy sync = SyncStrategy.Create(new SyncOptions
            {
                Strategy = kind,
                ReplicaTracker = kind == SyncStrategyKind.SharedBase ? null : replicaTracker,
                InitialPageCount = 4,
                MaxPageCount = 8,
            });
            for (int i = 0; i < Count; i++)
            {
                using Replica replica = sync.CreateReplica();
                Bytes.Fill(replica.Memory, i % 4, 1);
                sync.ResetReplica(replica);
            }

            // And replicas left to the strategy's Dispose.
            for (int i = 0; i < 100; i++)
            {
                sync.CreateReplica();
            }
        });
    }

    private static void AssertNoLeak(Action body)
    {
        body(); // warm-up: lazily opened process-wide fds (pagemap) and runtime mappings
        Quiesce();
        int fds = ProcessResources.OpenFds();
        int maps = ProcessResources.Mappings();
        body();
        Quiesce();
        Assert.Equal(fds, ProcessResources.OpenFds());
        Assert.InRange(ProcessResources.Mappings(), 0, maps + 8); // the runtime's own heap may map a few regions
    }

    /// <summary>Handles other tests abandoned to the finalizer close now, not in the middle of a count.</summary>
    private static void Quiesce()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
