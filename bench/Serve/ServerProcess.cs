using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace CowWasm.Bench.Serve;

/// <summary>The query service (CowWasm.Server.dll) in a child process on free loopback ports; stopped with SIGTERM.</summary>
internal sealed partial class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ServerProcess(Process process, int httpPort, int tcpPort)
    {
        _process = process;
        HttpAddress = new Uri($"http://127.0.0.1:{httpPort}");
        TcpEndPoint = new IPEndPoint(IPAddress.Loopback, tcpPort);
    }

    /// <summary>The bearer token the child service runs with (COWWASM_TOKEN): a fresh random one per bench process.</summary>
    public static readonly string Token = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    public Uri HttpAddress { get; }

    public IPEndPoint TcpEndPoint { get; }

    public static async Task<ServerProcess> StartAsync(string serverDll, string[] flags)
    {
        int http = FreePort(), tcp = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["COWWASM_TOKEN"] = Token;
        foreach (string arg in new[] { serverDll, "--port", $"{http}", "--tcp-port", $"{tcp}" }.Concat(flags))
        {
            start.ArgumentList.Add(arg);
        }

        var server = new ServerProcess(Process.Start(start)!, http, tcp);
        server._process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        Console.WriteLine($"service: {string.Join(' ', flags)} (pid {server._process.Id})");
        using var client = new HttpClient { BaseAddress = server.HttpAddress, Timeout = TimeSpan.FromSeconds(5) };
        long deadline = Environment.TickCount64 + 180_000;
        while (true)
        {
            if (server._process.HasExited)
            {
                throw new InvalidOperationException($"The service exited with {server._process.ExitCode}:\n{server.Log}");
            }

            try
            {
                using HttpResponseMessage health = await client.GetAsync("/health").ConfigureAwait(false);
                if (health.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            if (Environment.TickCount64 > deadline)
            {
                await server.DisposeAsync().ConfigureAwait(false);
                throw new TimeoutException($"The service did not answer /health within 180 s:\n{server.Log}");
            }

            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public async Task ConsultAsync(string text)
    {
        using var client = new HttpClient { BaseAddress = HttpAddress };
        client.DefaultRequestHeaders.Authorization = new("Bearer", Token);
        string body = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = text });
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await client.PostAsync("/consult", content).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"consult answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
        }
    }

    /// <summary>CPU time the child has used (user + system, from /proc/PID/stat).</summary>
    public TimeSpan CpuTime()
    {
        string stat = File.ReadAllText($"/proc/{_process.Id}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // fields from the 3rd (state) on
        long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
    }

    /// <summary>The child's resident set (VmRSS).</summary>
    public long RssBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("No VmRSS in /proc/PID/status.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15); // SIGTERM: graceful shutdown
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            if (_log.Length > 64 * 1024)
            {
                _log.Remove(0, 32 * 1024);
            }

            _log.AppendLine(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>One JSON-lines connection: send a request, read its reply line.</summary>
internal sealed class LineClient : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;

    private LineClient(TcpClient client)
    {
        _client = client;
        _client.NoDelay = true;
        _stream = client.GetStream();
    }

    /// <summary>Connects and authenticates the connection with <paramref name="token"/>.</summary>
    public static async Task<LineClient> ConnectAsync(IPEndPoint endPoint, string token)
    {
        var client = new TcpClient();
        await client.ConnectAsync(endPoint).ConfigureAwait(false);
        var line = new LineClient(client);
        if (!await line.SendAsync(Encoding.UTF8.GetBytes($"{{\"op\":\"auth\",\"token\":\"{token}\"}}\n")).ConfigureAwait(false))
        {
            await line.DisposeAsync().ConfigureAwait(false);
            throw new InvalidOperationException("The service refused the bench's token.");
        }

        return line;
    }

    /// <summary>Sends one request line and reads its reply; true when the reply's status is 200.</summary>
    public async Task<bool> SendAsync(byte[] line)
    {
        await _stream.WriteAsync(line).ConfigureAwait(false);
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                bool ok = _buffer.AsSpan(_start, newline - _start).IndexOf("\"status\":200"u8) >= 0;
                _start = newline + 1;
                return ok;
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                throw new InvalidDataException("A reply line over 64 KiB.");
            }

            int read = await _stream.ReadAsync(_buffer.AsMemory(_end)).ConfigureAwait(false);
            if (read == 0)
            {
                throw new EndOfStreamException("The service closed the connection.");
            }

            _end += read;
        }
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
