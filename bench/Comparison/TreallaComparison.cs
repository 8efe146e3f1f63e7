using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// The comparison on the real guest (<c>compare --guest trealla</c>): per strategy and replica count, the latency
/// of a write (<c>assertz</c> + commit), of a read (<c>fact(0)</c> on a replica, reset included), and the replicas'
/// footprint after the reads. Pools use <see cref="PrologPool.DefaultOptions"/> with the strategy swapped in.
/// The guest is fetched and compiled on first use (about 30 s of gcc on 2 cores), then cached; a fresh-cache build is
/// also measured every run (<see cref="BuildCost"/>).
/// </summary>
internal sealed class TreallaComparison(Action<string> progress)
{
    public List<Row> Rows { get; } = [];

    /// <summary>The seed workload's and the stress run's headline numbers (keys for summary-trealla.json).</summary>
    public Dictionary<string, object?> Seed { get; } = [];

    public async Task RunAsync()
    {
        progress("building Trealla for the native runtime into a fresh cache (the build's time and peak memory)");
        (double buildSeconds, double buildPeakGb) = await BuildCost.MeasureTreallaAsync(progress).ConfigureAwait(false);
        Seed["native_trealla_build_s"] = Math.Round(buildSeconds, 1);
        Seed["native_trealla_build_peak_rss_gb"] = Math.Round(buildPeakGb, 2);
        Seed["native_trealla_build_cores"] = Environment.ProcessorCount;
        progress("loading Trealla (first use: npm fetch + about 30 s of gcc; cached afterwards)");
        using WasmModule module = await TreallaGuest.LoadAsync(new InlineProgress(progress)).ConfigureAwait(false);
        progress("loading Trealla built without the store barrier (to measure the barrier's cost; first use: another compile)");
        using WasmModule unbarriered = await TreallaGuest.LoadAsync(new ArtifactOptions { StoreBarrier = false }, new InlineProgress(progress))
            .ConfigureAwait(false);
        var seed = new TreallaSeed(module, unbarriered, progress);
        await seed.RunAsync(rounds: 30, stressRounds: 1000).ConfigureAwait(false);
        foreach ((string key, object? value) in seed.Summary)
        {
            Seed[key] = value;
        }

        var wasmtime = new WasmtimeTrealla(progress);
        await wasmtime.RunAsync(module).ConfigureAwait(false);
        foreach ((string key, object? value) in wasmtime.Summary)
        {
            Seed[key] = value;
        }

        using var counter = PoolPageCounter.Commits();
        foreach (SyncStrategyKind strategy in Enum.GetValues<SyncStrategyKind>())
        {
            foreach (int replicas in new[] { 1, 4, 16 })
            {
                progress($"trealla: {strategy}, {replicas} replicas");
                await MeasureAsync(module, strategy, replicas, counter).ConfigureAwait(false);
            }
        }
    }

    private async Task MeasureAsync(WasmModule module, SyncStrategyKind strategy, int replicaCount, PoolPageCounter counter)
    {
        using PrologPool pool = Trealla.Pool(module, replicaCount, strategy);
        await pool.AssertAsync("fact(0)").ConfigureAwait(false);
        Trealla.WarmUp(pool, "fact(0)");
        string tracker = pool.Pool.Options.Sync.Strategy == SyncStrategyKind.SharedBase
            ? $"{pool.Pool.Options.Sync.ResetMode}/{pool.Pool.Options.Sync.EffectiveReplicaTracker}"
            : pool.Pool.Options.Sync.EffectiveReplicaTracker.ToString();
        long sizeMiB = Pages.ToBytes(pool.Pool.Strategy.CommittedPageCount) >> 20;

        int n = 0;
        (long commitsBefore, long dirtyBefore) = (counter.Events, counter.Pages);
        TimeSpan write = await Measure.MedianAsync(strategy == SyncStrategyKind.FullCopy ? 5 : 31, () => pool.AssertAsync($"fact({++n})")).ConfigureAwait(false);
        long commits = counter.Events - commitsBefore;
        int dirty = commits > 0 ? (int)((counter.Pages - dirtyBefore) / commits) : 0;
        Rows.Add(new Row("trealla write", strategy.ToString(), tracker, sizeMiB, replicaCount, dirty, write));

        TimeSpan read = await Measure.MedianAsync(15, async () =>
        {
            PrologAnswer answer = await pool.QueryOnceAsync("fact(0)").ConfigureAwait(false);
            if (!answer.IsSuccess)
            {
                throw new InvalidOperationException($"fact(0) should hold on every replica, got {answer}");
            }
        }).ConfigureAwait(false);
        Rows.Add(new Row("trealla read", strategy.ToString(), tracker, sizeMiB, replicaCount, 0, read));

        (long privateDirty, long pss) = Measure.Footprint(pool.Pool.ReplicaMemories.Select(m => m.Memory));
        Rows.Add(new Row("trealla footprint", strategy.ToString(), tracker, sizeMiB, replicaCount, 0, null, privateDirty, pss));
    }

    private sealed class InlineProgress(Action<string> report) : IProgress<string>
    {
        public void Report(string value) => report(value);
    }
}
