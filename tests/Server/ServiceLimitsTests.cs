using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CowWasm.Server;
using CowWasm.Tests.Prolog;
using Microsoft.Extensions.Logging;

namespace CowWasm.Tests.Server;

/// <summary>
/// Who may use the service and what one request may cost, on a real Kestrel on loopback: the bearer token, content
/// type and Host checks, the admission queue, the answer, reply and memory budgets, deadlines that cover a slow
/// reader, and the small refusals (two clauses in one assert, halt, snapshots in a loop).
/// </summary>
[Collection(TreallaCollection.Name)]
public sealed class ServiceLimitsTests(TreallaFixture trealla)
{
    private static async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> SendAsync(HttpClient http, HttpRequestMessage request)
    {
        HttpResponseMessage response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 || !text.StartsWith('{') ? default : JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    private static HttpRequestMessage Post(string path, string body, string contentType = "application/json", string? token = RunningServer.TestToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return request;
    }

    /// <summary>
    /// What a web page can send without a preflight: a text/plain POST, no Authorization header. Before, the service
    /// parsed the body as JSON and asserted the fact.
    /// </summary>
    [Fact]
    public async Task ACrossSiteSimpleRequest_IsRefused_AndWritesNothing()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        using var bare = new HttpClient { BaseAddress = s.Server.HttpAddress };
        using HttpRequestMessage crossSite = Post("/assert", "{\"clause\":\"planted(1)\"}", "text/plain", token: null);
        crossSite.Headers.Add("Origin", "http://evil.example");
        (int status, JsonElement body, HttpResponseMessage response) = await SendAsync(bare, crossSite);
        Assert.True(status == 401, body.ToString());
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);

        // Even with the token (a page cannot set it, but an operator's script might send the wrong type) text/plain is 415.
        (status, body, _) = await SendAsync(bare, Post("/assert", "{\"clause\":\"planted(2)\"}", "text/plain"));
        Assert.True(status == 415, body.ToString());
        (status, body, _) = await SendAsync(bare, Post("/assert", "{\"clause\":\"planted(3)\"}", "application/x-www-form-urlencoded"));
        Assert.True(status == 415, body.ToString());

        Assert.Empty(await s.XsAsync("catch(planted(X), _, fail)"));
    }

    [Fact]
    public async Task WithoutTheToken_WritesAndQueriesAreRefused_HealthIsNot()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        using var bare = new HttpClient { BaseAddress = s.Server.HttpAddress };
        foreach ((string path, string body) in new[]
        {
            ("/assert", "{\"clause\":\"stranger(1)\"}"),
            ("/consult", "{\"text\":\"stranger(2).\"}"),
            ("/retract", "{\"clause\":\"x(1)\"}"),
            ("/query", "{\"goal\":\"X = 1\"}"),
        })
        {
            foreach (string? token in new[] { null, "not-the-token-0123456789" })
            {
                (int status, JsonElement reply, _) = await SendAsync(bare, Post(path, body, token: token));
                Assert.True(status == 401, $"{path} {token}: {status} {reply}");
                Assert.Equal("unauthorized", reply.GetProperty("error").GetString());
            }
        }

        using (HttpRequestMessage snapshot = Post("/snapshot", "", token: null))
        {
            Assert.Equal(401, (await SendAsync(bare, snapshot)).Status);
        }

        Assert.Equal(HttpStatusCode.OK, (await bare.GetAsync("/health")).StatusCode);
        Assert.Empty(await s.XsAsync("catch(stranger(X), _, fail)"));
        Assert.Contains(s.Logs.Records, r => r.Level == LogLevel.Information && r.Message.Contains("answered 401", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithAnonymousReads_QueriesNeedNoToken_WritesDo()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1, AnonymousReads = true });
        using var bare = new HttpClient { BaseAddress = s.Server.HttpAddress };
        Assert.Equal(200, (await SendAsync(bare, Post("/query", "{\"goal\":\"X = 1\"}", token: null))).Status);
        Assert.Equal(401, (await SendAsync(bare, Post("/assert", "{\"clause\":\"stranger(1)\"}", token: null))).Status);
    }

    /// <summary>DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example.</summary>
    [Fact]
    public async Task AForeignHostHeader_IsRefused()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        using HttpRequestMessage health = new(HttpMethod.Get, "/health");
        health.Headers.Host = "evil.example";
        Assert.Equal(400, (await SendAsync(s.Http, health)).Status);
        using HttpRequestMessage write = Post("/assert", "{\"clause\":\"rebound(1)\"}");
        write.Headers.Host = $"evil.example:{s.Server.HttpAddress.Port}";
        Assert.Equal(400, (await SendAsync(s.Http, write)).Status);
        using HttpRequestMessage local = new(HttpMethod.Get, "/health");
        local.Headers.Host = $"localhost:{s.Server.HttpAddress.Port}";
        Assert.Equal(200, (await SendAsync(s.Http, local)).Status);
        Assert.Empty(await s.XsAsync("catch(rebound(X), _, fail)"));
        Assert.Contains(s.Logs.Records, r => r.Category.Contains("HostFiltering", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AGeneratedToken_IsKeptPrivate_PrintedOnce_AndReusedOnRestart()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }

        string data = Directory.CreateTempSubdirectory("cowwasm-token-").FullName;
        try
        {
            var options = new ServerOptions { Port = 0, Replicas = 1, DataDirectory = data, Durability = CowWasm.Pool.Durability.None };
            var logs = new CapturedLogs();
            string token;
            await using (PrologServer server = await PrologServer.StartAsync(options, trealla.Module, b => b.AddProvider(logs)))
            {
                string file = Path.Combine(data, "token");
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                token = File.ReadAllText(file).Trim();
                Assert.True(token.Length >= 40, token);
                Assert.Contains(logs.Records, r => r.Level == LogLevel.Warning && r.Message.Contains(token, StringComparison.Ordinal));
                using var http = new HttpClient { BaseAddress = server.HttpAddress };
                Assert.Equal(200, (await SendAsync(http, Post("/assert", "{\"clause\":\"t(1)\"}", token: token))).Status);
            }

            var again = new CapturedLogs();
            await using (PrologServer server = await PrologServer.StartAsync(options, trealla.Module, b => b.AddProvider(again)))
            {
                Assert.DoesNotContain(again.Records, r => r.Message.Contains(token, StringComparison.Ordinal));
                using var http = new HttpClient { BaseAddress = server.HttpAddress };
                Assert.Equal(200, (await SendAsync(http, Post("/query", "{\"goal\":\"X = 1\"}", token: token))).Status);
            }

            File.SetUnixFileMode(Path.Combine(data, "token"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            ArgumentException refused = await Assert.ThrowsAsync<ArgumentException>(() => PrologServer.StartAsync(options, trealla.Module, b => b.AddProvider(again)));
            Assert.Contains("chmod 600", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// One huge answer, one goal that prints without end, many answers: each stops at its budget with a clear answer,
    /// and the service goes on (before: copied out whole, up to the guest's 4 GiB).
    /// </summary>
    [Fact]
    public async Task OutputBombs_StopAtTheirBudgets_AndTheServiceGoesOn()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 1, MaxAnswerBytes = 256 * 1024, MaxReplyBytes = 1 << 20 });
        (int status, JsonElement body) = await s.PostAsync("/query", new { goal = "findall(abcdefgh, between(1, 300000, _), L)", timeoutMs = 30000 });
        Assert.True(status == 200, body.ToString());
        Assert.Equal("error", body.GetProperty("result").GetString());
        Assert.Contains("answer_bytes", body.GetProperty("error").GetRawText(), StringComparison.Ordinal);

        (status, body) = await s.PostAsync("/query", new { goal = "forall(between(1, 100000, _), write(abcdefghij))", timeoutMs = 30000 });
        Assert.True(status == 200, body.ToString());
        Assert.True(body.ToString().Length < 300_000, $"a reply of {body.ToString().Length} bytes");

        (status, body) = await s.PostAsync("/query", new { goal = "between(1, 100000000, X), findall(abc, between(1, 100, _), L)", limit = 10000, timeoutMs = 30000 });
        Assert.True(status == 200, body.ToString());
        Assert.True(body.GetProperty("truncated").GetBoolean());
        Assert.True(body.GetProperty("limitReached").GetBoolean());
        int answers = body.GetProperty("answers").GetArrayLength();
        Assert.InRange(answers, 100, 9999);

        using HttpResponseMessage streamed = await s.Http.PostAsJsonAsync("/query",
            new { goal = "between(1, 100000000, X), findall(abc, between(1, 100, _), L)", limit = 1_000_000, stream = true, timeoutMs = 30000 });
        string[] lines = (await streamed.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using JsonDocument last = JsonDocument.Parse(lines[^1]);
        Assert.True(last.RootElement.GetProperty("truncated").GetBoolean(), lines[^1]);
        Assert.InRange(lines.Length, 100, 100_000);

        Assert.Equal(["{\"integer\":1}"], await s.XsAsync("X = 1"));
    }

    /// <summary>
    /// A goal that needs more memory than the cap gets a resource error and the replica serves on (before: the guest
    /// grew to whatever it asked for, up to 4 GiB per replica, and this goal succeeded).
    /// </summary>
    [Fact]
    public async Task AMemoryBomb_GetsAResourceError_AndTheServiceGoesOn()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 1, MaxMemoryBytes = 256L << 20 });
        for (int round = 0; round < 2; round++)
        {
            (int status, JsonElement body) = await s.PostAsync("/query", new { goal = "(findall(X, between(1, 3000000, X), L), length(L, _), fail ; true)", timeoutMs = 60000 });
            Assert.True(status is 200 or 422, body.ToString());
            string text = body.ToString();
            Assert.True(text.Contains("resource_error", StringComparison.Ordinal) || text.Contains("guest_trap", StringComparison.Ordinal), text);
            Assert.Equal(["{\"integer\":1}"], await s.XsAsync("X = 1"));
        }

        Assert.DoesNotContain(s.Logs.Records, r => r.Level >= LogLevel.Error);
    }

    /// <summary>The locked baseline's one instance has the same cap (before this change it had the module's 4 GiB).</summary>
    [Fact]
    public async Task TheLockedBaseline_HasTheSameMemoryCap()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Backend = BackendKind.Locked, MaxMemoryBytes = 256L << 20 });
        (int status, JsonElement body) = await s.PostAsync("/query", new { goal = "(findall(X, between(1, 3000000, X), L), length(L, _), fail ; true)", timeoutMs = 60000 });
        string text = body.ToString();
        Assert.True(text.Contains("resource_error", StringComparison.Ordinal) || text.Contains("guest_trap", StringComparison.Ordinal), $"{status}: {text}");
    }

    /// <summary>
    /// A client that starts a stream and stops reading holds its replica only until the request's deadline: a write
    /// behind it waits at most about that long (before: until the client read or went away).
    /// </summary>
    [Fact]
    public async Task ASlowStreamingClient_DelaysAWriteByNoMoreThanItsDeadline()
    {
        // A reply budget this test cannot reach: the stream must be stopped by its deadline, not its size.
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1, MaxReplyBytes = 1L << 40 });
        await s.PostAsync("/consult", new { text = ":- dynamic(w/1)." });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/query")
        {
            Content = JsonContent.Create(new { goal = "between(1, 100000000, X), findall(abcdefgh, between(1, 20000, _), L)", limit = 1_000_000, stream = true, timeoutMs = 2000 }),
        };
        var sinceStream = Stopwatch.StartNew(); // the stream's 2 s deadline starts about now, on the service's side
        using HttpResponseMessage stalled = await s.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, stalled.StatusCode);
        // Answers of ~400 KB fill the socket buffers within this, so the stream's flush waits with the guest idle: only
        // the deadline covering the flush can release the replica (the guest's own interruption never comes).
        await Task.Delay(500);

        var clock = Stopwatch.StartNew();
        (int status, JsonElement body) = await s.PostAsync("/assert", new { clause = "w(1)", timeoutMs = 30000 });
        Assert.True(status == 200, body.ToString());
        TimeSpan waited = clock.Elapsed, done = sinceStream.Elapsed;
        Assert.True(waited < TimeSpan.FromSeconds(2 + 3), $"the write waited {waited.TotalSeconds:0.0} s behind a 2 s stream");
        Assert.Equal(["{\"integer\":1}"], await s.XsAsync("w(X)"));
        // Held until the stream's deadline: the write finished no sooner than about 2 s after the stream began (measured
        // from the stream's start, not the write's, so a slow machine that starts the write late does not fail this).
        string streamedText = done > TimeSpan.FromSeconds(1.8) ? "" : await stalled.Content.ReadAsStringAsync();
        Assert.True(done > TimeSpan.FromSeconds(1.8), $"the write finished {done.TotalSeconds:0.00} s after the stream began: the stream did not hold the gate to its deadline, so this test shows nothing; it sent {streamedText.Length} chars ending {streamedText[Math.Max(0, streamedText.Length - 300)..]}");
        // The stream's handler logs its 504 on its own thread, after it released the replica the write was waiting for.
        for (int i = 0; i < 100 && !s.Logs.Records.Any(r => r.Message.Contains("answered 504", StringComparison.Ordinal)); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(s.Logs.Records.Any(r => r.Message.Contains("answered 504", StringComparison.Ordinal)),
            string.Join(" | ", s.Logs.Records.Where(r => r.Category.StartsWith("CowWasm", StringComparison.Ordinal)).Select(r => r.Message)));
    }

    [Fact]
    public async Task BeyondTheQueue_RequestsGet503WithRetryAfter_AndTheOthersAreServed()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 1, MaxConcurrentRequests = 1, MaxQueuedRequests = 1 });
        Task<HttpResponseMessage>[] requests = Enumerable.Range(0, 4)
            .Select(_ => s.Http.PostAsJsonAsync("/query", new { goal = "(between(1, 30000000, _), fail ; X = 1)", timeoutMs = 30000 }))
            .ToArray();
        HttpResponseMessage[] responses = await Task.WhenAll(requests);
        try
        {
            HttpResponseMessage[] busy = responses.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToArray();
            Assert.NotEmpty(busy);
            Assert.All(busy, r => Assert.Equal(TimeSpan.FromSeconds(1), r.Headers.RetryAfter?.Delta));
            Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
            Assert.Equal(4, responses.Count(r => r.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable));
        }
        finally
        {
            foreach (HttpResponseMessage response in responses)
            {
                response.Dispose();
            }
        }

        Assert.Contains(s.Logs.Records, r => r.Message.Contains("answered 503", StringComparison.Ordinal));
    }

    /// <summary>A deadline that passes in the queue is a 504, not a request that runs late.</summary>
    [Fact]
    public async Task ADeadlineThatPassesInTheQueue_Is504()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, Replicas = 1, MaxConcurrentRequests = 1 });
        Task<(int, JsonElement)> slow = s.PostAsync("/query", new { goal = "(between(1, 40000000, _), fail ; X = 1)", timeoutMs = 30000 });
        await Task.Delay(200);
        var clock = Stopwatch.StartNew();
        (int status, JsonElement body) = await s.PostAsync("/query", new { goal = "X = 1", timeoutMs = 300 });
        Assert.True(status == 504, body.ToString());
        Assert.Contains("waited", body.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), clock.Elapsed.ToString());
        Assert.Equal(200, (await slow).Item1);
    }

    [Fact]
    public async Task SnapshotsInALoop_AreRefusedWith429()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        (int first, JsonElement body) = await s.PostRawAsync("/snapshot", []);
        Assert.True(first == 200, body.ToString());
        using HttpResponseMessage second = await s.Http.PostAsync("/snapshot", null);
        Assert.Equal((HttpStatusCode)429, second.StatusCode);
        Assert.NotNull(second.Headers.RetryAfter?.Delta);
    }

    /// <summary>Two clauses in one assert are a syntax error, not the first clause with the second dropped (before: 200, p/0 only).</summary>
    [Theory]
    [InlineData("two(1). two(2).")]
    [InlineData("two(1). two(2)")]
    [InlineData("two(1).\ntwo(2).")]
    public async Task AnAssertOfTwoClauses_IsRefused_AndAddsNothing(string clause)
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        await s.PostAsync("/consult", new { text = ":- dynamic(two/1)." });
        (int status, JsonElement body) = await s.PostAsync("/assert", new { clause });
        Assert.True(status == 400, body.ToString());
        Assert.Equal("syntax_error", body.GetProperty("error").GetString());
        Assert.Empty(await s.XsAsync("two(X)"));

        (status, body) = await s.PostAsync("/assert", new { clause = "two(3) % a comment" });
        Assert.True(status == 200, body.ToString());
        (status, body) = await s.PostAsync("/assert", new { clause = "two(X) :- X = \"a. b\"" });
        Assert.True(status == 200, body.ToString());
        Assert.Equal(2, (await s.XsAsync("two(X)")).Count);
    }

    /// <summary>
    /// A goal that makes the guest trap (Trealla overflows its C stack in maplist/2 over 20,000 elements) or halts is the
    /// client's doing: 422, logged at Information without a stack trace (before: 500, logged at Error with one), and the
    /// service goes on.
    /// </summary>
    [Fact]
    public async Task ATrapOrAHalt_IsAnsweredAsTheClients_NotAnErrorInTheLog()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1 });
        await s.PostAsync("/consult", new { text = ":- dynamic(h/1)." });
        for (int i = 0; i < 3; i++)
        {
            (int status, JsonElement body) = await s.PostAsync("/query", new { goal = "length(L, 20000), maplist(=(a), L), fail" });
            Assert.True(status == 422, body.ToString());
            Assert.Equal("guest_trap", body.GetProperty("error").GetString());
            (status, body) = await s.PostAsync("/consult", new { text = "h :- length(L, 20000), maplist(=(a), L), fail.\n:- h." });
            Assert.True(status is 200 or 400 or 422, body.ToString());
            (status, body) = await s.PostAsync("/query", new { goal = "halt" });
            Assert.True(status is 200 or 422, body.ToString());
            (status, body) = await s.PostAsync("/consult", new { text = ":- halt." });
            Assert.True(status is 200 or 400 or 422, body.ToString());
            (status, body) = await s.PostAsync("/assert", new { clause = $"h({i}) :- true", timeoutMs = 5000 });
            Assert.True(status == 200, body.ToString());
        }

        Assert.DoesNotContain(s.Logs.Records, r => r.Level >= LogLevel.Error);
        Assert.Equal(["{\"integer\":1}"], await s.XsAsync("X = 1"));
    }

    /// <summary>Connections past --max-connections are closed as they arrive; the ones within it are served.</summary>
    [Fact]
    public async Task ConnectionsPastTheLimit_AreClosed()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, TcpPort = 0, Replicas = 1, MaxConnections = 2 });
        using var first = new System.Net.Sockets.TcpClient();
        using var second = new System.Net.Sockets.TcpClient();
        await first.ConnectAsync(s.Server.TcpEndPoint!);
        await second.ConnectAsync(s.Server.TcpEndPoint!);
        using var third = new System.Net.Sockets.TcpClient();
        await third.ConnectAsync(s.Server.TcpEndPoint!); // the kernel accepts; Kestrel closes it
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int read = await third.GetStream().ReadAsync(new byte[16], timeout.Token);
        Assert.Equal(0, read);

        await first.GetStream().WriteAsync(Encoding.UTF8.GetBytes("{\"id\":1,\"op\":\"health\"}\n"), timeout.Token);
        using var reader = new StreamReader(first.GetStream());
        Assert.Contains("\"status\":200", await reader.ReadLineAsync(timeout.Token), StringComparison.Ordinal);
    }

    /// <summary>HTTP headers that do not arrive within --header-timeout-ms end the connection (Kestrel's check, once a second).</summary>
    [Fact]
    public async Task HttpHeadersThatDoNotArrive_EndTheConnection()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, Replicas = 1, HeaderTimeout = TimeSpan.FromSeconds(1) });
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, s.Server.HttpAddress.Port);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: localhost\r\n")); // and nothing more
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var buffer = new byte[4096];
        string reply = "";
        for (int n; (n = await stream.ReadAsync(buffer, timeout.Token)) > 0;)
        {
            reply += Encoding.ASCII.GetString(buffer, 0, n);
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), clock.Elapsed.ToString());
        Assert.True(reply.Length == 0 || reply.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), reply);
    }
}
