using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Pooling;

/// <summary>
/// Tables and dropped segments in a pool (tests/Guests/tables.wat): a read's changes are gone before the next read,
/// a write's reach every replica, a rolled-back write's are undone, and a snapshot refuses what it cannot hold.
/// </summary>
public sealed class PoolTableTests
{
    private static GuestPool Pool(int replicas, ReadIsolation isolation = ReadIsolation.PerRead) =>
        GuestPool.Create(TestModules.Get("tables"), new Linker(), new PoolOptions { ReplicaCount = replicas, Isolation = isolation });

    private static int Call(IGuestInstance g, int index) => g.GetFunction<int, int>("call")(index);

    private static int Size(IGuestInstance g) => g.GetFunction<int>("size")();

    /// <summary>Every change a guest can make to tables and segments.</summary>
    private static void ChangeEverything(IGuestInstance g)
    {
        g.GetAction<int>("set_two")(1);
        g.GetFunction<int, int>("grow")(4);
        g.GetAction<int>("tinit")(4);
        g.GetAction("edrop")();
        g.GetAction("ddrop")();
    }

    /// <summary>The instantiated state: table [one, one], both passive segments still there.</summary>
    private static void AssertInitial(IGuestInstance g)
    {
        Assert.Equal(2, Size(g));
        Assert.Equal(1, Call(g, 1));
        g.GetAction<int>("tinit")(0);
        Assert.Equal(3, Call(g, 1));
        g.GetAction<int>("minit")(100);
        Assert.Equal("segment"u8.ToArray(), g.ReadMemory(100, 7).ToArray());
    }

    [Theory]
    [InlineData(ReadIsolation.PerRead)]
    [InlineData(ReadIsolation.PerCommit)]
    public void AReadsTableChangesAndDrops_AreGoneBeforeTheNextRead(ReadIsolation isolation)
    {
        using GuestPool pool = Pool(replicas: 1, isolation);
        pool.Read(g =>
        {
            ChangeEverything(g);
            return 0;
        });
        if (isolation == ReadIsolation.PerCommit)
        {
            // A replica keeps its reads' effects until the next commit: then it must be back to the committed tables.
            Assert.Equal(6, pool.Read(Size));
            pool.Write(g =>
            {
                g.GetFunction("poke").Invoke([0, 0], []);
                return 0;
            });
        }

        pool.Read(g =>
        {
            AssertInitial(g);
            return 0;
        });
        Assert.Throws<WasmTrapException>(() => pool.Read<int>(g =>
        {
            ChangeEverything(g);
            throw new WasmTrapException(TrapKind.Unreachable, "test");
        }));
        pool.Read(g =>
        {
            AssertInitial(g);
            return 0;
        });
    }

    [Fact]
    public void AWritesTableChanges_ReachEveryReplica()
    {
        using GuestPool pool = Pool(replicas: 3);
        pool.Write(g =>
        {
            g.GetFunction("poke").Invoke([0, 40], []);
            g.GetAction<int>("set_two")(1);
            g.GetFunction<int, int>("grow")(2);
            g.GetAction("edrop")();
            return 0;
        });

        // Idle replicas queue in order, so consecutive reads visit all three.
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal((42, 4), pool.Read(g => (Call(g, 1), Size(g))));
        }

        // The dropped element segment stays dropped on every replica: table.init of it traps.
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(TrapKind.OutOfBounds, Assert.Throws<WasmTrapException>(() => pool.Read<int>(g =>
            {
                g.GetAction<int>("tinit")(0);
                return 0;
            })).Kind);
        }
    }

    [Fact]
    public void ARolledBackWritesTableChanges_AreUndone_OnTheLeaderAndReplicas()
    {
        using GuestPool pool = Pool(replicas: 2);
        Assert.Throws<InvalidOperationException>(() => pool.Write<int>(g =>
        {
            ChangeEverything(g);
            throw new InvalidOperationException("the write fails after changing the tables");
        }));

        pool.Write(g =>
        {
            AssertInitial(g); // the leader's tables were rolled back (tinit/minit here are committed: harmless below)
            return 0;
        });
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal((3, 2), pool.Read(g => (Call(g, 1), Size(g))));
        }
    }

    [Fact]
    public void SaveSnapshot_RefusesCommittedTableChanges_ButNotAReadsOrARolledBackWrites()
    {
        string dir = Directory.CreateTempSubdirectory("cowwasm-tables-").FullName;
        try
        {
            using GuestPool pool = Pool(replicas: 1);
            pool.Read(g =>
            {
                ChangeEverything(g);
                return 0;
            });
            Assert.Throws<InvalidOperationException>(() => pool.Write<int>(g =>
            {
                ChangeEverything(g);
                throw new InvalidOperationException("rolled back");
            }));
            pool.SaveSnapshot(Path.Combine(dir, "before.snap"));

            pool.Write(g =>
            {
                g.GetAction<int>("set_two")(0);
                return 0;
            });
            var error = Assert.Throws<NotSupportedException>(() => pool.SaveSnapshot(Path.Combine(dir, "after.snap")));
            Assert.Contains("tables", error.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(dir, "after.snap")));
            Assert.Equal(2, pool.Read(g => Call(g, 0))); // the pool keeps serving
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
