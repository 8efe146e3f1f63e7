using System.Diagnostics;
using CowWasm.Memory;
using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;

namespace CowWasm.Bench;

/// <summary>
/// <c>./run.sh</c> until the strategy-comparison runner lands: one leader and a few replicas per strategy,
/// a transaction that dirties a handful of pages, commit, a read that scribbles, reset, a rollback — printing
/// what each step did and how long it took (single samples, after a warm-up transaction: indicative only,
/// the benchmarks in this project are the measurements).
/// </summary>
internal static class EngineDemo
{
    public static int Run(string[] args)
    {
        long pages = args.Length > 0 && long.TryParse(args[0], out long mib) ? mib * 256 : 64 * 256;
        const int Replicas = 4;
        const int DirtyPages = 16;

        Console.WriteLine($"CowWasm memory engine demo — {Environment.OSVersion.VersionString}, {Environment.ProcessorCount} CPUs");
        foreach (KernelFeature feature in Enum.GetValues<KernelFeature>())
        {
            Console.WriteLine($"  kernel feature {feature,-30} {(KernelFeatures.IsSupported(feature) ? "yes" : "no: " + KernelFeatures.Describe(feature))}");
        }

        Console.WriteLine();
        Console.WriteLine($"Memory {Pages.ToBytes(pages) >> 20} MiB ({pages} pages), {Replicas} replicas, {DirtyPages} dirty pages per write.");
        Console.WriteLine($"{"strategy",-11} {"tracker",-17} {"replica+",9} {"commit",10} {"dirty",6} {"reset",9} {"rollback",9}  check");
        foreach (SyncStrategyKind kind in Enum.GetValues<SyncStrategyKind>())
        {
            TrackerKind tracker = kind == SyncStrategyKind.FullCopy ? TrackerKind.AllPages : TrackerKind.CowFile;
            RunOne(new SyncOptions { Strategy = kind, LeaderTracker = tracker, InitialPageCount = pages, MaxPageCount = pages * 2 },
                Replicas, DirtyPages);
        }

        if (DirtyTracker.IsSupported(TrackerKind.UffdWriteProtect))
        {
            RunOne(new SyncOptions { Strategy = SyncStrategyKind.SharedBase, LeaderTracker = TrackerKind.UffdWriteProtect,
                InitialPageCount = pages, MaxPageCount = pages * 2 }, Replicas, DirtyPages);
        }

        Console.WriteLine();
        Console.WriteLine("replica+ = creating one replica; commit = collect + base write + replica update; reset = after a read");
        Console.WriteLine("that scribbled on 8 pages; rollback = discarding a transaction of the same size. Single samples.");
        return 0;
    }

    private static void RunOne(SyncOptions options, int replicaCount, int dirtyPages)
    {
        using SyncStrategy sync = SyncStrategy.Create(options);
        long stride = sync.Leader.PageCount / dirtyPages;

        // Warm-up: fault every page of leader and base in once so first-touch faults are not timed.
        Transaction(sync, stride, dirtyPages, value: 1);
        sync.Commit();

        var watch = Stopwatch.StartNew();
        Replica first = sync.CreateReplica();
        TimeSpan create = watch.Elapsed;
        var replicas = new List<Replica> { first };
        for (int i = 1; i < replicaCount; i++)
        {
            replicas.Add(sync.CreateReplica());
        }

        // Commit once untimed so replicas have their pages, then the timed one.
        Transaction(sync, stride, dirtyPages, value: 2);
        sync.Commit();
        Transaction(sync, stride, dirtyPages, value: 3);
        watch.Restart();
        CommitResult result = sync.Commit();
        TimeSpan commit = watch.Elapsed;

        Replica reader = replicas[0];
        for (int p = 0; p < 8; p++)
        {
            reader.Memory.GetPage(p * stride).Fill(0xEE);
        }

        watch.Restart();
        sync.ResetReplica(reader);
        TimeSpan reset = watch.Elapsed;

        Transaction(sync, stride, dirtyPages, value: 4);
        watch.Restart();
        sync.Rollback();
        TimeSpan rollback = watch.Elapsed;

        bool ok = replicas.All(r => r.Memory.GetPage(stride)[0] == 3 && r.Memory.GetPage(0)[0] == 3) &&
                  sync.Leader.GetPage(stride)[0] == 3;
        string tracker = options.Strategy == SyncStrategyKind.SharedBase
            ? options.LeaderTracker.ToString()
            : $"{options.LeaderTracker}";
        Console.WriteLine(
            $"{options.Strategy,-11} {tracker,-17} {Us(create),9} {Us(commit),10} {result.DirtyPages,6} {Us(reset),9} {Us(rollback),9}  {(ok ? "replicas = committed" : "MISMATCH")}");
    }

    private static void Transaction(SyncStrategy sync, long stride, int dirtyPages, byte value)
    {
        for (int p = 0; p < dirtyPages; p++)
        {
            sync.Leader.GetPage(p * stride).Fill(value);
        }
    }

    private static string Us(TimeSpan t) => $"{t.TotalMicroseconds:F0} µs";
}
