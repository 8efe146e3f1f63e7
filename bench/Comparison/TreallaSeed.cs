using System.Diagnostics;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Memory.Trackers;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench.Comparison;

/// <summary>
/// The seed's workload on the real guest, for <c>./run.sh --guest trealla</c>: rounds of 100 concurrent
/// <c>test(X).</c> (the leader consulted <c>test(123).</c>) on a 2-replica pool with <see cref="PrologPool.DefaultOptions"/>,
/// against one plain interpreter behind an async lock and against two plain interpreters with no pool and no isolation
/// (each taking half the queries: the limit on 2 cores). Then a stress run of many rounds with default thread-pool
/// settings: median, p99 and max per round and the most thread-pool threads seen, to catch stalls.
/// </summary>
/// <remarks>Also: the pool at <see cref="ReadIsolation.PerCommit"/>; <c>assertz</c> + commit with 16 replicas vs on a
/// plain instance; and, given <paramref name="unbarriered"/> (the same guest built without the store barrier),
/// <c>test(X)</c> on a plain instance with the barrier vs without.</remarks>
internal sealed class TreallaSeed(IGuestModule module, IGuestModule? unbarriered, Action<string> progress, string prefix = "trealla_")
{
    private const int Queries = 100;

    public Dictionary<string, object?> Summary { get; } = [];

    public async Task RunAsync(int rounds, int stressRounds)
    {
        (IGuestInstance guestA, PrologInterpreter plainA) = Trealla.WarmPlain(module);
        (IGuestInstance guestB, PrologInterpreter plainB) = Trealla.WarmPlain(module);
        using (guestA)
        using (guestB)
        {
            await using PrologPool pool = PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = 2 });
            await pool.ConsultAsync("test(123).").ConfigureAwait(false);
            Trealla.WarmUp(pool, "test(X)");
            await using PrologPool perCommit = PrologPool.Create(module,
                PrologPool.DefaultOptions with { ReplicaCount = 2, Isolation = ReadIsolation.PerCommit });
            await perCommit.ConsultAsync("test(123).").ConfigureAwait(false);
            Trealla.WarmUp(perCommit, "test(X)");
            using var gate = new SemaphoreSlim(1, 1);

            progress($"trealla seed: {rounds} rounds each of locked, two plain, pool PerRead, pool PerCommit (interleaved)");
            var locked = new List<double>();
            var twoPlain = new List<double>();
            var pooled = new List<double>();
            var pooledPerCommit = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                locked.Add(await TimeAsync(() => LockedRound(plainA, gate)).ConfigureAwait(false));
                twoPlain.Add(await TimeAsync(() => TwoPlainRound(plainA, plainB)).ConfigureAwait(false));
                pooled.Add(await TimeAsync(() => PoolRound(pool)).ConfigureAwait(false));
                pooledPerCommit.Add(await TimeAsync(() => PoolRound(perCommit)).ConfigureAwait(false));
            }

            double lockedMs = Median(locked), twoMs = Median(twoPlain), poolMs = Median(pooled), perCommitMs = Median(pooledPerCommit);
            Summary[prefix + "seed_locked_round_ms"] = Math.Round(lockedMs, 3);
            Summary[prefix + "seed_two_plain_round_ms"] = Math.Round(twoMs, 3);
            Summary[prefix + "seed_pool_perread_round_ms"] = Math.Round(poolMs, 3);
            Summary[prefix + "seed_pool_percommit_round_ms"] = Math.Round(perCommitMs, 3);
            Summary[prefix + "seed_limit_two_plain"] = Math.Round(lockedMs / twoMs, 2);
            Summary[prefix + "seed_pool_vs_locked_perread"] = Math.Round(lockedMs / poolMs, 2);
            Summary[prefix + "seed_pool_vs_locked_percommit"] = Math.Round(lockedMs / perCommitMs, 2);

            // One query with its reset on a replica vs on a plain instance (sequential, nothing else running).
            var replica = new List<double>();
            var plain = new List<double>();
            for (int i = 0; i < 200; i++)
            {
                replica.Add(await TimeAsync(async () => Check(await pool.QueryOnceAsync("test(X)").ConfigureAwait(false))).ConfigureAwait(false));
                plain.Add(await TimeAsync(() =>
                {
                    Check(plainA.QueryOnce("test(X)"));
                    return Task.CompletedTask;
                }).ConfigureAwait(false));
            }

            Summary[prefix + "read_replica_us"] = Math.Round(Median(replica) * 1000, 1);
            Summary[prefix + "read_plain_us"] = Math.Round(Median(plain) * 1000, 1);
            Summary[prefix + "read_replica_vs_plain"] = Math.Round(Median(replica) / Median(plain), 2);

            // What a test(X) read leaves dirty, as the store barrier reports it (exact: it marks every write), and what a
            // keep-resident content-aware reset then copies back.
            foreach ((ReplicaResetMode mode, string key) in new[]
            {
                (ReplicaResetMode.Madvise, prefix + "testx_dirty_pages"),
                (ReplicaResetMode.KeepResident, prefix + "testx_reset_copied_pages"),
            })
            {
                PoolOptions defaults = PrologPool.DefaultOptions;
                await using PrologPool probe = PrologPool.Create(module, defaults with
                {
                    ReplicaCount = 1,
                    Sync = defaults.Sync with { ReplicaTracker = TrackerKind.StoreBarrier, ResetMode = mode, SkipUnchangedPages = true },
                });
                await probe.ConsultAsync("test(123).").ConfigureAwait(false);
                for (int i = 0; i < 5; i++)
                {
                    Check(await probe.QueryOnceAsync("test(X)").ConfigureAwait(false)); // warm: the first reads grow scratch
                }

                using PoolPageCounter resets = PoolPageCounter.Resets();
                for (int i = 0; i < 20; i++)
                {
                    Check(await probe.QueryOnceAsync("test(X)").ConfigureAwait(false));
                }

                Summary[key] = Math.Round(resets.PagesPerEvent, 1);
            }

            progress($"trealla seed stress: {stressRounds} rounds of {Queries} concurrent test(X), default thread pool");
            var times = new List<double>(stressRounds);
            int maxThreads = ThreadPool.ThreadCount;
            using var cap = new CancellationTokenSource(TimeSpan.FromMinutes(5)); // bounded: a stalled run still ends
            for (int r = 0; r < stressRounds && !cap.IsCancellationRequested; r++)
            {
                times.Add(await TimeAsync(() => PoolRound(pool)).ConfigureAwait(false));
                maxThreads = Math.Max(maxThreads, ThreadPool.ThreadCount);
            }

            times.Sort();
            double median = Median(times), p99 = times[(int)Math.Ceiling(0.99 * times.Count) - 1], max = times[^1];
            Summary[prefix + "seed_stress_rounds"] = times.Count;
            Summary[prefix + "seed_round_median_ms"] = Math.Round(median, 3);
            Summary[prefix + "seed_round_p99_ms"] = Math.Round(p99, 3);
            Summary[prefix + "seed_round_max_ms"] = Math.Round(max, 3);
            Summary[prefix + "seed_round_max_vs_median"] = Math.Round(max / median, 2);
            Summary[prefix + "seed_threadpool_threads_max"] = maxThreads;
            Summary["processor_count"] = Environment.ProcessorCount;

            await WritesAsync(plainB).ConfigureAwait(false);
            await InterruptionAsync(pool).ConfigureAwait(false);
            if (unbarriered is not null)
            {
                BarrierOverhead(plainA, unbarriered);
            }
        }
    }

    /// <summary>
    /// How long a runaway query (<c>repeat, fail</c>) takes to stop: 25 trials on the seed pool; each query runs 20 ms,
    /// then its token is cancelled, and the time until the caller holds the <see cref="OperationCanceledException"/>
    /// (guest trap, unwind, replica reset) is recorded. Then a <c>test(X)</c> must still answer.
    /// </summary>
    private async Task InterruptionAsync(PrologPool pool)
    {
        progress("trealla: interrupting `repeat, fail` (25 trials)");
        var latencies = new List<double>();
        for (int trial = 0; trial < 25; trial++)
        {
            using var cancel = new CancellationTokenSource();
            // On a thread-pool thread: the pool runs a read's guest code on the thread that calls it.
            Task<PrologAnswer> runaway = Task.Run(() => pool.QueryOnceAsync("repeat, fail", cancel.Token).AsTask());
            await Task.Delay(20).ConfigureAwait(false);
            if (runaway.IsCompleted)
            {
                throw new InvalidOperationException($"`repeat, fail` ended by itself: {runaway.Status}", runaway.Exception);
            }

            long start = Stopwatch.GetTimestamp();
            cancel.Cancel();
            try
            {
                await runaway.ConfigureAwait(false);
                throw new InvalidOperationException("`repeat, fail` returned an answer");
            }
            catch (OperationCanceledException)
            {
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }

            Check(await pool.QueryOnceAsync("test(X)").ConfigureAwait(false));
        }

        latencies.Sort();
        Summary[prefix + "interrupt_latency_ms_median"] = Math.Round(Median(latencies), 3);
        Summary[prefix + "interrupt_latency_ms_max"] = Math.Round(latencies[^1], 3);
    }

    /// <summary><c>assertz</c> + commit on a 16-replica pool (defaults) vs the same goal on a plain instance.</summary>
    private async Task WritesAsync(PrologInterpreter plain)
    {
        progress("trealla writes: assertz + commit with 16 replicas vs assertz on a plain instance");
        await using PrologPool pool = PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = 16 });
        Trealla.WarmUp(pool, "true");
        int n = 0;
        for (int i = 0; i < 3; i++)
        {
            await pool.AssertAsync($"w({++n})").ConfigureAwait(false);
            plain.QueryOnce($"assertz((w({n})))").ThrowIfError();
        }

        var pooled = new List<double>();
        var alone = new List<double>();
        for (int i = 0; i < 31; i++)
        {
            int k = ++n;
            pooled.Add(await TimeAsync(async () => await pool.AssertAsync($"w({k})").ConfigureAwait(false)).ConfigureAwait(false));
            alone.Add(await TimeAsync(() =>
            {
                plain.QueryOnce($"assertz((w({k})))").ThrowIfError();
                return Task.CompletedTask;
            }).ConfigureAwait(false));
        }

        Summary[prefix + "write_sharedbase16_us"] = Math.Round(Median(pooled) * 1000, 1);
        Summary[prefix + "write_plain_us"] = Math.Round(Median(alone) * 1000, 1);
        Summary[prefix + "write_sharedbase16_vs_plain"] = Math.Round(Median(pooled) / Median(alone), 2);
    }

    /// <summary>
    /// <c>test(X)</c> on a plain instance of the guest with the store barrier vs one built without it: 15 interleaved
    /// blocks of 200 queries each; the ratio of the median per-query times of the blocks.
    /// </summary>
    private void BarrierOverhead(PrologInterpreter barriered, IGuestModule withoutBarrier)
    {
        progress("trealla: test(X) on a plain instance, with the store barrier vs without");
        (IGuestInstance guest, PrologInterpreter plain) = Trealla.WarmPlain(withoutBarrier);
        using (guest)
        {
            var with = new List<double>();
            var without = new List<double>();
            for (int block = 0; block < 15; block++)
            {
                with.Add(Block(barriered));
                without.Add(Block(plain));
            }

            Summary[prefix + "testx_plain_barrier_us"] = Math.Round(Median(with) * 1000, 1);
            Summary[prefix + "testx_plain_nobarrier_us"] = Math.Round(Median(without) * 1000, 1);
            Summary[prefix == "trealla_" ? "storebarrier_guest_overhead" : prefix + "barrier_overhead"] = Math.Round(Median(with) / Median(without), 3);
        }

        static double Block(PrologInterpreter prolog)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < 200; i++)
            {
                Check(prolog.QueryOnce("test(X)"));
            }

            return Stopwatch.GetElapsedTime(start).TotalMilliseconds / 200;
        }
    }

    internal static Task LockedRound(PrologInterpreter single, SemaphoreSlim gate) =>
        Task.WhenAll(Enumerable.Range(0, Queries).Select(_ => Task.Run(async () =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                Check(single.QueryOnce("test(X)"));
            }
            finally
            {
                gate.Release();
            }
        })));

    private static Task TwoPlainRound(PrologInterpreter a, PrologInterpreter b) => Task.WhenAll(
        Task.Run(() => Half(a)),
        Task.Run(() => Half(b)));

    private static void Half(PrologInterpreter prolog)
    {
        for (int i = 0; i < Queries / 2; i++)
        {
            Check(prolog.QueryOnce("test(X)"));
        }
    }

    internal static Task PoolRound(PrologPool pool) =>
        Task.WhenAll(Enumerable.Range(0, Queries).Select(_ => Task.Run(async () =>
            Check(await pool.QueryOnceAsync("test(X)").ConfigureAwait(false)))));

    internal static async Task<double> TimeAsync(Func<Task> round)
    {
        long start = Stopwatch.GetTimestamp();
        await round().ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    internal static void Check(PrologAnswer answer)
    {
        if (!answer.IsSuccess || answer["X"] is not PrologInteger { Value: var v } || v != 123)
        {
            throw new InvalidOperationException($"test(X) should answer X = 123, got {answer}");
        }
    }
}
