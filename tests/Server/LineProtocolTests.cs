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

        public static async Task<Connection> OpenAsync(RunningServer s)
        {
            var c = new Connection();
            await c._client.ConnectAsync(s.Server.TcpEndPoint!);
            c._reader = new StreamReader(c.Stream, Encoding.UTF8);
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
    public async Task BadLines_GetErrors_AndTheConnectionGoesOn()
    {
        await using RunningServer s = await RunningServer.StartAsync(trealla);
        using Connection c = await Connection.OpenAsync(s);
        (string Line, int Status, string Code, JsonValueKind Id)[] cases =
        [
            ("{\"id\":1,\"op\":\"query\",\"goal\":", 400, "bad_json", JsonValueKind.Null),
            ("{\"id\":2,\"op\":\"query\",\"goal\":\"true\",\"extra\":1}", 400, "bad_json", JsonValueKind.Number),
            ("{\"id\":3,\"op\":\"fly\"}", 400, "bad_request", JsonValueKind.Number),
            ("{\"id\":4,\"op\":\"query\"}", 400, "bad_request", JsonValueKind.Number),
            ("{\"id\":5,\"op\":\"query\",\"goal\":\"foo(\"}", 400, "syntax_error", JsonValueKind.Number),
            ("{\"id\":6,\"op\":\"query\",\"goal\":\"repeat, fail\",\"timeoutMs\":200}", 504, "timeout", JsonValueKind.Number),
            ("[1,2]", 400, "bad_json", JsonValueKind.Null),
        ];
        foreach ((string line, int status, string code, JsonValueKind id) in cases)
        {
            await c.SendAsync(line + "\n");
            JsonElement reply = (await c.ReceiveAsync())!.Value;
            Assert.True(reply.GetProperty("status").GetInt32() == status, $"{line}: {reply}");
            Assert.Equal(code, reply.GetProperty("error").GetString());
            Assert.Equal(id, reply.GetProperty("id").ValueKind);
            await c.SendAsync("{\"id\":\"ok\",\"op\":\"query\",\"goal\":\"X = 1\"}\n");
            Assert.Equal(200, (await c.ReceiveAsync())!.Value.GetProperty("status").GetInt32());
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
