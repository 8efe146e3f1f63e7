using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CowWasm.Bench.Sharing;

/// <summary>One nats-server with JetStream on a free loopback port, its store in <c>dir</c>; killed on dispose.</summary>
internal sealed class NatsServerProcess : IDisposable
{
    private readonly Process _process;

    private NatsServerProcess(Process process, string url)
    {
        _process = process;
        Url = url;
    }

    public string Url { get; }

    public static string Version { get; private set; } = "?";

    public static NatsServerProcess Start(string dir)
    {
        string binary = new[] { "/usr/sbin/nats-server", "/usr/bin/nats-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("nats-server is not installed; ./run.sh --replicate installs it.");
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            var info = new ProcessStartInfo(binary) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in new[] { "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-js", "-sd", Path.Combine(dir, "js") })
            {
                info.ArgumentList.Add(a);
            }

            Version = Process.Start(new ProcessStartInfo(binary, "--version") { RedirectStandardOutput = true })!.StandardOutput.ReadToEnd().Trim().Replace("nats-server: ", "", StringComparison.Ordinal);
            Process process = Process.Start(info) ?? throw new InvalidOperationException("nats-server did not start.");
            process.ErrorDataReceived += (_, _) => { };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var server = new NatsServerProcess(process, $"nats://127.0.0.1:{port}");
            for (int i = 0; i < 100; i++)
            {
                try
                {
                    using var probe = new TcpClient();
                    probe.Connect(IPAddress.Loopback, port);
                    return server;
                }
                catch (SocketException)
                {
                    Thread.Sleep(50);
                }
            }

            server.Dispose();
            throw new InvalidOperationException("nats-server did not listen within 5 s.");
        }
    }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
