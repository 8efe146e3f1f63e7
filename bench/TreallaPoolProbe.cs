using System.Diagnostics;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench;

/// <summary><c>prolog-pool GOAL ROUNDS [RESET [WARM [REPLICA-TRACKER [LEADER-TRACKER]]]]</c>: where a replica query's time goes (memory growth, reset).</summary>
internal static class TreallaPoolProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        using WasmModule module = await TreallaGuest.LoadAsync().ConfigureAwait(false);
        await using PrologPool pool = PrologPool.Create(module, new CowWasm.Pool.PoolOptions
        {
            ReplicaCount = 1,
            Sync = new CowWasm.Memory.Sync.SyncOptions
            {
                ResetMode = Enum.Parse<CowWasm.Memory.Sync.ReplicaResetMode>(args.Length > 2 ? args[2] : "KeepResident"),
                ReplicaTracker = args.Length > 4 ? Enum.Parse<CowWasm.Memory.Trackers.TrackerKind>(args[4]) : null,
                LeaderTracker = args.Length > 5 ? Enum.Parse<CowWasm.Memory.Trackers.TrackerKind>(args[5]) : CowWasm.Memory.Trackers.TrackerKind.CowFile,
            },
            Instance = TreallaGuest.DefaultInstanceOptions,
        });
        await pool.ConsultAsync("test(123).").ConfigureAwait(false);
        for (int w = 0; w < int.Parse(args.Length > 3 ? args[3] : "0", System.Globalization.CultureInfo.InvariantCulture); w++)
        {
            await pool.ExecuteAsync(args[0]).ConfigureAwait(false); // the committed state has run the query before
        }

        int rounds = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < rounds; i++)
        {
            var clock = Stopwatch.StartNew();
            long private_ = 0;
            (long before, long after, double queryUs) = await pool.ReadAsync(p =>
            {
                long size = p.Guest.MemorySize;
                var q = Stopwatch.StartNew();
                p.QueryOnce(args[0]);
                double us = q.Elapsed.TotalMicroseconds;
                if (p.Guest.Memory is CowWasm.Memory.CowView view)
                {
                    var runs = new List<CowWasm.Memory.PageRun>();
                    view.CollectPrivatePages(runs);
                    private_ = runs.Sum(r => r.PageCount);
                }

                return (size, p.Guest.MemorySize, us);
            }).ConfigureAwait(false);
            if (i < 3 || i == rounds - 1)
            {
                Console.WriteLine($"#{i}: private pages {private_}, total {clock.Elapsed.TotalMicroseconds:F0} us, query {queryUs:F0} us, memory {before:N0} -> {after:N0} B, committed {pool.Pool.Strategy.CommittedPageCount} pages");
            }
        }

        return 0;
    }
}
