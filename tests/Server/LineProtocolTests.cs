using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CowWasm.Server;
using CowWasm.Tests.Prolog;

namespace CowWasm.Tests.Server;

/// <summary>The JSON-lines TCP protocol on a real Kestrel on loopback: pipelining, bad lines, half-sent frames.</summary>
[Collection(TreallaCollection.Name)]
public sealed class LineProtocolTests(TreallaFixture trealla)
{
    private sealed class Connection : IDisposable
    {
        private readonly TcpClient _client = new();
        private StreamReader? _reader;

        public NetworkStream Stream => _client.GetStream();

        /// <summary>Connects and, unless told not to, authenticates with the test token.</summary>
        public static async Task<Connection> OpenAsync(RunningServer s, bool authenticate = true)
        {
            var c = new Connection();
            await c._client.ConnectAsync(s.Server.TcpEndPoint!);
            c._reader = new StreamReader(c.Stream, Encoding.UTF8);
            if (authenticate)
            {
                await c.SendAsync($"{{\"id\":\"auth\",\"op\":\"auth\",\"token\":\"{RunningServer.TestToken}\"}}\n");
                JsonElement reply = (await c.ReceiveAsync())!.Value;
                Assert.True(reply.GetProperty("status").GetInt32() == 200, reply.ToString());
            }

            return c;
        }

        public Task SendAsync(string text) => Stream.WriteAsync(Encoding.UTF8.GetBytes(text)).AsTask();

        public async Task<JsonElement?> ReceiveAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            string? line = await _reader!.ReadLineAsync(timeout.Token);
            return line is null ? null : JsonDocument.Parse(line).RootElement.Clone();
        }

        public void Dispose() => _client.Dispose();
    }

    [Fact]
    public async Task PipelinedRequests_AreAnsweredByIdInAnyOrder()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using Connection c = await Connection.OpenAsync(s);
        await c.SendAsync("{\"id\":\"c\",\"op\":\"consult\",\"text\":\":- dynamic(v/1). v(0).\"}\n");
        Assert.Equal(200, (await c.ReceiveAsync())!.Value.GetProperty("status").GetInt32());

        // 40 requests in one write: queries, a slow one, health, writes.
        var batch = new StringBuilder();
        for (int i = 0; i < 40; i++)
        {
            batch.Append(i switch
            {
                0 => "{\"id\":0,\"op\":\"query\",\"goal\":\"(between(1, 2000000, _), fail ; X = slow)\"}", // long enough that the rest finish first
                5 => "{\"id\":5,\"op\":\"health\"}",
                // The write comes last: a waiting writer holds back reads that arrive after it (the gate's fairness), and
                // the reads before it must be admitted first for the point of this test — nothing waits for the slow query.
                39 => "{\"id\":39,\"op\":\"assert\",\"clause\":\"v(39)\"}",
                _ => $"{{\"id\":{i},\"op\":\"query\",\"goal\":\"X is {i} * 2\"}}",
            }).Append('\n');
        }

        await c.SendAsync(batch.ToString());
        var replies = new Dictionary<int, JsonElement>();
        var order = new List<int>();
        for (int i = 0; i < 40; i++)
        {
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            int id = reply.GetProperty("id").GetInt32();
            replies.Add(id, reply);
            order.Add(id);
        }

        Assert.Equal(Enumerable.Range(0, 40), replies.Keys.Order());
        Assert.True(replies.Values.All(r => r.GetProperty("status").GetInt32() == 200), string.Join("\n", replies.Values));
        Assert.Equal("{\"atom\":\"slow\"}", replies[0].GetProperty("answers")[0].GetProperty("X").GetRawText());
        Assert.Equal(2 * 7, replies[7].GetProperty("answers")[0].GetProperty("X").GetProperty("integer").GetInt32());
        Assert.Equal("ok", replies[5].GetProperty("health").GetString());
        Assert.NotEqual(0, order[0]); // the slow query did not hold the others back
    }

    [Fact]
    public async Task RequestErrors_GetErrors_AndTheConnectionGoesOn()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using Connection c = await Connection.OpenAsync(s);
        (string Line, int Status, string Code)[] cases =
        [
            ("{\"id\":4,\"op\":\"query\"}", 400, "bad_request"),
            ("{\"id\":5,\"op\":\"query\",\"goal\":\"foo(\"}", 400, "syntax_error"),
            ("{\"id\":6,\"op\":\"query\",\"goal\":\"repeat, fail\",\"timeoutMs\":200}", 504, "timeout"),
            ("{\"id\":7,\"op\":\"query\",\"goal\":\"true\",\"limit\":0}", 400, "bad_request"),
        ];
        foreach ((string line, int status, string code) in cases)
        {
            await c.SendAsync(line + "\n");
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.True(reply.GetProperty("status").GetInt32() == status, $"{line}: {reply}");
            Assert.Equal(code, reply.GetProperty("error").GetString());
            Assert.Equal(JsonValueKind.Number, reply.GetProperty("id").ValueKind);
            await c.SendAsync("{\"id\":\"ok\",\"op\":\"query\",\"goal\":\"X = 1\"}\n");
            Assert.Equal(200, (await c.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
        }
    }

    /// <summary>
    /// A line that is not a request of this protocol gets its error and the connection closes (before: the connection
    /// went on, so anything that could open a socket to the port could keep feeding it lines).
    /// </summary>
    [Theory]
    [InlineData("{\"id\":1,\"op\":\"query\",\"goal\":", "bad_json", JsonValueKind.Null)]
    [InlineData("{\"id\":2,\"op\":\"query\",\"goal\":\"true\",\"extra\":1}", "bad_json", JsonValueKind.Number)]
    [InlineData("{\"id\":3,\"op\":\"fly\"}", "bad_request", JsonValueKind.Number)]
    [InlineData("[1,2]", "bad_json", JsonValueKind.Null)]
    [InlineData("GET / HTTP/1.1", "bad_json", JsonValueKind.Null)]
    public async Task ALineThatIsNotARequest_GetsAnError_AndClosesTheConnection(string line, string code, JsonValueKind id)
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using Connection c = await Connection.OpenAsync(s);
        await c.SendAsync(line + "\n{\"id\":\"after\",\"op\":\"health\"}\n");
        JsonElement reply = (await c.ReceiveAsync())!.Value;
        Assert.True(reply.GetProperty("status").GetInt32() == 400, reply.ToString());
        Assert.Equal(code, reply.GetProperty("error").GetString());
        Assert.Equal(id, reply.GetProperty("id").ValueKind);
        Assert.Null(await c.ReceiveAsync()); // closed: the line after it was not read
    }

    [Fact]
    public async Task WithoutTheToken_WritesAndReadsAreRefused_AndTheConnectionCloses()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        foreach (string line in new[]
        {
            "{\"id\":1,\"op\":\"assert\",\"clause\":\"stranger(1)\"}",
            "{\"id\":1,\"op\":\"query\",\"goal\":\"X = 1\"}",
            "{\"id\":1,\"op\":\"auth\",\"token\":\"not-the-token-0123456789\"}",
            "{\"id\":1,\"op\":\"auth\"}",
        })
        {
            using Connection c = await Connection.OpenAsync(s, authenticate: false);
            await c.SendAsync(line + "\n{\"id\":2,\"op\":\"health\"}\n");
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.True(reply.GetProperty("status").GetInt32() == 401, $"{line}: {reply}");
            Assert.Null(await c.ReceiveAsync());
        }

        using (Connection health = await Connection.OpenAsync(s, authenticate: false))
        {
            await health.SendAsync("{\"id\":1,\"op\":\"health\"}\n"); // health needs no token
            Assert.Equal(200, (await health.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
        }

        Assert.Empty(await s.XsAsync("catch(stranger(X), _, fail)"));
        Assert.Contains(s.Logs.Records, r => r.Message.Contains("401", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WithAnonymousReads_AQueryNeedsNoToken_ButAWriteDoes()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, TcpPort = 0, Replicas = 1, AnonymousReads = true });
        using Connection c = await Connection.OpenAsync(s, authenticate: false);
        await c.SendAsync("{\"id\":1,\"op\":\"query\",\"goal\":\"X = 1\"}\n");
        Assert.Equal(200, (await c.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
        await c.SendAsync("{\"id\":2,\"op\":\"assert\",\"clause\":\"stranger(1)\"}\n");
        Assert.Equal(401, (await c.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
        Assert.Null(await c.ReceiveAsync());
    }

    /// <summary>
    /// Writes pipelined on one connection run in the order they were sent (before: each started when its line arrived,
    /// so a retract could run before the assert it follows and leave the fact behind).
    /// </summary>
    [Fact]
    public async Task PipelinedWrites_RunInArrivalOrder()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using Connection c = await Connection.OpenAsync(s);
        await c.SendAsync("{\"id\":0,\"op\":\"consult\",\"text\":\":- dynamic(o/2).\"}\n");
        Assert.Equal(200, (await c.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
        // Each assert carries a 200 KB string and the retract after it is short: a request that starts when its line
        // arrives reaches the pool sooner when it is shorter to read and prepare, so unordered, the retract overtakes.
        var batch = new StringBuilder();
        const int pairs = 20;
        string payload = new('x', 200_000);
        for (int i = 0; i < pairs; i++)
        {
            batch.Append($"{{\"id\":{2 * i + 1},\"op\":\"assert\",\"clause\":\"o({i}, \\\"{payload}\\\")\"}}\n");
            batch.Append($"{{\"id\":{2 * i + 2},\"op\":\"retract\",\"clause\":\"o({i}, _)\"}}\n");
        }

        await c.SendAsync(batch.ToString());
        var retracted = new List<bool>();
        for (int i = 0; i < 2 * pairs; i++)
        {
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.True(reply.GetProperty("status").GetInt32() == 200, reply.ToString());
            if (reply.GetProperty("id").GetInt32() % 2 == 0)
            {
                retracted.Add(reply.GetProperty("retracted").GetBoolean());
            }
        }

        Assert.All(retracted, Assert.True);
        Assert.Empty(await s.XsAsync("o(X, _)"));
    }

    [Fact]
    public async Task ALineBegunAndNotFinished_TimesOut_AndTheConnectionCloses()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, TcpPort = 0, Replicas = 1, HeaderTimeout = TimeSpan.FromMilliseconds(300) });
        using Connection c = await Connection.OpenAsync(s);
        await c.SendAsync("{\"id\":1,\"op\":\"hea");
        JsonElement reply = (await c.ReceiveAsync())!.Value;
        Assert.Equal(408, reply.GetProperty("status").GetInt32());
        Assert.Null(await c.ReceiveAsync());

        // A byte every 100 ms does not keep a line alive past the timeout: it counts from the line's first byte.
        using Connection trickle = await Connection.OpenAsync(s);
        Task<JsonElement?> answer = trickle.ReceiveAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (char ch in "{\"id\":2,\"op\":\"health\"")
        {
            if (answer.IsCompleted)
            {
                break;
            }

            try
            {
                await trickle.SendAsync(ch.ToString());
            }
            catch (IOException)
            {
                break; // closed under us
            }

            await Task.Delay(100);
        }

        Assert.Equal(408, (await answer)!.Value.GetProperty("status").GetInt32());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), clock.Elapsed.ToString());
    }

    [Fact]
    public async Task AnIdleConnection_IsClosed()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla,
            new ServerOptions { Port = 0, TcpPort = 0, Replicas = 1, IdleTimeout = TimeSpan.FromMilliseconds(300) });
        using Connection c = await Connection.OpenAsync(s);
        Assert.Null(await c.ReceiveAsync()); // nothing sent after auth: closed after the idle timeout, not after the test's 60 s
    }

    /// <summary>
    /// At the default 1 MiB limit, a line of exactly the limit is served and a longer one gets 413 (before: the transport
    /// stopped reading at 1 MiB unconsumed, so both hung).
    /// </summary>
    [Fact]
    public async Task LinesAtAndPastTheDefaultLimit_AreServedOrRefused_NotStalled()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        int limit = s.Server.Options.MaxRequestBytes;
        Assert.Equal(1 << 20, limit);
        string head = "{\"id\":1,\"op\":\"query\",\"goal\":\"X = 1";
        string exact = head + new string(' ', limit - head.Length - 2) + "\"}";
        Assert.Equal(limit, Encoding.UTF8.GetByteCount(exact));
        using (Connection c = await Connection.OpenAsync(s))
        {
            await c.SendAsync(exact + "\n");
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.True(reply.GetProperty("status").GetInt32() == 200, reply.ToString());
        }

        using (Connection c = await Connection.OpenAsync(s))
        {
            await c.SendAsync(head + new string(' ', limit + 10)); // no end in sight
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.Equal(413, reply.GetProperty("status").GetInt32());
        }
    }

    [Fact]
    public async Task ALineOverTheLimit_Gets413_AndTheConnectionCloses()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla, new ServerOptions { Port = 0, TcpPort = 0, MaxRequestBytes = 1024 });
        using Connection c = await Connection.OpenAsync(s);
        await c.SendAsync("{\"id\":1,\"op\":\"query\",\"goal\":\"" + new string('a', 4000));
        JsonElement reply = (await c.ReceiveAsync())!.Value;
        Assert.Equal(413, reply.GetProperty("status").GetInt32());
        Assert.Null(await c.ReceiveAsync()); // closed

        using Connection next = await Connection.OpenAsync(s);
        await next.SendAsync("{\"id\":1,\"op\":\"health\"}\n");
        Assert.Equal(200, (await next.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task AHalfSentFrame_IsDropped_InFlightRequestsFinish_AndTheServiceGoesOn()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using (Connection c = await Connection.OpenAsync(s))
        {
            await c.SendAsync("{\"id\":1,\"op\":\"assert\",\"clause\":\"half(1)\"}\n{\"id\":2,\"op\":\"assert\",\"clause\":\"half(2");
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.Equal(1, reply.GetProperty("id").GetInt32());
            Assert.Equal(200, reply.GetProperty("status").GetInt32());
        } // the client goes away mid-frame

        for (int i = 0; i < 100 && !s.Logs.Records.Any(r => r.Message.Contains("in the middle of a", StringComparison.Ordinal)); i++)
        {
            await Task.Delay(50);
        }

        Assert.Contains(s.Logs.Records, r => r.Message.Contains("in the middle of a", StringComparison.Ordinal));
        Assert.Equal(["{\"integer\":1}"], await s.XsAsync("half(X)")); // half(2) was never run
    }
}
