using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using CowWasm.Tests.Prolog;

namespace CowWasm.Tests.Server;

/// <summary>
/// The service's default durability: a child-process service under a concurrent write load is SIGKILLed at random
/// moments, 20 times; after each restart (the same command: newest snapshot, if any, plus the commit log) every write
/// that was answered 200 is there, and nothing is there half.
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

    private Process Start(int port)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "CowWasm.Server.dll"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--replicas", "1", "--data-dir", _dir, // the default durability: log
        })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
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

    [Fact]
    public async Task AnsweredWrites_SurviveKill9_TwentyTimes_UnderConcurrentLoad()
    {
        _ = trealla.Wasmtime;
        var random = new Random(7);
        var acknowledged = new HashSet<int>();
        int next = 0, kills = 0;
        for (int round = 0; round <= 20; round++)
        {
            int port = FreePort();
            using Process service = Start(port);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
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
        Console.WriteLine($"20 SIGKILLs under 8 writing clients: all {acknowledged.Count} answered writes were there after each restart");
    }
}
