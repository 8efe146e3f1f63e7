using CowWasm.Memory;
using CowWasm.Memory.Sync;

namespace CowWasm.Tests.Support;

/// <summary>Every strategy, and SharedBase with both reset modes: the rows pool-level theories run over.</summary>
public static class StrategyCases
{
    public static TheoryData<SyncStrategyKind, ReplicaResetMode> All => new()
    {
        { SyncStrategyKind.FullCopy, ReplicaResetMode.Madvise },
        { SyncStrategyKind.DirtyCopy, ReplicaResetMode.Madvise },
        { SyncStrategyKind.SharedBase, ReplicaResetMode.Madvise },
        { SyncStrategyKind.SharedBase, ReplicaResetMode.KeepResident },
    };
}
