using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Memory;

/// <summary>
/// Model-based properties: random sequences of leader writes, commits, rollbacks, growth and replica
/// scribble+reset, checked against plain byte arrays for every strategy × every tracker that applies.
/// </summary>
public sealed class StrategyModelProperties
{
    private const int MaxPages = 48;

    private abstract record Op;

    private sealed record Write(int Offset, int Length, byte Value) : Op;

    private sealed record CommitOp : Op;

    private sealed record RollbackOp : Op;

    private sealed record Grow(int PageCount) : Op;

    private sealed record Scribble(int Replica, int Offset, int Length, byte Value) : Op;

    private sealed record Scenario(int InitialPages, int Replicas, Op[] Ops)
    {
        public override string ToString() =>
            $"initial={InitialPages} replicas={Replicas} ops=[{string.Join("; ", Ops.Select(o => o.ToString()))}]";
    }

    private static readonly Gen<Op> s_op =
        from kind in Gen.Choose(0, 99)
        from offset in Gen.Choose(0, 1 << 30)
        from length in Gen.Choose(1, 3 * Pages.Size)
        from value in Gen.Choose(0, 255)
        from which in Gen.Choose(0, 7)
        select kind switch
        {
            < 40 => (Op)new Write(offset, length, (byte)value),
            < 60 => new CommitOp(),
            < 68 => new RollbackOp(),
            < 75 => new Grow(1 + which),
            _ => new Scribble(which, offset, length, (byte)value),
        };

    private static readonly Arbitrary<Scenario> s_scenarios =
        (from initial in Gen.Choose(0, 16)
         from replicas in Gen.Choose(1, 3)
         from ops in Gen.ArrayOf(s_op)
         select new Scenario(initial, replicas, ops)).ToArbitrary();

    /// <summary>
    /// Writes and scribbles of only two byte values: many store the bytes already there (the case of content-aware
    /// commits and resets).
    /// </summary>
    private static readonly Arbitrary<Scenario> s_twoValueScenarios =
        (from initial in Gen.Choose(0, 16)
         from replicas in Gen.Choose(1, 3)
         from ops in Gen.ArrayOf(s_op.Select(o => o switch
         {
             Write w => w with { Value = (byte)(w.Value & 1) },
             Scribble s => s with { Value = (byte)(s.Value & 1) },
             _ => o,
         }))
         select new Scenario(initial, replicas, ops)).ToArbitrary();

    public static TheoryData<SyncStrategyKind, TrackerKind, LeaderResetMode, ReplicaResetMode> ContentAwareCombinations()
    {
        var rows = new TheoryData<SyncStrategyKind, TrackerKind, LeaderResetMode, ReplicaResetMode>();
        foreach (SyncStrategyKind strategy in Enum.GetValues<SyncStrategyKind>())
        {
            rows.Add(strategy, TrackerKind.CowFile, LeaderResetMode.Discard, ReplicaResetMode.Madvise);
            rows.Add(strategy, TrackerKind.StoreBarrier, LeaderResetMode.Discard, ReplicaResetMode.Madvise);
            rows.Add(strategy, TrackerKind.StoreBarrier, LeaderResetMode.KeepResident, ReplicaResetMode.Madvise);
        }

        rows.Add(SyncStrategyKind.SharedBase, TrackerKind.CowFile, LeaderResetMode.Discard, ReplicaResetMode.KeepResident);
        rows.Add(SyncStrategyKind.SharedBase, TrackerKind.StoreBarrier, LeaderResetMode.KeepResident, ReplicaResetMode.KeepResident);
        return rows;
    }

    /// <summary>
    /// Content-aware commit and reset never lose a changed page, with writes and scribbles of identical and of
    /// different bytes (private replicas and keep-resident replicas copy back only differing pages).
    /// </summary>
    [CowProperty]
    public Property RandomTransactions_WithContentAwareSync_MatchByteArrayModel() =>
        Prop.ForAll(s_twoValueScenarios, scenario => Configurations.Each(ContentAwareCombinations(), c => Run(scenario, new SyncOptions
        {
            Strategy = (SyncStrategyKind)c[0]!,
            LeaderTracker = (TrackerKind)c[1]!,
            LeaderReset = (LeaderResetMode)c[2]!,
            SkipUnchangedPages = true,
            ResetMode = (ReplicaResetMode)c[3]!,
            ReplicaTracker = TrackerKind.StoreBarrier,
            InitialPageCount = scenario.InitialPages,
            MaxPageCount = MaxPages,
        })));

    public static TheoryData<SyncStrategyKind, TrackerKind, ReplicaResetMode, TrackerKind?> Combinations()
    {
        var rows = new TheoryData<SyncStrategyKind, TrackerKind, ReplicaResetMode, TrackerKind?>();
        TrackerKind[] supported = [.. Trackers.Supported.Where(t => t != TrackerKind.SoftDirty)];
        foreach (TrackerKind leader in supported)
        {
            foreach (TrackerKind replica in supported)
            {
                // Replica trackers over views (SharedBase) and over private memory (FullCopy, DirtyCopy), crossed
                // with every leader tracker; FullCopy/DirtyCopy only where the replica tracker watches private memory.
                if (replica != TrackerKind.Compare) // rejected for views: see Options_Inconsistent_AreRejectedClearly
                {
                    rows.Add(SyncStrategyKind.SharedBase, leader, ReplicaResetMode.Madvise, replica);
                    rows.Add(SyncStrategyKind.SharedBase, leader, ReplicaResetMode.KeepResident, replica);
                }

                if (DirtyTracker.AppliesToPrivateMemory(replica))
                {
                    rows.Add(SyncStrategyKind.DirtyCopy, leader, ReplicaResetMode.Madvise, replica);
                    rows.Add(SyncStrategyKind.FullCopy, leader, ReplicaResetMode.Madvise, replica);
                }
            }
        }

        return rows;
    }

    public static TheoryData<SyncStrategyKind> AllStrategies() =>
        new(Enum.GetValues<SyncStrategyKind>());

    [CowProperty]
    public Property RandomTransactions_MatchByteArrayModel() =>
        Prop.ForAll(s_scenarios, scenario => Configurations.Each(Combinations(), c => Run(scenario, new SyncOptions
        {
            Strategy = (SyncStrategyKind)c[0]!,
            LeaderTracker = (TrackerKind)c[1]!,
            ResetMode = (ReplicaResetMode)c[2]!,
            ReplicaTracker = (TrackerKind?)c[3],
            InitialPageCount = scenario.InitialPages,
            MaxPageCount = MaxPages,
        })));

    public static TheoryData<SyncStrategyKind, TrackerKind, ReplicaResetMode> KeepResidentLeaders()
    {
        var rows = new TheoryData<SyncStrategyKind, TrackerKind, ReplicaResetMode>();
        foreach (TrackerKind leader in new[] { TrackerKind.StoreBarrier, TrackerKind.UffdWriteProtect, TrackerKind.Compare }.Where(DirtyTracker.IsSupported))
        {
            foreach (SyncStrategyKind strategy in Enum.GetValues<SyncStrategyKind>())
            {
                rows.Add(strategy, leader, ReplicaResetMode.Madvise);
            }

            rows.Add(SyncStrategyKind.SharedBase, leader, ReplicaResetMode.KeepResident);
        }

        return rows;
    }

    /// <summary>The keep-resident leader: commits keep the pages, rollbacks copy the base back into them.</summary>
    [CowProperty]
    public Property RandomTransactions_WithAKeepResidentLeader_MatchByteArrayModel() =>
        Prop.ForAll(s_scenarios, scenario => Configurations.Each(KeepResidentLeaders(), c => Run(scenario, new SyncOptions
        {
            Strategy = (SyncStrategyKind)c[0]!,
            LeaderTracker = (TrackerKind)c[1]!,
            LeaderReset = LeaderResetMode.KeepResident,
            ResetMode = (ReplicaResetMode)c[2]!,
            ReplicaTracker = TrackerKind.StoreBarrier,
            InitialPageCount = scenario.InitialPages,
            MaxPageCount = MaxPages,
        })));

    [CowProperty(KernelFeature.SoftDirty)]
    public Property RandomTransactions_WithSoftDirtyTrackers_MatchByteArrayModel() =>
        Prop.ForAll(s_scenarios, scenario => Configurations.Each(AllStrategies(), c => Run(scenario, new SyncOptions
        {
            Strategy = (SyncStrategyKind)c[0]!,
            LeaderTracker = TrackerKind.SoftDirty,
            ReplicaTracker = (SyncStrategyKind)c[0]! == SyncStrategyKind.SharedBase ? null : TrackerKind.SoftDirty,
            InitialPageCount = scenario.InitialPages,
            MaxPageCount = MaxPages,
        })));

    private static void Run(Scenario scenario, SyncOptions options)
    {
        using SyncStrategy sync = SyncStrategy.Create(options);
        var replicas = Enumerable.Range(0, scenario.Replicas).Select(_ => sync.CreateReplica()).ToList();
        byte[] committed = new byte[Pages.ToBytes(scenario.InitialPages)];
        byte[] leader = (byte[])committed.Clone();
        int step = 0;
        foreach (Op op in scenario.Ops)
        {
            step++;
            switch (op)
            {
                case Write w when leader.Length > 0:
                {
                    int offset = w.Offset % leader.Length;
                    int length = Math.Min(w.Length, leader.Length - offset);
                    Span<byte> target = sync.Leader.GetSpan(offset, length);
                    for (int i = 0; i < length; i++)
                    {
                        target[i] = leader[offset + i] = (byte)(w.Value + i);
                    }

                    break;
                }

                case CommitOp:
                    CommitResult result = sync.Commit();
                    committed = (byte[])leader.Clone();
                    Assert.Equal(Pages.ToBytes(result.CommittedPageCount), committed.Length);
                    Bytes.AssertEqual(committed, sync.Leader, $"step {step}: leader after commit");
                    foreach (Replica replica in replicas)
                    {
                        Bytes.AssertEqual(committed, replica.Memory, $"step {step}: replica after commit");
                    }

                    break;

                case RollbackOp:
                    sync.Rollback();
                    leader = (byte[])committed.Clone();
                    Bytes.AssertEqual(leader, sync.Leader, $"step {step}: leader after rollback");
                    break;

                case Grow g:
                {
                    long target = sync.Leader.PageCount + g.PageCount;
                    if (target > MaxPages)
                    {
                        Assert.Throws<ArgumentOutOfRangeException>(() => sync.GrowLeader(target));
                        break;
                    }

                    sync.GrowLeader(target);
                    Array.Resize(ref leader, (int)Pages.ToBytes(target));
                    Bytes.AssertEqual(leader, sync.Leader, $"step {step}: leader after grow");
                    break;
                }

                case Scribble s when committed.Length > 0:
                {
                    Replica replica = replicas[s.Replica % replicas.Count];
                    int offset = s.Offset % committed.Length;
                    int length = Math.Min(s.Length, committed.Length - offset);
                    replica.Memory.GetSpan(offset, length).Fill(s.Value);
                    sync.ResetReplica(replica);
                    Bytes.AssertEqual(committed, replica.Memory, $"step {step}: replica after scribble+reset");
                    break;
                }
            }
        }

        Bytes.AssertEqual(leader, sync.Leader, "leader at end");
        foreach (Replica replica in replicas)
        {
            Bytes.AssertEqual(committed, replica.Memory, "replica at end");
        }
    }
}
