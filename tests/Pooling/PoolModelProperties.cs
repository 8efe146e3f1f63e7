using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// Random sequences of {write k=v, failing write, trapping write, read k (after scribbling), trapping read, grow}
/// against a dictionary model, for every strategy and both isolation levels. <see cref="ReadIsolation.PerRead"/>:
/// reads always see exactly the committed model (values, the stack pointer global, the memory size).
/// <see cref="ReadIsolation.PerCommit"/>: a read sees the committed model overlaid with what earlier reads wrote
/// since the last commit (exactly, with one replica; one of the candidates, with two), never a failed write's value,
/// and nothing of a read that trapped (its replica is reset at once).
/// </summary>
public sealed class PoolModelProperties
{
    private abstract record Op;

    private sealed record Put(int Key, long Value) : Op;

    private sealed record FailingPut(int Key, long Value, bool Trap) : Op;

    private sealed record Read(int Key, int Seed) : Op;

    private sealed record TrappingRead(int Key, int Seed) : Op;

    private sealed record Grow : Op;

    private const int ScribbledSp = 12345; // what kv.wat's scribble sets the stack pointer to

    private static readonly Arbitrary<Op[]> s_ops =
        Gen.ArrayOf(
            from kind in Gen.Choose(0, 99)
            from key in Gen.Choose(0, 15)
            from value in Gen.Choose(int.MinValue, int.MaxValue)
            from flag in Gen.Elements(true, false)
            select kind switch
            {
                < 30 => (Op)new Put(key, value * 3L),
                < 45 => new FailingPut(key, value * 3L + 1, flag), // never equal to a Put's value or (mostly) a read's seed
                < 88 => new Read(key, value),
                < 95 => new TrappingRead(key, value),
                _ => new Grow(),
            }).ToArbitrary();

    public static TheoryData<GuestRuntime, string, ReadIsolation, int> Cases()
    {
        var data = new TheoryData<GuestRuntime, string, ReadIsolation, int>();
        foreach (GuestRuntime runtime in new[] { GuestRuntime.Native, GuestRuntime.Wasmtime })
        {
            foreach (string config in Configs.Keys)
            {
                data.Add(runtime, config, ReadIsolation.PerRead, 2);
            }

            foreach (string config in new[] { "SharedBase/Madvise", "SharedBase/StoreBarrier/KeepResident/ContentAware", "DirtyCopy" })
            {
                data.Add(runtime, config, ReadIsolation.PerCommit, 1);
                data.Add(runtime, config, ReadIsolation.PerCommit, 2);
            }
        }

        return data;
    }

    private static readonly Dictionary<string, SyncOptions> Configs = new()
    {
        ["FullCopy"] = new() { Strategy = SyncStrategyKind.FullCopy },
        ["DirtyCopy"] = new() { Strategy = SyncStrategyKind.DirtyCopy },
        ["SharedBase/Madvise"] = new() { Strategy = SyncStrategyKind.SharedBase },
        ["SharedBase/KeepResident"] = new() { Strategy = SyncStrategyKind.SharedBase, ResetMode = ReplicaResetMode.KeepResident },
        ["SharedBase/StoreBarrier/KeepResident/ContentAware"] = new()
        {
            Strategy = SyncStrategyKind.SharedBase,
            LeaderTracker = TrackerKind.StoreBarrier,
            LeaderReset = LeaderResetMode.KeepResident,
            ReplicaTracker = TrackerKind.StoreBarrier,
            ResetMode = ReplicaResetMode.KeepResident,
            SkipUnchangedPages = true,
        },
        ["DirtyCopy/StoreBarrier/ContentAware"] = new()
        {
            Strategy = SyncStrategyKind.DirtyCopy,
            LeaderTracker = TrackerKind.StoreBarrier,
            ReplicaTracker = TrackerKind.StoreBarrier,
            SkipUnchangedPages = true,
        },
    };

    [CowProperty]
    public Property RandomTransactions_ReadsSeeWhatTheIsolationLevelAllows() =>
        Prop.ForAll(s_ops, ops => Configurations.Each(Cases(), c =>
            Run(ops, (GuestRuntime)c[0]!, Configs[(string)c[1]!], (ReadIsolation)c[2]!, (int)c[3]!)));

    private static void Run(Op[] ops, GuestRuntime runtime, SyncOptions sync, ReadIsolation isolation, int replicas)
    {
        using GuestPool pool = GuestPool.Create(KvGuest.On(runtime), KvGuest.Linker(),
            new PoolOptions { ReplicaCount = replicas, Sync = sync, Isolation = isolation });
        var model = new Dictionary<int, long>();
        var readWrites = new Dictionary<int, HashSet<long>>(); // PerCommit: what reads wrote since the last commit
        var exact = new Dictionary<int, long>(); // PerCommit with one replica: the newest read write per key, exactly
        bool scribbled = false;
        int sp = 65536, pages = 2;

        void Committed()
        {
            readWrites.Clear();
            exact.Clear();
            scribbled = false;
        }

        foreach (Op op in ops)
        {
            switch (op)
            {
                case Put p:
                    pool.Write(g =>
                    {
                        KvGuest.Put(g, p.Key, p.Value);
                        return 0;
                    });
                    model[p.Key] = p.Value;
                    sp -= 16;
                    Committed();
                    break;
                case FailingPut f:
                    Assert.Throws<WasmTrapException>(() => pool.Write<int>(g =>
                    {
                        g.GetFunction(f.Trap ? "put_then_trap" : "put_then_fail").Invoke([(uint)f.Key, (ulong)f.Value], []);
                        return 0;
                    }));
                    break; // rolled back: no commit, so PerCommit replicas keep their reads' effects
                case Read r:
                    (long value, int seenSp, int seenPages) = pool.Read(g =>
                    {
                        var seen = (KvGuest.Get(g, r.Key), KvGuest.Sp(g), g.GetFunction<int>("size")());
                        g.GetAction<int>("scribble")(r.Seed);
                        KvGuest.Put(g, r.Key, r.Seed);
                        return seen;
                    });
                    long committedValue = model.GetValueOrDefault(r.Key);
                    Assert.Equal(pages, seenPages);
                    if (isolation == ReadIsolation.PerRead)
                    {
                        Assert.Equal(committedValue, value);
                        Assert.Equal(sp, seenSp);
                    }
                    else if (replicas == 1)
                    {
                        Assert.Equal(exact.TryGetValue(r.Key, out long written) ? written : committedValue, value);
                        Assert.Equal(scribbled ? ScribbledSp - 16 : sp, seenSp);
                    }
                    else
                    {
                        Assert.True(value == committedValue || (readWrites.TryGetValue(r.Key, out HashSet<long>? candidates) && candidates.Contains(value)),
                            $"key {r.Key}: saw {value}; committed {committedValue}, read writes {string.Join(",", readWrites.GetValueOrDefault(r.Key) ?? [])}");
                        Assert.True(seenSp == sp || seenSp == ScribbledSp - 16, $"sp {seenSp}; committed {sp}");
                    }

                    exact[r.Key] = r.Seed;
                    scribbled = true;
                    if (!readWrites.TryGetValue(r.Key, out HashSet<long>? set))
                    {
                        readWrites[r.Key] = set = [];
                    }

                    set.Add(r.Seed);
                    break;
                case TrappingRead t:
                    Assert.Throws<WasmTrapException>(() => pool.Read<int>(g =>
                    {
                        g.GetAction<int>("scribble")(t.Seed);
                        g.GetFunction("put_then_trap").Invoke([(uint)t.Key, (ulong)t.Seed], []);
                        return 0;
                    }));
                    if (replicas == 1)
                    {
                        Committed(); // the only replica was reset to the committed state: earlier reads' effects are gone too
                    }

                    break;
                case Grow when pages < 64:
                    Assert.Equal(pages, pool.Write(g => g.GetFunction<int, int>("grow")(1)));
                    pages++;
                    Committed();
                    break;
            }
        }
    }
}
