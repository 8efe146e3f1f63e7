using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using CowWasm.Runtime;
using CowWasm.Server;
using CowWasm.Tests.Prolog;
using Microsoft.Extensions.Logging;

namespace CowWasm.Tests.Server;

/// <summary>Log records the service wrote, kept for assertions.</summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, string Category, string Message)> Records { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner.Records.Enqueue((logLevel, category, exception is null ? formatter(state, exception) : $"{formatter(state, exception)}: {exception}"));
            }
        }
    }
}

/// <summary>A running service on loopback (HTTP and TCP on ephemeral ports) over a 2-replica pool, and a client.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    private readonly string? _ownedDataDirectory;

    private RunningServer(PrologServer server, CapturedLogs logs, string? ownedDataDirectory)
    {
        Server = server;
        Logs = logs;
        _ownedDataDirectory = ownedDataDirectory;
        Http = Client(server.HttpAddress, TimeSpan.FromMinutes(2));
    }

    /// <summary>The token test services run with (ServerOptions.Token; COWWASM_TOKEN for child processes).</summary>
    public const string TestToken = "test-token-0123456789abcdef";

    /// <summary>An HTTP client that sends <see cref="TestToken"/>.</summary>
    public static HttpClient Client(Uri address, TimeSpan timeout)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = timeout };
        client.DefaultRequestHeaders.Authorization = new("Bearer", TestToken);
        return client;
    }

    public PrologServer Server { get; }

    public CapturedLogs Logs { get; }

    public HttpClient Http { get; }

    public static async Task<RunningServer> StartAsync(TreallaFixture trealla, ServerOptions? options = null, GuestRuntime runtime = GuestRuntime.Native)
    {
        var logs = new CapturedLogs();
        options ??= new ServerOptions { Port = 0, TcpPort = 0, Replicas = 2 };
        // The service's default is durable, in a data directory under the user's state directory: each test server
        // gets a temporary one of its own instead (unless the test names one), removed when it stops.
        string? owned = options.DataDirectory is null ? Directory.CreateTempSubdirectory("cowwasm-service-data-").FullName : null;
        options = options with { DataDirectory = options.DataDirectory ?? owned, Token = options.Token ?? TestToken };
        try
        {
            PrologServer server = await PrologServer.StartAsync(options, trealla.On(runtime), b => b.AddProvider(logs));
            return new RunningServer(server, logs, owned);
        }
        catch
        {
            if (owned is not null)
            {
                Directory.Delete(owned, recursive: true);
            }

            throw;
        }
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, object body)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync(path, body);
        return ((int)response.StatusCode, await ReadJsonAsync(response));
    }

    public async Task<(int Status, JsonElement Body)> PostRawAsync(string path, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        using HttpResponseMessage response = await Http.PostAsync(path, content);
        return ((int)response.StatusCode, await ReadJsonAsync(response));
    }

    /// <summary>The X bindings of a successful query, as the service typed them.</summary>
    public async Task<List<string>> XsAsync(string goal)
    {
        (int status, JsonElement body) = await PostAsync("/query", new { goal, limit = 1000 });
        Assert.True(status == 200, $"{goal}: {status} {body}; the service logged: " +
            string.Join(" | ", Logs.Records.Where(r => r.Level >= LogLevel.Warning).Select(r => $"{r.Category}: {r.Message}")));
        return body.GetProperty("answers").EnumerateArray().Select(a => a.GetProperty("X").GetRawText()).ToList();
    }

    private static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        string text = await response.Content.ReadAsStringAsync();
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        if (_ownedDataDirectory is not null)
        {
            Directory.Delete(_ownedDataDirectory, recursive: true);
        }
    }
}
