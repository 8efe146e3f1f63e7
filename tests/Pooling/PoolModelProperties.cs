using CowWasm.Memory;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// Random sequences of {write k=v, failing write, trapping write, read k (after scribbling), grow} against a
/// dictionary model, for every strategy: reads always see exactly the committed model (values, the stack
/// pointer global, the memory size).
/// </summary>
public sealed class PoolModelProperties
{
    private abstract record Op;

    private sealed record Put(int Key, long Value) : Op;

    private sealed record FailingPut(int Key, long Value, bool Trap) : Op;

    private sealed record Read(int Key, int Seed) : Op;

    private sealed record Grow : Op;

    private static readonly Arbitrary<Op[]> s_ops =
        Gen.ArrayOf(
            from kind in Gen.Choose(0, 99)
            from key in Gen.Choose(0, 15)
            from value in Gen.Choose(int.MinValue, int.MaxValue)
            from flag in Gen.Elements(true, false)
            select kind switch
            {
                < 35 => (Op)new Put(key, value * 3L),
                < 50 => new FailingPut(key, value, flag),
                < 95 => new Read(key, value),
                _ => new Grow(),
            }).ToArbitrary();

    public static TheoryData<SyncStrategyKind, ReplicaResetMode> Strategies() => new()
    {
        { SyncStrategyKind.FullCopy, ReplicaResetMode.Madvise },
        { SyncStrategyKind.DirtyCopy, ReplicaResetMode.Madvise },
        { SyncStrategyKind.SharedBase, ReplicaResetMode.Madvise },
        { SyncStrategyKind.SharedBase, ReplicaResetMode.KeepResident },
    };

    [Theory]
    [MemberData(nameof(Strategies))]
    public void RandomTransactions_ReadsSeeExactlyTheCommittedModel(SyncStrategyKind strategy, ReplicaResetMode mode) =>
        Properties.Check(s_ops, ops => Run(ops, new SyncOptions { Strategy = strategy, ResetMode = mode }), $"pool/{strategy}/{mode}");

    private static void Run(Op[] ops, SyncOptions sync)
    {
        using GuestPool pool = KvGuest.Pool(sync, replicas: 2);
        var model = new Dictionary<int, long>();
        int sp = 65536, pages = 2;
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
                    break;
                case FailingPut f:
                    Assert.Throws<WasmTrapException>(() => pool.Write<int>(g =>
                    {
                        g.GetFunction(f.Trap ? "put_then_trap" : "put_then_fail").Invoke([(uint)f.Key, (ulong)f.Value], []);
                        return 0;
                    }));
                    break;
                case Read r:
                    (long value, int seenSp, int seenPages) = pool.Read(g =>
                    {
                        var seen = (KvGuest.Get(g, r.Key), KvGuest.Sp(g), g.GetFunction<int>("size")());
                        g.GetAction<int>("scribble")(r.Seed);
                        KvGuest.Put(g, r.Key, r.Seed);
                        return seen;
                    });
                    Assert.Equal(model.GetValueOrDefault(r.Key), value);
                    Assert.Equal(sp, seenSp);
                    Assert.Equal(pages, seenPages);
                    break;
                case Grow when pages < 64:
                    Assert.Equal(pages, pool.Write(g => g.GetFunction<int, int>("grow")(1)));
                    pages++;
                    break;
            }
        }
    }
}
