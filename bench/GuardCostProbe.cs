using System.Globalization;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary>
/// <c>guard-cost [REPLICAS]</c>: what guard-page reservations cost a pool. A 20 MiB guest (320 Wasm pages, max 4 GiB)
/// built with guard pages and with software checks; for each, a SharedBase pool of REPLICAS (default 64) replicas,
/// one read per replica touching 16 pages; reports the growth of the process's address space (VmSize), page tables
/// (VmPTE) and mapping count while the pool lives.
/// </summary>
internal static class GuardCostProbe
{
    private const string Guest = """
        (module
          (memory (export "memory") 320)
          (func (export "touch") (local $i i32)
            (loop $l
              (i32.store (i32.mul (local.get $i) (i32.const 65536)) (local.get $i))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const 16))))))
        """;

    public static int Run(string[] args)
    {
        int replicas = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 64;
        byte[] wasm = BenchGuests.Assemble(Guest);
        Console.WriteLine($"| bounds checks | replicas | VmSize growth | VmPTE growth | mappings added |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (BoundsChecks checks in new[] { BoundsChecks.Software, BoundsChecks.GuardPages })
        {
            using WasmModule module = WasmModule.Load(wasm, new ArtifactOptions { BoundsChecks = checks });
            GC.Collect();
            (long sizeBefore, long pteBefore) = (Status("VmSize"), Status("VmPTE"));
            int mapsBefore = File.ReadAllLines("/proc/self/maps").Length;
            using (var pool = GuestPool.Create(module, new Linker(), new PoolOptions
            {
                ReplicaCount = replicas,
                Sync = new SyncOptions { Strategy = SyncStrategyKind.SharedBase, ReplicaTracker = TrackerKind.StoreBarrier },
            }))
            {
                Task.WaitAll([.. Enumerable.Range(0, replicas).Select(_ => pool.ReadAsync(g =>
                {
                    g.GetFunction("touch").Invoke([], []);
                    Thread.Sleep(5); // keep the replica rented so every replica serves one
                    return ValueTask.FromResult(0);
                }).AsTask())]);
                long size = Status("VmSize") - sizeBefore, pte = Status("VmPTE") - pteBefore;
                int maps = File.ReadAllLines("/proc/self/maps").Length - mapsBefore;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {checks} | {replicas} | {size / 1048576.0:N1} GiB | {pte:N0} kB | {maps} |"));
            }
        }

        return 0;
    }

    /// <summary>A /proc/self/status field in kB.</summary>
    private static long Status(string field)
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
