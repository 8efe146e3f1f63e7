using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Server;
using CowWasm.Tests.Prolog;
using Microsoft.Extensions.Logging;

namespace CowWasm.Tests.Server;

/// <summary>
/// The HTTP API on a real Kestrel on loopback over a real pool of the Trealla guest: every endpoint, every kind of bad
/// input (status, error JSON, a logged record, and the service still answering afterwards), streaming, disconnects,
/// concurrency against a plain interpreter, snapshots across a restart, and graceful shutdown.
/// </summary>
[Collection(TreallaCollection.Name)]
public sealed class HttpApiTests(TreallaFixture trealla)
{
    private static async Task AssertStillServesAsync(RunningServer s)
    {
        Assert.Equal(["{\"integer\":1}", "{\"integer\":2}"], await s.XsAsync("member(X, [1,2])"));
    }

    [Theory]
    [InlineData(GuestRuntime.Native)]
    [InlineData(GuestRuntime.Wasmtime)]
    public async Task EveryEndpoint_AnswersWithTypedJson(GuestRuntime runtime)
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, runtime: runtime);
        using (HttpResponseMessage health = await s.Http.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            JsonElement h = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("ok", h.GetProperty("health").GetString());
            Assert.Equal("pool", h.GetProperty("backend").GetString());
            Assert.Equal(2, h.GetProperty("replicas").GetInt32());
        }

        (int status, JsonElement body) = await s.PostAsync("/consult", new { text = ":- dynamic(color/1). color(red). color(green). p(X, Y) :- color(X), R is 7 rdiv 3, Y = f(X, \"s\", 1.5, R)." });
        Assert.True(status == 200, body.ToString());

        (status, body) = await s.PostAsync("/query", new { goal = "p(X, Y)" });
        Assert.Equal(200, status);
        Assert.Equal("success", body.GetProperty("result").GetString());
        JsonElement first = body.GetProperty("answers")[0];
        Assert.Equal("{\"atom\":\"red\"}", first.GetProperty("X").GetRawText());
        JsonElement y = first.GetProperty("Y");
        Assert.Equal("f", y.GetProperty("functor").GetString());
        Assert.Equal("{\"string\":\"s\"}", y.GetProperty("args")[1].GetRawText());
        Assert.Equal(1.5, y.GetProperty("args")[2].GetProperty("float").GetDouble());
        Assert.Equal("{\"rational\":{\"numerator\":7,\"denominator\":3}}", y.GetProperty("args")[3].GetRawText());
        Assert.Equal(2, body.GetProperty("answers").GetArrayLength());
        Assert.False(body.GetProperty("limitReached").GetBoolean());

        (status, body) = await s.PostAsync("/query", new { goal = "X = [1, 123456789012345678901234567890]" });
        Assert.Equal("[{\"integer\":1},{\"integer\":\"123456789012345678901234567890\"}]", body.GetProperty("answers")[0].GetProperty("X").GetRawText());

        (status, body) = await s.PostAsync("/query", new { goal = "color(blue)" });
        Assert.Equal((200, "failure"), (status, body.GetProperty("result").GetString()));

        (status, body) = await s.PostAsync("/query", new { goal = "between(1, 1000000000, X)", limit = 3 });
        Assert.Equal(3, body.GetProperty("answers").GetArrayLength());
        Assert.True(body.GetProperty("limitReached").GetBoolean());

        (status, body) = await s.PostAsync("/query", new { goal = "atom_length(X, 1)" }); // a runtime error is an answer
        Assert.Equal((200, "error"), (status, body.GetProperty("result").GetString()));
        Assert.Equal("error", body.GetProperty("error").GetProperty("functor").GetString());

        Assert.Equal(200, (await s.PostAsync("/assert", new { clause = "color(blue)" })).Status);
        Assert.Equal(["{\"atom\":\"red\"}", "{\"atom\":\"green\"}", "{\"atom\":\"blue\"}"], await s.XsAsync("color(X)"));
        (status, body) = await s.PostAsync("/retract", new { clause = "color(red)" });
        Assert.True(body.GetProperty("retracted").GetBoolean());
        (status, body) = await s.PostAsync("/retract", new { clause = "color(red)" });
        Assert.False(body.GetProperty("retracted").GetBoolean());
        Assert.Equal(["{\"atom\":\"green\"}", "{\"atom\":\"blue\"}"], await s.XsAsync("color(X)"));

        // No --snapshot: a durable service saves into its data directory (what the next start-up reads, with the log after it).
        (status, body) = await s.PostRawAsync("/snapshot", []);
        Assert.Equal((200, Path.Combine(s.Server.Options.ResolvedDataDirectory, "snapshot")), (status, body.GetProperty("path").GetString()));
    }

    [Fact]
    public async Task BadInput_GetsAnAnswer_IsLogged_AndTheServiceKeepsServing()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions
        {
            Port = 0, Replicas = 2, MaxRequestBytes = 4096, DefaultTimeout = TimeSpan.FromSeconds(20),
        });
        await s.PostAsync("/consult", new { text = "kb(1)." });

        var cases = new (string Name, string Path, byte[] Body, int Status, string Code)[]
        {
            ("malformed JSON", "/query", "{\"goal\": "u8.ToArray(), 400, "bad_json"),
            ("unknown field", "/query", "{\"goal\":\"true\",\"colour\":1}"u8.ToArray(), 400, "bad_json"),
            ("missing goal", "/query", "{\"limit\":1}"u8.ToArray(), 400, "bad_json"),
            ("JSON null", "/query", "null"u8.ToArray(), 400, "bad_request"),
            ("syntax error", "/query", "{\"goal\":\"foo(\"}"u8.ToArray(), 400, "syntax_error"),
            ("invalid UTF-8", "/query", [.. "{\"goal\":\"atom_length('"u8, 0xFF, 0xFE, .. "', N)\"}"u8], 400, "bad_json"),
            ("limit too large", "/query", "{\"goal\":\"true\",\"limit\":100000}"u8.ToArray(), 400, "bad_request"),
            ("deadline too long", "/query", "{\"goal\":\"true\",\"timeoutMs\":99999999}"u8.ToArray(), 400, "bad_request"),
            ("oversized body", "/query", Encoding.UTF8.GetBytes($"{{\"goal\":\"atom_length('{new string('a', 8000)}', N)\"}}"), 413, "too_large"),
            ("runaway goal", "/query", "{\"goal\":\"repeat, fail\",\"timeoutMs\":300}"u8.ToArray(), 504, "timeout"),
            ("a write that raises", "/assert", "{\"clause\":\"foo :- 1\"}"u8.ToArray(), 422, "prolog_error"),
            ("a clause that tries to run a goal", "/assert", "{\"clause\":\"a)), halt, ((b\"}"u8.ToArray(), 400, "syntax_error"),
            ("consult with a syntax error", "/consult", "{\"text\":\"kb(2). kb(\"}"u8.ToArray(), 400, "syntax_error"),
        };
        foreach ((string name, string path, byte[] body, int status, string code) in cases)
        {
            int before = s.Logs.Records.Count;
            (int got, JsonElement reply) = await s.PostRawAsync(path, body);
            Assert.True(got == status, $"{name}: {got} {reply}");
            Assert.True(reply.GetProperty("error").GetString() == code, $"{name}: {reply}");
            Assert.False(string.IsNullOrEmpty(reply.GetProperty("message").GetString()), name);
            Assert.True(s.Logs.Records.Skip(before).Any(r => r.Message.Contains(status.ToString(), StringComparison.Ordinal)), $"{name}: not logged");
            await AssertStillServesAsync(s);
        }

        // The writes that failed were rolled back: kb/1 is as consulted, and no foo/0 or a/0 exists.
        Assert.Equal(["{\"integer\":1}"], await s.XsAsync("kb(X)"));
        (_, JsonElement foo) = await s.PostAsync("/query", new { goal = "catch(foo, E, true), X = E" });
        Assert.Contains("existence_error", foo.ToString());
    }

    [Fact]
    public async Task AStreamingQuery_Writes100000AnswersAsNdjson()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/query")
        {
            Content = JsonContent.Create(new { goal = "between(1, 100000, X)", limit = 200000, stream = true, timeoutMs = 60000 }),
        };
        using HttpResponseMessage response = await s.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        int expected = 1;
        string? line;
        JsonElement last = default;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            last = JsonDocument.Parse(line).RootElement.Clone();
            if (last.TryGetProperty("answer", out JsonElement answer))
            {
                Assert.Equal(expected++, answer.GetProperty("X").GetProperty("integer").GetInt32());
            }
        }

        Assert.Equal(100_001, expected);
        Assert.Equal("success", last.GetProperty("result").GetString());
        Assert.Equal(100_000, last.GetProperty("count").GetInt32());
        Assert.False(last.GetProperty("limitReached").GetBoolean());
    }

    [Fact]
    public async Task AClientThatDisconnectsMidAnswer_FreesItsReplica()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        for (int i = 0; i < 3; i++)
        {
            using (var request = new HttpRequestMessage(HttpMethod.Post, "/query")
            {
                Content = JsonContent.Create(new { goal = "between(1, 1000000000, X)", limit = 1_000_000, stream = true, timeoutMs = 60000 }),
            })
            using (HttpResponseMessage response = await s.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
            {
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                Assert.Contains("\"answer\"", await reader.ReadLineAsync());
            } // disposing the response aborts the stream mid-answer

            // One replica: it must have come back for this to answer well before the 60 s deadline.
            using var soon = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            using HttpResponseMessage next = await s.Http.PostAsJsonAsync("/query", new { goal = "X = 1" }, soon.Token);
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        }
    }

    [Fact]
    public async Task ConcurrentClients_AgreeWithAPlainInterpreter()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        const string program = "edge(a,b). edge(b,c). edge(c,d). edge(b,e). path(X,Y) :- edge(X,Y). path(X,Y) :- edge(X,Z), path(Z,Y).";
        await s.PostAsync("/consult", new { text = program });
        string[] goals = ["path(a, X)", "path(b, X)", "findall(Y, path(X, Y), X)", "path(X, d)", "length(X, 2)"];
        (var guest, var plain) = trealla.Plain();
        using (guest)
        {
            plain.Consult(program);
            var expected = goals.ToDictionary(g => g, g => string.Join("|", plain.Query(g).Take(10).Select(a => a.ToString())));
            var tasks = Enumerable.Range(0, 64).Select(async i =>
            {
                string goal = goals[i % goals.Length];
                (int status, JsonElement body) = await s.PostAsync("/query", new { goal });
                Assert.Equal(200, status);
                return (goal, count: body.GetProperty("answers").GetArrayLength());
            });
            foreach ((string goal, int count) in await Task.WhenAll(tasks))
            {
                Assert.Equal(expected[goal].Split('|').Length, count);
            }
        }
    }

    [Theory]
    [InlineData(GuestRuntime.Native, GuestRuntime.Native)]
    [InlineData(GuestRuntime.Wasmtime, GuestRuntime.Wasmtime)]
    [InlineData(GuestRuntime.Native, GuestRuntime.Wasmtime)] // snapshots carry the module's hash and every global: either backend loads them
    [InlineData(GuestRuntime.Wasmtime, GuestRuntime.Native)]
    public async Task ASnapshot_SurvivesARestart_WithIdenticalAnswers(GuestRuntime savedOn, GuestRuntime loadedOn)
    {
        string dir = Directory.CreateTempSubdirectory("cowwasm-server-").FullName;
        string path = Path.Combine(dir, "kb.snap");
        try
        {
            var options = new ServerOptions { Port = 0, Replicas = 2, SnapshotPath = path };
            List<string> before;
            await using (RunningServer s = await RunningServer.StartAsync(trealla, options, savedOn))
            {
                await s.PostAsync("/consult", new { text = ":- dynamic(fact/1). fact(1). fact(two). fact(\"three\")." });
                (int asserted, JsonElement reply) = await s.PostAsync("/assert", new { clause = "fact(f(4))" });
                Assert.True(asserted == 200, reply.ToString());
                before = await s.XsAsync("fact(X)");
                (int status, JsonElement body) = await s.PostRawAsync("/snapshot", []);
                Assert.True(status == 200, body.ToString());
                Assert.True(File.Exists(path));
                Assert.Equal(new FileInfo(path).Length, body.GetProperty("bytes").GetInt64());
            }

            await using (RunningServer restarted = await RunningServer.StartAsync(trealla, options, loadedOn))
            {
                Assert.Equal(before, await restarted.XsAsync("fact(X)"));
                Assert.Equal(4, before.Count);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task GracefulShutdown_FinishesRequestsInFlight_RefusesNewOnes_AndSavesTheSnapshot()
    {
        string dir = Directory.CreateTempSubdirectory("cowwasm-server-").FullName;
        string path = Path.Combine(dir, "kb.snap");
        try
        {
            var options = new ServerOptions
            {
                Port = 0, Replicas = 2, SnapshotPath = path, SaveOnShutdown = true, ShutdownGrace = TimeSpan.FromSeconds(30),
            };
            RunningServer s = await RunningServer.StartAsync(trealla, options);
            await s.PostAsync("/assert", new { clause = "saved(yes)" });
            // A query that runs for a while (a counting loop), then answers.
            Task<(int, JsonElement)> inFlight = s.PostAsync("/query", new { goal = "(between(1, 400000, _), fail ; X = done)", timeoutMs = 30000 });
            await Task.Delay(100);
            Uri address = s.Server.HttpAddress;
            await s.Server.StopAsync();
            (int status, JsonElement body) = await inFlight;
            Assert.True(status == 200, body.ToString());
            Assert.Equal("{\"atom\":\"done\"}", body.GetProperty("answers")[0].GetProperty("X").GetRawText());
            using var fresh = new HttpClient { BaseAddress = address };
            await Assert.ThrowsAsync<HttpRequestException>(() => fresh.GetAsync("/health"));
            Assert.True(File.Exists(path));
            Assert.Contains(s.Logs.Records, r => r.Message.Contains("on shutdown", StringComparison.Ordinal));
            await s.DisposeAsync();

            await using RunningServer restarted = await RunningServer.StartAsync(trealla, options with { SaveOnShutdown = false });
            Assert.Equal(["{\"atom\":\"yes\"}"], await restarted.XsAsync("saved(X)"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(GuestRuntime.Native, GuestRuntime.Native)]
    [InlineData(GuestRuntime.Wasmtime, GuestRuntime.Wasmtime)]
    [InlineData(GuestRuntime.Wasmtime, GuestRuntime.Native)]
    public async Task AFollowerService_ServesTheLeadersCommits_AndRefusesWrites(GuestRuntime leaderRuntime, GuestRuntime followerRuntime)
    {
        string dir = Directory.CreateTempSubdirectory("cowwasm-server-").FullName;
        try
        {
            string socket = Path.Combine(dir, "kb.sock");
            await using RunningServer leader = await RunningServer.StartAsync(trealla,
                new ServerOptions { Port = 0, Replicas = 1, FollowersSocket = socket }, leaderRuntime);
            await leader.PostAsync("/consult", new { text = ":- dynamic(city/1). city(oslo)." });
            await using RunningServer follower = await RunningServer.StartAsync(trealla,
                new ServerOptions { Port = 0, Replicas = 2, FollowSocket = socket }, followerRuntime);
            Assert.Equal(["{\"atom\":\"oslo\"}"], await follower.XsAsync("city(X)"));

            await leader.PostAsync("/assert", new { clause = "city(rome)" });
            List<string> seen = [];
            for (int i = 0; i < 400 && seen.Count < 2; i++)
            {
                seen = await follower.XsAsync("city(X)");
            }

            Assert.Equal(["{\"atom\":\"oslo\"}", "{\"atom\":\"rome\"}"], seen);
            (int status, JsonElement body) = await follower.PostAsync("/assert", new { clause = "city(paris)" });
            Assert.Equal((409, "read_only_follower"), (status, body.GetProperty("error").GetString()));
            using HttpResponseMessage health = await follower.Http.GetAsync("/health");
            JsonElement h = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("follower", h.GetProperty("backend").GetString());
            Assert.True(h.GetProperty("sequence").GetInt64() >= 1);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task TheLockedBaseline_ServesTheSameApi()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Backend = BackendKind.Locked });
        await s.PostAsync("/consult", new { text = "n(1). n(2)." });
        Assert.Equal(["{\"integer\":1}", "{\"integer\":2}"], await s.XsAsync("n(X)"));
        (int status, JsonElement body) = await s.PostRawAsync("/snapshot", []);
        Assert.Equal(409, status); // no path configured; with one it would be 501 (no committed state to save)
        Assert.Equal("no_snapshot_path", body.GetProperty("error").GetString());
        Assert.Equal(LogLevel.Information, s.Logs.Records.Last(r => r.Message.Contains("409", StringComparison.Ordinal)).Level);
    }
}
