using System.Globalization;
using System.Text;
using CowWasm.Bench.Reporting;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// <c>trealla-configs [ROUNDS]</c>: the measurement behind <see cref="PrologPool.DefaultOptions"/>. For each candidate
/// <see cref="ReadIsolation.PerRead"/> configuration: the seed round (100 concurrent <c>test(X)</c>, 2 replicas; median
/// of ROUNDS), one <c>test(X)</c> with its reset on a 1-replica pool, one <c>assertz</c> + commit with 2 and 16 replicas,
/// and the private memory of the 2 replicas after the rounds. Configurations are measured in turn, rounds interleaved
/// with a locked plain interpreter so that drift on this shared VM shows in the ratio rather than in the ranking.
/// Writes docs/results/trealla-configs.md and its bar chart, trealla-configs.png/.svg (the seed ratio per configuration).
/// </summary>
internal static class TreallaConfigSweep
{
    private static readonly (string Name, string Short, SyncOptions Sync)[] s_candidates =
    [
        ("CowFile replicas, keep-resident (defaults before issue 14)", "CowFile, keep", new()
        {
            ResetMode = ReplicaResetMode.KeepResident, ReplicaTracker = TrackerKind.CowFile,
        }),
        ("uffd replicas, keep-resident", "uffd, keep", new()
        {
            ResetMode = ReplicaResetMode.KeepResident, ReplicaTracker = TrackerKind.UffdWriteProtect,
        }),
        ("store-barrier replicas, madvise", "barrier, madvise", new()
        {
            ResetMode = ReplicaResetMode.Madvise, ReplicaTracker = TrackerKind.StoreBarrier,
        }),
        ("store-barrier replicas, keep-resident", "barrier, keep", new()
        {
            ResetMode = ReplicaResetMode.KeepResident, ReplicaTracker = TrackerKind.StoreBarrier,
        }),
        ("store-barrier replicas, keep-resident, content-aware", "barrier, keep, content", new()
        {
            ResetMode = ReplicaResetMode.KeepResident, ReplicaTracker = TrackerKind.StoreBarrier, SkipUnchangedPages = true,
        }),
        ("store barrier everywhere, keep-resident leader and replicas", "barrier all, keep all", new()
        {
            LeaderTracker = TrackerKind.StoreBarrier, LeaderReset = LeaderResetMode.KeepResident,
            ResetMode = ReplicaResetMode.KeepResident, ReplicaTracker = TrackerKind.StoreBarrier,
        }),
        ("store barrier everywhere, keep-resident leader and replicas, content-aware", "default: barrier all, keep all, content", new()
        {
            LeaderTracker = TrackerKind.StoreBarrier, LeaderReset = LeaderResetMode.KeepResident,
            ResetMode = ReplicaResetMode.KeepResident, ReplicaTracker = TrackerKind.StoreBarrier, SkipUnchangedPages = true,
        }),
        ("DirtyCopy (private replicas), store barrier everywhere, keep-resident leader, content-aware", "DirtyCopy, barrier, content", new()
        {
            Strategy = SyncStrategyKind.DirtyCopy,
            LeaderTracker = TrackerKind.StoreBarrier, LeaderReset = LeaderResetMode.KeepResident,
            ReplicaTracker = TrackerKind.StoreBarrier, SkipUnchangedPages = true,
        }),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 30;
        using WasmModule module = await TreallaGuest.LoadAsync(new ConsoleProgress()).ConfigureAwait(false);
        (IGuestInstance guest, PrologInterpreter plain) = Trealla.WarmPlain(module);
        using (guest)
        {
            using var gate = new SemaphoreSlim(1, 1);
            var table = new StringBuilder();
            var ratios = new BarChart
            {
                Title = $"Trealla seed round (100 × test(X), 2 replicas): locked ÷ pool, {DateTime.UtcNow:yyyy-MM-dd}",
                XLabel = "pool configuration (PerRead; trealla-configs.md names them in full)",
                YLabel = "locked ÷ pool (higher: pool faster)",
                Reference = (1.0, "one locked interpreter"),
            };
            table.AppendLine("| configuration | seed round, 2 replicas (ms) | locked ÷ pool | test(X) + reset (µs) | assertz + commit, 2 / 16 replicas (µs) | 2 replicas' private memory (MiB) |");
            table.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach ((string name, string label, SyncOptions sync) in s_candidates)
            {
                Console.WriteLine($"# {name}");
                PoolOptions options = PrologPool.DefaultOptions with { Sync = sync };
                await using PrologPool pool = PrologPool.Create(module, options with { ReplicaCount = 2 });
                await pool.ConsultAsync("test(123).").ConfigureAwait(false);
                Trealla.WarmUp(pool, "test(X)");
                var locked = new List<double>();
                var pooled = new List<double>();
                for (int r = 0; r < rounds; r++)
                {
                    locked.Add(await TreallaSeed.TimeAsync(() => TreallaSeed.LockedRound(plain, gate)).ConfigureAwait(false));
                    pooled.Add(await TreallaSeed.TimeAsync(() => TreallaSeed.PoolRound(pool)).ConfigureAwait(false));
                }

                (long privateBytes, _) = Measure.Footprint(pool.Pool.ReplicaMemories.Select(m => m.Memory));
                TimeSpan write2 = await WriteAsync(pool).ConfigureAwait(false);

                await using PrologPool single = PrologPool.Create(module, options with { ReplicaCount = 1 });
                await single.ConsultAsync("test(123).").ConfigureAwait(false);
                Trealla.WarmUp(single, "test(X)");
                TimeSpan read = await Measure.MedianAsync(301, async () =>
                    TreallaSeed.Check(await single.QueryOnceAsync("test(X)").ConfigureAwait(false))).ConfigureAwait(false);

                await using PrologPool sixteen = PrologPool.Create(module, options with { ReplicaCount = 16 });
                Trealla.WarmUp(sixteen, "true");
                TimeSpan write16 = await WriteAsync(sixteen).ConfigureAwait(false);

                double poolMs = TreallaSeed.Median(pooled), lockedMs = TreallaSeed.Median(locked);
                string row = string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {poolMs:F2} | {lockedMs / poolMs:F2} | {read.TotalMicroseconds:F0} | {write2.TotalMicroseconds:F0} / {write16.TotalMicroseconds:F0} | {privateBytes / 1048576.0:F1} |");
                Console.WriteLine(row);
                table.AppendLine(row);
                ratios.Bars.Add(new ChartBar(label, Math.Round(lockedMs / poolMs, 2)));
            }

            string path = Path.Combine("docs", "results", "trealla-configs.md");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path,
                $"# Trealla pool configurations (PerRead)\n\nMachine: {Environment.ProcessorCount} cores; {DateTime.UtcNow:yyyy-MM-dd}; " +
                $"command: `dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll trealla-configs {rounds}`; git {ComparisonRunner.GitRevision()}.\n\n" + table +
                "\n![seed round, locked ÷ pool, per configuration](trealla-configs.png)\n");
            Console.WriteLine($"wrote {path}");
            (string png, _) = ratios.Save(Path.GetDirectoryName(path)!, "trealla-configs");
            Console.WriteLine($"wrote {png} (and .svg)");
        }

        return 0;
    }

    /// <summary>Median of 21 <c>assertz</c> + commit (distinct clauses), after 3 unmeasured ones.</summary>
    private static async Task<TimeSpan> WriteAsync(PrologPool pool)
    {
        int n = 0;
        for (int i = 0; i < 3; i++)
        {
            await pool.AssertAsync($"w({++n})").ConfigureAwait(false);
        }

        return await Measure.MedianAsync(21, () => pool.AssertAsync($"w({++n})")).ConfigureAwait(false);
    }

    private sealed class ConsoleProgress : IProgress<string>
    {
        public void Report(string value) => Console.WriteLine(value);
    }
}
