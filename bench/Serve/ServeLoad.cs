using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using CowWasm.Bench.Reporting;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Bench.Serve;

/// <summary>
/// <c>serve-load [--quick]</c> (<c>./run.sh --serve</c>): the query service under load on loopback. The service runs in
/// a child process (src/Server, Release) — pool at each isolation level, and the locked interpreter — and N closed-loop
/// clients in this process send <c>test(X)</c> queries, with 0 %, 1 % or 10 % of requests replaced by <c>assertz</c>
/// writes, over TCP (one connection per client) and HTTP (one keep-alive connection per client). Reports requests/s
/// and p50/p99/p99.9 latency; the library-level ratio (the same 64 callers on a PrologPool vs a locked interpreter, in
/// this process) for comparison; and the service's RSS with 1 and 16 replicas. Writes docs/results/serve-load.md, an
/// PNG and SVG plot of throughput vs clients, and the headline ratios to docs/results/summary-serve.json.
/// </summary>
internal static partial class ServeLoad
{
    private const string Goal = "test(X)";
    private static readonly byte[] s_tcpQuery = Encoding.UTF8.GetBytes("{\"id\":1,\"op\":\"query\",\"goal\":\"test(X)\"}\n");
    private static readonly byte[] s_httpQuery = Encoding.UTF8.GetBytes("{\"goal\":\"test(X)\"}");

    internal sealed record Result(string Backend, string Protocol, double WriteShare, int Clients, double Rps, double P50Ms, double P99Ms,
        double P999Ms, long Requests, long Errors, double ServiceCpuUs, double ClientCpuUs);

    public static async Task<int> RunAsync(string[] args)
    {
        bool quick = args.Contains("--quick");
        // --runtime wasmtime|native: the backend the service and the in-process library baseline run on (default: the service's).
        int at = Array.IndexOf(args, "--runtime");
        GuestRuntime runtime = at >= 0 && at + 1 < args.Length && args[at + 1].Equals("native", StringComparison.OrdinalIgnoreCase)
            ? GuestRuntime.Native : GuestRuntime.Wasmtime;
        string runtimeFlag = runtime == GuestRuntime.Native ? "native" : "wasmtime";
        // The service runs with the runtime's defaults (tiered compilation with dynamic PGO): the warm-up lets it reach tier 1.
        TimeSpan warm = TimeSpan.FromSeconds(quick ? 1 : 2), measure = TimeSpan.FromSeconds(quick ? 1.5 : 4);
        int[] sweep = quick ? [1, 16, 64] : [1, 4, 16, 64];
        string serverDll = Path.Combine(AppContext.BaseDirectory, "CowWasm.Server.dll");
        if (!File.Exists(serverDll))
        {
            Console.Error.WriteLine($"serve-load: {serverDll} is missing (the bench project references src/Server; rebuild).");
            return 2;
        }

        var started = DateTime.UtcNow;
        var results = new List<Result>();
        double library = await LibraryRatioAsync(measure, runtime).ConfigureAwait(false);

        foreach ((string name, string[] flags) in new[]
        {
            ("pool/per-read", new[] { "--backend", "pool", "--isolation", "per-read" }),
            ("pool/per-commit", new[] { "--backend", "pool", "--isolation", "per-commit" }),
            ("locked", new[] { "--backend", "locked" }),
        })
        {
            // --durability none: the locked baseline keeps nothing, so the pool is compared without the commit log's syncs
            // (what durability costs is ./run.sh --durability's measurement).
            await using ServerProcess server = await ServerProcess.StartAsync(serverDll, [.. flags, "--runtime", runtimeFlag, "--durability", "none"])
                .ConfigureAwait(false);
            await server.ConsultAsync(":- dynamic(w/1). test(123).").ConfigureAwait(false);
            foreach (string protocol in new[] { "tcp", "http" })
            {
                int[] clientCounts = name == "pool/per-commit" ? [64] : sweep;
                foreach (int clients in clientCounts)
                {
                    results.Add(await RunLoadAsync(server, name, protocol, clients, 0, warm, measure).ConfigureAwait(false));
                }

                foreach (double writes in new[] { 0.01, 0.10 })
                {
                    results.Add(await RunLoadAsync(server, name, protocol, 64, writes, warm, measure).ConfigureAwait(false));
                }
            }
        }

        var rss = new Dictionary<int, long>();
        foreach (int replicas in new[] { 1, 16 })
        {
            await using ServerProcess server = await ServerProcess.StartAsync(serverDll,
                ["--backend", "pool", "--replicas", replicas.ToString(CultureInfo.InvariantCulture), "--runtime", runtimeFlag, "--durability", "none"])
                .ConfigureAwait(false);
            await server.ConsultAsync(":- dynamic(w/1). test(123).").ConfigureAwait(false);
            await RunLoadAsync(server, $"pool x{replicas}", "tcp", 16, 0.01, warm, measure).ConfigureAwait(false); // every replica serves
            rss[replicas] = server.RssBytes();
            Console.WriteLine($"  RSS with {replicas} replica(s): {rss[replicas] / 1048576.0:0.0} MiB");
        }

        Report(results, library, rss, started, quick, runtimeFlag);
        return 0;
    }

    /// <summary>
    /// 64 callers in this process, each awaiting <c>test(X)</c> in a loop, on a 2-replica PrologPool and on one plain
    /// interpreter behind an async lock: throughput pool ÷ locked, the ratio the service must not eat.
    /// </summary>
    private static async Task<double> LibraryRatioAsync(TimeSpan measure, GuestRuntime runtime)
    {
        // Fetches and compiles the guest on a cold cache (native: minutes), with progress; the service processes then hit the cache.
        using IGuestModule module = await TreallaGuest.LoadAsync(runtime, new Progress<string>(Console.WriteLine)).ConfigureAwait(false);
        (IGuestInstance guest, PrologInterpreter plain) = Trealla.WarmPlain(module);
        using (guest)
        {
            await using PrologPool pool = PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = 2 });
            await pool.ConsultAsync("test(123).").ConfigureAwait(false);
            Trealla.WarmUp(pool, Goal);
            using var gate = new SemaphoreSlim(1, 1);
            double pooled = await ClosedLoopAsync(64, measure, () => pool.QueryOnceAsync(Goal)).ConfigureAwait(false);
            double locked = await ClosedLoopAsync(64, measure, async () =>
            {
                await gate.WaitAsync().ConfigureAwait(false);
                try
                {
                    return plain.QueryOnce(Goal);
                }
                finally
                {
                    gate.Release();
                }
            }).ConfigureAwait(false);
            Console.WriteLine($"library, 64 callers: pool {pooled:0} q/s, locked {locked:0} q/s, ratio {pooled / locked:0.00}");
            return pooled / locked;
        }
    }

    private static async Task<double> ClosedLoopAsync(int callers, TimeSpan duration, Func<ValueTask<PrologAnswer>> query)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
        long count = 0;
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < deadline)
            {
                PrologAnswer answer = await query().ConfigureAwait(false);
                if (!answer.IsSuccess)
                {
                    throw new InvalidOperationException($"test(X) answered {answer}");
                }

                Interlocked.Increment(ref count);
            }
        }))).ConfigureAwait(false);
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {callers} callers: {count / duration.TotalSeconds:0} q/s, CPU {cpu.TotalMicroseconds / Math.Max(1, count):0} µs per query"));
        return count / duration.TotalSeconds;
    }

    /// <summary>One load run: <paramref name="clients"/> closed-loop clients; latencies recorded after the warm-up.</summary>
    private static async Task<Result> RunLoadAsync(ServerProcess server, string backend, string protocol, int clients, double writeShare,
        TimeSpan warm, TimeSpan measure)
    {
        const long MaxRequests = 2_000_000; // bounded in requests as well as in time
        long start = Stopwatch.GetTimestamp();
        long measureFrom = start + (long)(warm.TotalSeconds * Stopwatch.Frequency);
        long end = measureFrom + (long)(measure.TotalSeconds * Stopwatch.Frequency);
        long requests = 0, errors = 0, counted = 0;
        var latencies = new List<double>[clients];
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, UseProxy = false })
        {
            BaseAddress = server.HttpAddress,
        };
        http.DefaultRequestHeaders.Authorization = new("Bearer", ServerProcess.Token); // authentication is on, as in production
        int writeId = 0;
        TimeSpan serviceCpu = TimeSpan.Zero, clientCpu = TimeSpan.Zero;
        var cpuSample = Task.Run(async () =>
        {
            await Task.Delay(warm).ConfigureAwait(false);
            (serviceCpu, clientCpu) = (server.CpuTime(), Process.GetCurrentProcess().TotalProcessorTime);
            await Task.Delay(measure).ConfigureAwait(false);
            serviceCpu = server.CpuTime() - serviceCpu;
            clientCpu = Process.GetCurrentProcess().TotalProcessorTime - clientCpu;
        });
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var mine = latencies[c] = new List<double>(4096);
            var random = new Random(c * 7919 + (int)(writeShare * 1000));
            await using LineClient? tcp = protocol == "tcp" ? await LineClient.ConnectAsync(server.TcpEndPoint, ServerProcess.Token).ConfigureAwait(false) : null;
            while (Interlocked.Increment(ref requests) <= MaxRequests)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= end)
                {
                    break;
                }

                bool write = random.NextDouble() < writeShare;
                string? clause = write ? $"w({Interlocked.Increment(ref writeId)})" : null;
                bool ok = tcp is not null
                    ? await tcp.SendAsync(clause is null ? s_tcpQuery
                        : Encoding.UTF8.GetBytes($"{{\"id\":2,\"op\":\"assert\",\"clause\":\"{clause}\"}}\n")).ConfigureAwait(false)
                    : await HttpAsync(http, clause).ConfigureAwait(false);
                long done = Stopwatch.GetTimestamp();
                if (!ok)
                {
                    Interlocked.Increment(ref errors);
                }

                if (now >= measureFrom)
                {
                    mine.Add((done - now) * 1000.0 / Stopwatch.Frequency);
                    Interlocked.Increment(ref counted);
                }
            }
        }))).ConfigureAwait(false);

        await cpuSample.ConfigureAwait(false);
        double[] all = latencies.SelectMany(l => l).Order().ToArray();
        double seconds = Math.Max(1e-9, (Math.Min(Stopwatch.GetTimestamp(), end) - measureFrom) / (double)Stopwatch.Frequency);
        var result = new Result(backend, protocol, writeShare, clients, counted / seconds, Percentile(all, 0.50), Percentile(all, 0.99),
            Percentile(all, 0.999), counted, errors,
            serviceCpu.TotalMicroseconds / Math.Max(1, counted), clientCpu.TotalMicroseconds / Math.Max(1, counted));
        TerminalText.WriteFolded(
            string.Create(CultureInfo.InvariantCulture, $"  {backend,-16} {protocol,-4} writes {writeShare,5:P0} clients {clients,3}: {result.Rps,8:0} req/s"),
            string.Create(CultureInfo.InvariantCulture, $"p50 {result.P50Ms,7:0.00} ms  p99 {result.P99Ms,7:0.00} ms  p99.9 {result.P999Ms,7:0.00} ms"),
            string.Create(CultureInfo.InvariantCulture, $"CPU/req service {result.ServiceCpuUs,4:0} µs client {result.ClientCpuUs,4:0} µs  errors {errors}"));
        return result;
    }

    private static async Task<bool> HttpAsync(HttpClient http, string? clause)
    {
        using var content = new ByteArrayContent(clause is null ? s_httpQuery : Encoding.UTF8.GetBytes($"{{\"clause\":\"{clause}\"}}"));
        content.Headers.ContentType = new("application/json");
        using HttpResponseMessage response = await http.PostAsync(clause is null ? "/query" : "/assert", content).ConfigureAwait(false);
        await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
        return response.StatusCode == HttpStatusCode.OK;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static void Report(List<Result> results, double library, Dictionary<int, long> rss, DateTime started, bool quick, string runtimeFlag)
    {
        Result Find(string backend, string protocol, double writes, int clients) =>
            results.Single(r => r.Backend == backend && r.Protocol == protocol && Math.Abs(r.WriteShare - writes) < 1e-9 && r.Clients == clients);

        Result tcpPool = Find("pool/per-read", "tcp", 0, 64), tcpLocked = Find("locked", "tcp", 0, 64), httpPool = Find("pool/per-read", "http", 0, 64);
        Result tcpPoolWrites = Find("pool/per-read", "tcp", 0.01, 64);
        double serviceRatio = tcpPool.Rps / tcpLocked.Rps;
        double httpCost = tcpPool.Rps / httpPool.Rps; // per-request cost at saturation: 1 / throughput
        double p99Ratio = tcpPoolWrites.P99Ms / tcpPool.P99Ms;
        double budget = rss[1] + 16 * 6.0 * 1048576;
        double rssRatio = rss[16] / budget;
        var keys = new Dictionary<string, object?>
        {
            ["serve_library64_pool_vs_locked"] = Math.Round(library, 2),
            ["serve_tcp64_pool_vs_locked"] = Math.Round(serviceRatio, 2),
            ["serve_tcp64_pool_vs_locked_target_met"] = serviceRatio >= library,
            ["serve_http_vs_tcp_cost_64"] = Math.Round(httpCost, 2),
            ["serve_http_vs_tcp_cost_target_met"] = httpCost <= 1.5,
            ["serve_p99_1pct_writes_vs_readonly"] = Math.Round(p99Ratio, 2),
            ["serve_p99_target_met"] = p99Ratio <= 3,
            ["serve_rss_1_replica_mib"] = Math.Round(rss[1] / 1048576.0, 1),
            ["serve_rss_16_replicas_mib"] = Math.Round(rss[16] / 1048576.0, 1),
            ["serve_rss_16_vs_budget"] = Math.Round(rssRatio, 2),
            ["serve_rss_target_met"] = rssRatio <= 1.5,
            ["serve_errors"] = results.Sum(r => r.Errors),
            ["serve_measured"] = started.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture) + (quick ? " (--quick)" : ""),
            ["processor_count"] = Environment.ProcessorCount,
            ["serve_runtime"] = runtimeFlag,
        };

        var md = new StringBuilder();
        md.AppendLine("# The query service under load (`./run.sh --serve`)");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Measured {keys["serve_measured"]} on {Environment.ProcessorCount} CPUs ({RuntimeInformation.OSDescription.Trim()}), one run, idle machine. ") +
            "The service (src/Server, Release) runs in a child process on 127.0.0.1; the clients run in the bench process, each " +
            "a closed loop (send, wait for the answer, repeat): `test(X)` queries, a share of them replaced by `assertz(w(N))` " +
            "writes. TCP: one JSON-lines connection per client. HTTP: one keep-alive connection per client. Latency is per " +
            "request, measured by the client after a warm-up. CPU per request: the service process's and the client (bench) " +
            "process's user + system time over the measured window, divided by the requests answered in it; both share the " +
            "same 2 CPUs.");
        md.AppendLine();
        md.AppendLine("| backend | protocol | writes | clients | req/s | p50 ms | p99 ms | p99.9 ms | service CPU µs/req | client CPU µs/req | errors |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Result r in results)
        {
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Backend} | {r.Protocol} | {r.WriteShare:P0} | {r.Clients} | {r.Rps:0} | {r.P50Ms:0.00} | {r.P99Ms:0.00} | {r.P999Ms:0.00} | {r.ServiceCpuUs:0} | {r.ClientCpuUs:0} | {r.Errors} |");
        }

        md.AppendLine();
        md.AppendLine("Headline ratios (also in `summary-serve.json`):");
        md.AppendLine();
        foreach ((string key, object? value) in keys)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- `{key}` = {value}");
        }

        var chart = new LineChart
        {
            Title = "Query service throughput vs concurrent clients (test(X), read-only)",
            XLabel = "concurrent clients",
            YLabel = "requests/s",
            LogX = true,
        };
        foreach (string backend in new[] { "pool/per-read", "locked" })
        {
            foreach (string protocol in new[] { "tcp", "http" })
            {
                chart.Series.Add(new ChartSeries($"{backend} {protocol}", results
                    .Where(r => r.Backend == backend && r.Protocol == protocol && r.WriteShare == 0)
                    .OrderBy(r => r.Clients).Select(r => ((double)r.Clients, r.Rps)).ToList()));
            }
        }

        string dir = Path.Combine(RuntimeVariantsProbe.RepoRoot(), "docs", "results");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "serve-load.md"), md.ToString());
        chart.Save(dir, "serve-throughput");
        RuntimeVariantsProbe.MergeSummary(Path.Combine(dir, "summary-serve.json"), keys);
        TerminalText.WriteSummary(Path.Combine(dir, "serve-load.md"), keys);
    }
}
