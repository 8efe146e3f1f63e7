using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using CowWasm.Bench.Reporting;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Replication;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using NATS.Client.Core;

namespace CowWasm.Bench.Sharing;

/// <summary>
/// <c>replicate [COMMITS] [CATCHUP]</c>: followers on other hosts through NATS JetStream, with a single nats-server on
/// loopback (started here, JetStream in a temp directory) standing in for the network. A Trealla leader pool publishes
/// every commit (<see cref="CommitPublisher"/>); a <see cref="CommitFollower"/> of Trealla, on its own connection,
/// replays them. Measures (1) follower lag — leader's write returned → follower applied that commit — p50/p99 at paced
/// write rates and flat out; (2) bytes per commit on the wire vs copying the whole linear memory (the naive way);
/// (3) a new follower catching up from a snapshot + CATCHUP deltas (default 10,000). Writes docs/results/replication.md,
/// replication-lag.png/.svg and keys replication_* in summary.json.
/// </summary>
internal static class ReplicationBench
{
    private static readonly double[] Rates = [20, 100, 400, 0]; // commits per second; 0 = flat out

    public static async Task<int> RunAsync(string[] args)
    {
        int commits = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 300;
        int catchUp = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000;
        string dir = Directory.CreateTempSubdirectory("cowwasm-replicate-").FullName;
        using var server = NatsServerProcess.Start(dir);
        try
        {
            using WasmModule module = await TreallaGuest.LoadAsync().ConfigureAwait(false);
            PoolOptions options = PrologPool.DefaultOptions with { ReplicaCount = 2 };
            var replication = new ReplicationOptions { Name = "bench", SnapshotEvery = 0 }; // snapshots only where measured
            await using PrologPool leader = PrologPool.Create(module, options);
            Trealla.WarmUp(leader, "true");
            await using var leaderConnection = new NatsConnection(new NatsOpts { Url = server.Url, Name = "leader" });
            await using var followerConnection = new NatsConnection(new NatsOpts { Url = server.Url, Name = "follower" });
            await using CommitPublisher publisher = await CommitPublisher.StartAsync(leader.Pool, leaderConnection, replication);
            await using CommitFollower follower = await CommitFollower.StartAsync(module, TreallaGuest.CreateLinker(module.Info),
                followerConnection, replication, options);
            var applied = new ConcurrentDictionary<long, long>();
            follower.Applied += sequence => applied[sequence] = Stopwatch.GetTimestamp();

            int key = 0;
            async Task<long> AssertAsync()
            {
                int k = key++;
                await leader.AssertAsync($"fact({k}, \"payload {k}\")");
                return Stopwatch.GetTimestamp();
            }

            // Warm the path (JIT, the stream, the consumer) before measuring.
            for (int i = 0; i < 50; i++)
            {
                await AssertAsync();
            }

            await follower.WaitForAsync(leader.Pool.CommitSequence);

            var lag = new List<(double Rate, double Achieved, double Applied, double P50, double P99)>();
            long bytesBefore = publisher.DeltaBytesPublished, pageBytesBefore = publisher.PageBytesPublished, commitsBefore = publisher.CommitsPublished;
            foreach (double rate in Rates)
            {
                var committed = new Dictionary<long, long>();
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < commits; i++)
                {
                    if (rate > 0)
                    {
                        long due = start + (long)(i / rate * Stopwatch.Frequency);
                        while (Stopwatch.GetTimestamp() < due)
                        {
                            await Task.Delay(TimeSpan.FromTicks(Math.Max(0, (due - Stopwatch.GetTimestamp()) * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
                        }
                    }

                    long at = await AssertAsync();
                    committed[leader.Pool.CommitSequence] = at;
                }

                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                await follower.WaitForAsync(leader.Pool.CommitSequence);
                double[] lags = committed.Select(c => Math.Max(0, applied[c.Key] - c.Value) * 1000.0 / Stopwatch.Frequency).Order().ToArray();
                long[] appliedAt = committed.Keys.Select(k => applied[k]).Order().ToArray();
                double applyRate = (appliedAt.Length - 1) * (double)Stopwatch.Frequency / Math.Max(1, appliedAt[^1] - appliedAt[0]);
                lag.Add((rate, commits / seconds, applyRate, Percentile(lags, 0.50), Percentile(lags, 0.99)));
                TerminalText.WriteFolded(
                    string.Create(CultureInfo.InvariantCulture, $"rate {(rate > 0 ? rate.ToString(CultureInfo.InvariantCulture) : "max")}/s: achieved {commits / seconds:0} commits/s, applied {applyRate:0}/s,"),
                    string.Create(CultureInfo.InvariantCulture, $"lag p50 {lag[^1].P50:0.00} ms, p99 {lag[^1].P99:0.00} ms"));
            }

            long measuredCommits = publisher.CommitsPublished - commitsBefore;
            double bytesPerCommit = (publisher.DeltaBytesPublished - bytesBefore) / (double)measuredCommits;
            double pageBytesPerCommit = (publisher.PageBytesPublished - pageBytesBefore) / (double)measuredCommits;
            long memoryBytes = CowWasm.Memory.Pages.ToBytes(leader.Pool.Strategy.CommittedPageCount);
            TerminalText.WriteFolded(
                string.Create(CultureInfo.InvariantCulture, $"bytes per commit: {bytesPerCommit:0} on the wire ({pageBytesPerCommit:0} of changed pages)"),
                string.Create(CultureInfo.InvariantCulture, $"vs {memoryBytes} of memory: {memoryBytes / bytesPerCommit:0}x fewer"));

            // Same answers on both sides, before the catch-up part changes anything.
            int leaderFacts = await CountFactsAsync(leader);
            FollowerRead<int> followerFacts = await follower.ReadAsync(g => ValueTask.FromResult(CountFacts(g)));
            if (leaderFacts != followerFacts.Result || followerFacts.Sequence != leader.Pool.CommitSequence)
            {
                throw new InvalidOperationException($"the follower answers {followerFacts.Result} facts at commit {followerFacts.Sequence}; the leader {leaderFacts} at {leader.Pool.CommitSequence}");
            }

            // Catch-up: a snapshot, then CATCHUP deltas, then a new follower.
            long snapshotSequence = await publisher.PublishSnapshotAsync();
            for (int i = 0; i < catchUp; i++)
            {
                await AssertAsync();
            }

            await publisher.WaitPublishedAsync(leader.Pool.CommitSequence);
            long target = leader.Pool.CommitSequence;
            await using var lateConnection = new NatsConnection(new NatsOpts { Url = server.Url, Name = "late" });
            long catchStart = Stopwatch.GetTimestamp();
            await using CommitFollower late = await CommitFollower.StartAsync(module, TreallaGuest.CreateLinker(module.Info), lateConnection, replication, options);
            double loadSeconds = Stopwatch.GetElapsedTime(catchStart).TotalSeconds;
            await late.WaitForAsync(target);
            double catchSeconds = Stopwatch.GetElapsedTime(catchStart).TotalSeconds;
            FollowerRead<int> lateFacts = await late.ReadAsync(g => ValueTask.FromResult(CountFacts(g)));
            if (lateFacts.Result != await CountFactsAsync(leader))
            {
                throw new InvalidOperationException($"the caught-up follower answers {lateFacts.Result} facts");
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"catch-up from snapshot {late.SnapshotSequence} + {target - late.SnapshotSequence} deltas: {catchSeconds:0.00} s (snapshot loaded in {loadSeconds:0.00} s)"));
            Write(commits, catchUp, lag, bytesPerCommit, pageBytesPerCommit, memoryBytes, snapshotSequence, target - late.SnapshotSequence, loadSeconds, catchSeconds);
            return 0;
        }
        finally
        {
            server.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<int> CountFactsAsync(PrologPool pool) => await pool.ReadAsync(p => CountFacts(p));

    private static int CountFacts(IGuestInstance guest) => CountFacts(PrologInterpreter.Initialize(guest));

    private static int CountFacts(PrologInterpreter prolog)
    {
        PrologAnswer answer = prolog.QueryOnce("findall(K, fact(K, _), Ks), length(Ks, N)");
        answer.ThrowIfError();
        return int.Parse(answer.Bindings["N"].ToString(), CultureInfo.InvariantCulture);
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

    private static void Write(int commits, int catchUp, List<(double Rate, double Achieved, double Applied, double P50, double P99)> lag, double bytesPerCommit,
        double pageBytesPerCommit, long memoryBytes, long snapshotSequence, long replayed, double loadSeconds, double catchSeconds)
    {
        string measured = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var keys = new Dictionary<string, object?>
        {
            ["replication_lag_p50_ms"] = Math.Round(lag[0].P50, 2),
            ["replication_lag_p99_ms"] = Math.Round(lag[0].P99, 2),
            ["replication_lag_rate_per_s"] = lag[0].Rate,
            ["replication_lag_max_rate_p50_ms"] = Math.Round(lag[^1].P50, 2),
            ["replication_lag_max_rate_p99_ms"] = Math.Round(lag[^1].P99, 2),
            ["replication_max_rate_commits_per_s"] = Math.Round(lag[^1].Achieved, 0),
            ["replication_max_rate_applied_per_s"] = Math.Round(lag[^1].Applied, 0),
            ["replication_bytes_per_commit"] = Math.Round(bytesPerCommit, 0),
            ["replication_page_bytes_per_commit"] = Math.Round(pageBytesPerCommit, 0),
            ["replication_memory_bytes"] = memoryBytes,
            ["replication_fullcopy_vs_delta_bytes"] = Math.Round(memoryBytes / bytesPerCommit, 1),
            ["replication_catchup_deltas"] = replayed,
            ["replication_catchup_snapshot_load_s"] = Math.Round(loadSeconds, 2),
            ["replication_catchup_s"] = Math.Round(catchSeconds, 2),
            ["replication_measured"] = measured,
        };

        var md = new StringBuilder();
        md.AppendLine("# Followers on other hosts, through NATS JetStream (`replicate`)");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Measured {measured} on {Environment.ProcessorCount} CPUs, one run, idle machine; `./run.sh --replicate` " +
            $"(`dotnet bench/bin/Release/net10.0/CowWasm.Bench.dll replicate {commits} {catchUp}`). One nats-server {NatsServerProcess.Version} " +
            $"on loopback with JetStream on disk (file storage, 1 replica); the Trealla leader pool (2 replicas) and the follower pool " +
            $"(2 replicas) run in this process on separate connections. Each write is `assertz(fact(K, \"payload K\"))`."));
        md.AppendLine();
        md.AppendLine("Lag is from the leader's write returning (the commit is in the base and queued for publishing) to the follower " +
            "having applied that commit (the delta published, stored, delivered, checked, decompressed and committed to its own replicas).");
        md.AppendLine();
        md.AppendLine("| offered rate (commits/s) | leader committed | follower applied | lag p50 | lag p99 |");
        md.AppendLine("|---:|---:|---:|---:|---:|");
        foreach ((double rate, double achieved, double appliedRate, double p50, double p99) in lag)
        {
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(rate > 0 ? rate.ToString(CultureInfo.InvariantCulture) : "flat out")} | {achieved:0}/s | {appliedRate:0}/s | {p50:0.00} ms | {p99:0.00} ms |"));
        }

        md.AppendLine();
        md.AppendLine("| measure | value |");
        md.AppendLine("|---|---:|");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| delta on the wire per commit (mean, {4 * commits} commits) | {bytesPerCommit:0} B |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| page patches per commit (the changed bytes of the changed pages), before compression | {pageBytesPerCommit:0} B |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| the naive full copy: the leader's committed linear memory | {memoryBytes} B |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| full copy ÷ delta | {memoryBytes / bytesPerCommit:0.0}× |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| new follower: snapshot (commit {snapshotSequence}) downloaded, verified and mapped | {loadSeconds:0.00} s |"));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| new follower: caught up after replaying {replayed} deltas | {catchSeconds:0.00} s |"));
        md.AppendLine();
        md.AppendLine("![follower lag vs write rate](replication-lag.png)");
        md.AppendLine();
        foreach ((string key, object? value) in keys)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- `{key}` = {value}");
        }

        var chart = new LineChart { Title = "Follower lag vs write rate (Trealla assertz, loopback JetStream)", XLabel = "achieved commits/s", YLabel = "lag (ms)", LogY = true };
        chart.Series.Add(new ChartSeries("p50", lag.Select(l => (l.Achieved, l.P50)).ToList()));
        chart.Series.Add(new ChartSeries("p99", lag.Select(l => (l.Achieved, l.P99)).ToList()));
        string results = Path.Combine(RuntimeVariantsProbe.RepoRoot(), "docs", "results");
        chart.Save(results, "replication-lag");
        File.WriteAllText(Path.Combine(results, "replication.md"), md.ToString());
        RuntimeVariantsProbe.MergeSummary(Path.Combine(results, "summary.json"), keys);
        TerminalText.WriteSummary(Path.Combine(results, "replication.md"), keys);
    }
}
