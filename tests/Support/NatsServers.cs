using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NATS.Client.Core;
using NATS.Client.JetStream;

namespace CowWasm.Tests.Support;

/// <summary>
/// Real nats-server processes with JetStream on loopback ports, each in its own temp directory: one server, or a
/// cluster of three. test.sh installs the Debian package; where it is missing the tests fail with the reason.
/// </summary>
internal sealed class NatsServers : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cowwasm-nats-").FullName;
    private readonly Node[] _nodes;

    private NatsServers(Node[] nodes) => _nodes = nodes;

    /// <summary>The client URLs of the servers still running, for a connection that fails over between them.</summary>
    public string Url => string.Join(',', _nodes.Where(n => !n.Killed).Select(n => n.Url));

    public IReadOnlyList<Node> Nodes => _nodes;

    /// <summary>The nats-server binary (Debian installs it in /usr/sbin).</summary>
    public static string Binary { get; } = new[] { "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server" }
        .FirstOrDefault(File.Exists) ?? throw new InvalidOperationException(
            "nats-server is not installed: ./test.sh installs it (apt-get install nats-server); the replication tests need it.");

    public static async Task<NatsServers> StartAsync(int count = 1)
    {
        int[] clientPorts = Enumerable.Range(0, count).Select(_ => FreePort()).ToArray();
        int[] clusterPorts = Enumerable.Range(0, count).Select(_ => FreePort()).ToArray();
        var nodes = new Node[count];
        var servers = new NatsServers(nodes);
        try
        {
            for (int i = 0; i < count; i++)
            {
                string store = Path.Combine(servers._dir, $"n{i}");
                var args = new List<string> { "-a", "127.0.0.1", "-p", clientPorts[i].ToString(), "-js", "-sd", store, "--server_name", $"n{i}" };
                if (count > 1)
                {
                    args.AddRange(["--cluster_name", "cowwasm", "--cluster", $"nats://127.0.0.1:{clusterPorts[i]}",
                        "--routes", string.Join(',', clusterPorts.Where((_, j) => j != i).Select(p => $"nats://127.0.0.1:{p}"))]);
                }

                nodes[i] = new Node($"n{i}", $"nats://127.0.0.1:{clientPorts[i]}", args);
                nodes[i].Start();
            }

            await servers.WaitForJetStreamAsync();
            return servers;
        }
        catch
        {
            await servers.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every running server answers a JetStream API request (a cluster has elected its meta leader).</summary>
    public async Task WaitForJetStreamAsync()
    {
        var deadline = Stopwatch.StartNew();
        foreach (Node node in _nodes.Where(n => !n.Killed))
        {
            while (true)
            {
                try
                {
                    await using var nats = new NatsConnection(new NatsOpts { Url = node.Url, ConnectTimeout = TimeSpan.FromSeconds(2) });
                    await new NatsJSContext(nats).GetAccountInfoAsync();
                    break;
                }
                catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && deadline.Elapsed < TimeSpan.FromSeconds(60))
                {
                    await Task.Delay(100);
                }
            }
        }
    }

    public NatsConnection Connect(string? url = null) => new(new NatsOpts
    {
        Url = url ?? Url,
        Name = "cowwasm-tests",
        RequestTimeout = TimeSpan.FromSeconds(10),
    });

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (Node node in _nodes.Where(n => n is not null))
        {
            await node.KillAsync();
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // a store file still being closed: the temp directory is cleaned by the OS
        }
    }

    internal sealed class Node(string name, string url, IReadOnlyList<string> arguments)
    {
        private Process? _process;
        private readonly System.Text.StringBuilder _log = new();

        public string Name { get; } = name;

        public string Url { get; } = url;

        public bool Killed { get; private set; }

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

        public void Start()
        {
            var info = new ProcessStartInfo(Binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string argument in arguments)
            {
                info.ArgumentList.Add(argument);
            }

            _process = Process.Start(info) ?? throw new InvalidOperationException("nats-server did not start.");
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.BeginErrorReadLine();
            _process.BeginOutputReadLine();
            Killed = false;
        }

        private void Append(string? line)
        {
            if (line is not null)
            {
                lock (_log)
                {
                    _log.AppendLine(line);
                }
            }
        }

        /// <summary>SIGKILL: no clean shutdown, as when a host dies.</summary>
        public async Task KillAsync()
        {
            if (_process is { HasExited: false } process)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            _process?.Dispose();
            _process = null;
            Killed = true;
        }
    }
}
