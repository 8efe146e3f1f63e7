using System.Diagnostics;
using System.Globalization;
using System.Text;
using CowWasm.Prolog;
using CowWasm.Runtime;

namespace CowWasm.Bench.Sharing;

/// <summary>
/// <c>durability [SECONDS] [RECOVERY_COMMITS]</c> (<c>./run.sh --durability</c>): what the commit log costs and how fast
/// a start-up replays it, on Trealla (Wasmtime, <see cref="PrologPool.DefaultOptions"/> with 2 replicas, in process):
/// (1) 64 concurrent clients each asserting in a loop, durability Log vs None, throughput ratio and p50/p99 of an
/// acknowledged write (interleaved blocks); (2) start-up from the log alone after RECOVERY_COMMITS (default 10,000)
/// asserts; (3) one client asserting in a loop, durability None vs Log vs Replicated (log + the JetStream ack, one
/// loopback nats-server), p50 reply latency, interleaved blocks. Writes docs/results/durability.md and keys durable_*,
/// recovery_* and replicated_* in summary-durability.json.
/// </summary>
internal static class DurabilityBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        double seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        int recoveryCommits = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000;
        string results = Path.Combine("docs", "results");
        string scratch = Directory.CreateTempSubdirectory("cowwasm-durability-").FullName;
        var started = DateTime.UtcNow;
        try
        {
            using IGuestModule module = await TreallaGuest.LoadAsync(GuestRuntime.Wasmtime).ConfigureAwait(false);
            var options = PrologPool.DefaultOptions with { ReplicaCount = 2 };
            var log = new List<double>();
            var none = new List<double>();
            var logLatencies = new List<double>();
            var noneLatencies = new List<double>();
            for (int block = 0; block < 3; block++)
            {
                foreach (bool durable in new[] { true, false })
                {
                    string dir = Path.Combine(scratch, $"block{block}-{durable}");
                    await using PrologPool pool = durable
                        ? await PrologPool.OpenDurableAsync(module, dir, options: options).ConfigureAwait(false)
                        : PrologPool.Create(module, options);
                    await pool.ConsultAsync(":- dynamic(w/1).").ConfigureAwait(false);
                    (double rate, List<double> latencies) = await LoadAsync(pool, TimeSpan.FromSeconds(seconds)).ConfigureAwait(false);
                    (durable ? log : none).Add(rate);
                    (durable ? logLatencies : noneLatencies).AddRange(latencies);
                    Console.WriteLine($"block {block}, {(durable ? "log " : "none")}: {rate:F0} acknowledged writes/s");
                }
            }

            logLatencies.Sort();
            noneLatencies.Sort();
            double logRate = Median(log), noneRate = Median(none);

            // Recovery: RECOVERY_COMMITS asserts into a durable pool, then a start-up that replays them all.
            string recoveryDir = Path.Combine(scratch, "recovery");
            await using (PrologPool pool = await PrologPool.OpenDurableAsync(module, recoveryDir, options: options).ConfigureAwait(false))
            {
                await pool.ConsultAsync(":- dynamic(w/1).").ConfigureAwait(false);
                await Task.WhenAll(Enumerable.Range(0, 16).Select(c => Task.Run(async () =>
                {
                    for (int i = c; i < recoveryCommits; i += 16)
                    {
                        await pool.AssertAsync($"w({i})").ConfigureAwait(false);
                    }
                }))).ConfigureAwait(false);
            }

            long start = Stopwatch.GetTimestamp();
            double recovery;
            await using (PrologPool recovered = await PrologPool.OpenDurableAsync(module, recoveryDir, options: options).ConfigureAwait(false))
            {
                recovery = Stopwatch.GetElapsedTime(start).TotalSeconds;
                PrologAnswer count = await recovered.QueryOnceAsync("findall(N, w(N), L), length(L, C)").ConfigureAwait(false);
                if (!count.IsSuccess || count["C"].ToString() != recoveryCommits.ToString(CultureInfo.InvariantCulture))
                {
                    throw new InvalidOperationException($"recovery found {count} facts, not {recoveryCommits}");
                }
            }

            // Reply latency of one client: None, Log and Replicated (interleaved blocks, a new pool and stream each).
            var single = new Dictionary<string, List<double>> { ["none"] = [], ["log"] = [], ["replicated"] = [] };
            using (NatsServerProcess nats = NatsServerProcess.Start(Path.Combine(scratch, "nats")))
            await using (var connection = new NATS.Client.Core.NatsConnection(new NATS.Client.Core.NatsOpts { Url = nats.Url }))
            {
                for (int block = 0; block < 3; block++)
                {
                    foreach (string level in single.Keys)
                    {
                        string dir = Path.Combine(scratch, $"single{block}-{level}");
                        await using PrologPool pool = level == "none"
                            ? PrologPool.Create(module, options)
                            : await PrologPool.OpenDurableAsync(module, dir, options: options).ConfigureAwait(false);
                        await using CowWasm.Replication.CommitPublisher? publisher = level == "replicated"
                            ? await CowWasm.Replication.CommitPublisher.StartAsync(pool.Pool, connection,
                                new CowWasm.Replication.ReplicationOptions { Name = $"bench{block}", AcknowledgedWrites = true }).ConfigureAwait(false)
                            : null;
                        await pool.ConsultAsync(":- dynamic(w/1).").ConfigureAwait(false);
                        (_, List<double> latencies) = await LoadAsync(pool, TimeSpan.FromSeconds(seconds), clients: 1).ConfigureAwait(false);
                        single[level].AddRange(latencies);
                        latencies.Sort();
                        Console.WriteLine($"block {block}, 1 client, {level}: p50 {Percentile(latencies, 0.5):F3} ms");
                    }
                }
            }

            foreach (List<double> latencies in single.Values)
            {
                latencies.Sort();
            }

            var keys = new Dictionary<string, object?>
            {
                ["durable_write_throughput_64_log_vs_none"] = Math.Round(logRate / noneRate, 2),
                ["durable_write_throughput_64_log_per_s"] = Math.Round(logRate, 0),
                ["durable_write_throughput_64_none_per_s"] = Math.Round(noneRate, 0),
                ["durable_write_p50_log_ms"] = Math.Round(Percentile(logLatencies, 0.5), 3),
                ["durable_write_p99_log_ms"] = Math.Round(Percentile(logLatencies, 0.99), 3),
                ["durable_write_p50_none_ms"] = Math.Round(Percentile(noneLatencies, 0.5), 3),
                ["durable_write_p99_none_ms"] = Math.Round(Percentile(noneLatencies, 0.99), 3),
                ["recovery_10k_commits_s"] = Math.Round(recovery * 10_000 / recoveryCommits, 2),
                ["replicated_ack_vs_none_p50"] = Math.Round(Percentile(single["replicated"], 0.5) / Percentile(single["none"], 0.5), 2),
                ["write_p50_1_client_none_ms"] = Math.Round(Percentile(single["none"], 0.5), 3),
                ["write_p50_1_client_log_ms"] = Math.Round(Percentile(single["log"], 0.5), 3),
                ["write_p50_1_client_replicated_ms"] = Math.Round(Percentile(single["replicated"], 0.5), 3),
                ["write_p99_1_client_replicated_ms"] = Math.Round(Percentile(single["replicated"], 0.99), 3),
                ["recovery_commits"] = recoveryCommits,
                ["durability_measured"] = started.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
                ["processor_count"] = Environment.ProcessorCount,
            };
            Directory.CreateDirectory(results);
            RuntimeVariantsProbe.MergeSummary(Path.Combine(results, "summary-durability.json"), keys);
            var md = new StringBuilder();
            md.AppendLine("# Durability: the commit log's cost and recovery (`./run.sh --durability`)");
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"Measured {keys["durability_measured"]} on {Environment.ProcessorCount} CPUs, one run, idle machine (`./run.sh --durability`). Trealla on Wasmtime, `PrologPool.DefaultOptions` with 2 replicas, in process. 64 clients each assert `w(N)` in a closed loop for {seconds} s; durability Log (each answer after its commit is fsynced in the commit log, fsyncs shared by waiting writers) and None, interleaved, 3 blocks each; medians of the blocks. Then one client asserting for {seconds} s per block under None, Log and Replicated (Log plus the JetStream acknowledgement; one loopback nats-server {NatsServerProcess.Version}, file storage, 1 stream replica), interleaved, 3 blocks; percentiles over all its writes.");
            md.AppendLine();
            md.AppendLine("| key | value |");
            md.AppendLine("|---|---:|");
            foreach ((string key, object? value) in keys)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| `{key}` | {value} |");
            }

            File.WriteAllText(Path.Combine(results, "durability.md"), md.ToString());
            foreach ((string key, object? value) in keys)
            {
                Console.WriteLine($"{key} = {value}");
            }

            return 0;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Clients (64 by default) asserting in a closed loop for <paramref name="duration"/>: acknowledged writes per second and their latencies (ms).</summary>
    private static async Task<(double Rate, List<double> Latencies)> LoadAsync(PrologPool pool, TimeSpan duration, int clients = 64)
    {
        int next = 0;
        var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                int n = Interlocked.Increment(ref next);
                long start = Stopwatch.GetTimestamp();
                await pool.AssertAsync($"w({n})").ConfigureAwait(false);
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }))).ConfigureAwait(false);
        return (latencies.Count / clock.Elapsed.TotalSeconds, [.. latencies]);
    }

    private static double Median(List<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted[sorted.Length / 2];
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
