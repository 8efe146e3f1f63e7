using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using CowWasm.Tests.Prolog;
using CowWasm.Tests.Support;

namespace CowWasm.Tests.Server;

/// <summary>
/// The service's durability: a child-process service under a concurrent write load is SIGKILLed at random moments, 20
/// times; after each restart (the same command: newest snapshot, if any, plus the commit log — and, replicated, the
/// stream's commits after the log's) every write that was answered 200 is there, and nothing is there half. Replicated,
/// a follower service started from JetStream alone afterwards has them all too.
/// </summary>
[Collection(TreallaCollection.Name)] // the Trealla guest is fetched and compiled (both caches warm) before the children start
public sealed class DurableServiceTests(TreallaFixture trealla) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-durable-service-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Process Start(int port, params string[] more)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "CowWasm.Server.dll"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--replicas", "1",
        }.Concat(more))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        start.Environment["COWWASM_TOKEN"] = RunningServer.TestToken;
        Process process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task WaitHealthyAsync(HttpClient http, Process process)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            Assert.False(process.HasExited, $"the service exited with {(process.HasExited ? process.ExitCode : 0)} while starting");
            try
            {
                using HttpResponseMessage health = await http.GetAsync("/health");
                if (health.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(50);
        }

        Assert.Fail("the service did not become healthy in 2 minutes");
    }

    private static async Task<HashSet<int>> FactsAsync(HttpClient http)
    {
        using HttpResponseMessage reply = await http.PostAsJsonAsync("/query", new { goal = "catch(findall(N, w(N), L), _, L = [])", limit = 1 });
        JsonElement body = await reply.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(reply.IsSuccessStatusCode, body.ToString());
        int[] all = [.. body.GetProperty("answers")[0].GetProperty("L").EnumerateArray().Select(e => e.GetProperty("integer").GetInt32())];
        Assert.Equal(all.Length, all.Distinct().Count()); // no write is there twice
        return [.. all];
    }

    /// <summary>A follower service started from JetStream alone has every write in <paramref name="acknowledged"/>.</summary>
    private async Task AssertFollowerHasAsync(string natsUrl, HashSet<int> acknowledged)
    {
        int port = FreePort();
        using Process follower = Start(port, "--follow-nats", natsUrl, "--replication-name", "crash");
        using HttpClient http = RunningServer.Client(new Uri($"http://127.0.0.1:{port}"), TimeSpan.FromSeconds(30));
        try
        {
            await WaitHealthyAsync(http, follower);
            HashSet<int> followed = [];
            for (var clock = Stopwatch.StartNew(); !acknowledged.IsSubsetOf(followed) && clock.Elapsed < TimeSpan.FromMinutes(1);)
            {
                followed = await FactsAsync(http);
            }

            Assert.True(acknowledged.IsSubsetOf(followed),
                $"the follower lacks acknowledged writes: {string.Join(", ", acknowledged.Except(followed).Take(10))}");
        }
        finally
        {
            follower.Kill();
            await follower.WaitForExitAsync();
        }
    }

    [Theory]
    [InlineData("log")] // the default
    [InlineData("replicated")]
    public async Task AnsweredWrites_SurviveKill9_TwentyTimes_UnderConcurrentLoad(string durability)
    {
        _ = trealla.Wasmtime;
        await using NatsServers? nats = durability == "replicated" ? await NatsServers.StartAsync() : null;
        string[] leader = nats is null
            ? ["--data-dir", _dir]
            : ["--data-dir", _dir, "--durability", "replicated", "--replicate-to", nats.Url, "--replication-name", "crash"];
        var random = new Random(7);
        var acknowledged = new HashSet<int>();
        int next = 0, kills = 0;
        for (int round = 0; round <= 20; round++)
        {
            if (round == 20 && nats is not null)
            {
                // Before the leader restarts (and publishes what only its log has): acknowledged means JetStream has it.
                await AssertFollowerHasAsync(nats.Url, acknowledged);
            }

            int port = FreePort();
            using Process service = Start(port, leader);
            using HttpClient http = RunningServer.Client(new Uri($"http://127.0.0.1:{port}"), TimeSpan.FromSeconds(30));
            try
            {
                await WaitHealthyAsync(http, service);
                if (round == 0)
                {
                    using HttpResponseMessage consult = await http.PostAsJsonAsync("/consult", new { text = ":- dynamic(w/1)." });
                    Assert.Equal(HttpStatusCode.OK, consult.StatusCode);
                }

                HashSet<int> present = await FactsAsync(http);
                Assert.True(acknowledged.IsSubsetOf(present),
                    $"round {round}: acknowledged but lost: {string.Join(", ", acknowledged.Except(present).Take(10))}");
                if (round == 20)
                {
                    break;
                }

                // 8 clients assert w(N) with fresh N until the service dies under them.
                using var stop = new CancellationTokenSource();
                var answered = new System.Collections.Concurrent.ConcurrentBag<int>();
                Task[] clients = [.. Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        int n = Interlocked.Increment(ref next);
                        try
                        {
                            using HttpResponseMessage reply = await http.PostAsJsonAsync("/assert", new { clause = $"w({n})" }, stop.Token);
                            if (reply.StatusCode == HttpStatusCode.OK)
                            {
                                answered.Add(n);
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
                        {
                            return; // the service is gone
                        }
                    }
                }))];
                await Task.Delay(random.Next(100, 600));
                service.Kill(); // SIGKILL: writes in flight, fsyncs pending
                kills++;
                await stop.CancelAsync();
                await Task.WhenAll(clients);
                acknowledged.UnionWith(answered);
            }
            finally
            {
                if (!service.HasExited)
                {
                    service.Kill();
                }

                await service.WaitForExitAsync();
            }
        }

        Assert.Equal(20, kills);
        Assert.True(acknowledged.Count > 100, $"only {acknowledged.Count} writes were answered in 20 rounds");
        Console.WriteLine($"20 SIGKILLs ({durability}) under 8 writing clients: all {acknowledged.Count} answered writes were there after each restart");
    }
}
