using System.Net;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace CowWasm.Server;

/// <summary>
/// The Prolog query service: Kestrel on loopback with the HTTP API (<see cref="HttpApi"/>) and, when asked, the TCP
/// protocol (<see cref="LineProtocol"/>), over a <see cref="PrologPool"/> (or the locked baseline). Start it with
/// <see cref="StartAsync"/>, stop it with <see cref="StopAsync"/>: Kestrel stops accepting, requests in flight get
/// <see cref="ServerOptions.ShutdownGrace"/> to finish, the snapshot is saved if asked, then the pool is disposed.
/// </summary>
public sealed class PrologServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly IPrologBackend _backend;
    private readonly ListenOptions? _tcp;
    private readonly ILogger _log;
    private int _stopped;

    private PrologServer(WebApplication app, IPrologBackend backend, ListenOptions? tcp, ServerOptions options)
    {
        _app = app;
        _backend = backend;
        _tcp = tcp;
        Options = options;
        _log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CowWasm.Server");
    }

    /// <summary>The settings it runs with.</summary>
    public ServerOptions Options { get; }

    /// <summary>The HTTP base address, e.g. <c>http://127.0.0.1:8080</c> (with the port bound when 0 was asked).</summary>
    public Uri HttpAddress => new(_app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());

    /// <summary>The TCP protocol's endpoint, or null without one.</summary>
    public IPEndPoint? TcpEndPoint => _tcp?.IPEndPoint;

    /// <summary>The backend's name ("pool", "locked" or "follower").</summary>
    public string BackendName => _backend.Name;

    /// <summary>Completes when the host has stopped (also after Ctrl+C or SIGTERM).</summary>
    public Task Completion => _app.WaitForShutdownAsync();

    /// <summary>
    /// Creates the backend (from <see cref="ServerOptions.SnapshotPath"/> when that file exists) and starts listening.
    /// </summary>
    /// <param name="options">Ports, snapshot, backend, limits.</param>
    /// <param name="module">The Trealla module (<see cref="TreallaGuest.LoadAsync(IProgress{string}, CancellationToken)"/>); the caller keeps it.</param>
    /// <param name="configureLogging">Replaces the default console logging (tests route it to their output).</param>
    /// <param name="cancellationToken">Cancels start-up.</param>
    public static async Task<PrologServer> StartAsync(ServerOptions options, IGuestModule module,
        Action<ILoggingBuilder>? configureLogging = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(module);
        options.Validate();

        AccessToken token = AccessToken.Resolve(options);
        var tornTails = new List<string>();
        IPrologBackend backend = options.FollowNats is not null
            ? await FollowerBackend.StartFromNatsAsync(module, options, cancellationToken).ConfigureAwait(false)
            : await CreateBackendAsync(options, module, tornTails, cancellationToken).ConfigureAwait(false);
        try
        {
            await backend.StartLeadingAsync(options, cancellationToken).ConfigureAwait(false);

            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            // ASP.NET Core logs every request at Information: keep its own categories to warnings and up — but a refused
            // Host header is a refusal like ours, logged at Information.
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            builder.Logging.AddFilter("Microsoft.AspNetCore.HostFiltering", LogLevel.Information);
            if (configureLogging is not null)
            {
                builder.Logging.ClearProviders();
                configureLogging(builder.Logging);
            }

            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownGrace);
            builder.Services.AddSingleton(options);
            builder.Services.AddSingleton(backend);
            builder.Services.AddSingleton(token);
            builder.Services.AddSingleton<PrologService>();
            // DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own Host; only the configured names pass.
            builder.Services.AddHostFiltering(hosts =>
            {
                hosts.AllowedHosts = [.. options.AllowedHosts];
                hosts.AllowEmptyHosts = false;
            });
            // The transport buffers more than the longest line, so a line at or past the limit is always seen whole or
            // refused (at 1 MiB, the transport's default, a 1 MiB line would stall the reader instead).
            long buffered = Math.Max(1 << 20, (long)options.MaxRequestBytes + 64 * 1024);
            builder.WebHost.UseSockets(sockets => sockets.MaxReadBufferSize = buffered);
            ListenOptions? tcp = null;
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
                kestrel.Limits.MaxRequestBufferSize = buffered;
                kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
                kestrel.Limits.KeepAliveTimeout = options.IdleTimeout;
                kestrel.Limits.RequestHeadersTimeout = options.HeaderTimeout;
                kestrel.Listen(IPAddress.Loopback, options.Port);
                if (options.TcpPort >= 0)
                {
                    kestrel.Listen(IPAddress.Loopback, options.TcpPort, listen =>
                    {
                        listen.UseConnectionHandler<LineProtocol>();
                        tcp = listen;
                    });
                }
            });

            builder.Services.AddOpenTelemetry().WithMetrics(metrics =>
            {
                metrics.AddMeter(GuestPool.MeterName, PrologService.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel");
                metrics.AddPrometheusExporter(); // GET /metrics, for a Prometheus server to scrape
                if (options.OtlpEndpoint is { } endpoint)
                {
                    metrics.AddOtlpExporter(otlp => otlp.Endpoint = endpoint);
                }
            });

            WebApplication app = builder.Build(); // the web host's defaults put host filtering in front of everything
            PrologService service = app.Services.GetRequiredService<PrologService>();
            // GET /metrics: the Prometheus text format of every meter above, behind the same token as queries.
            app.UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider: null, predicate: c => c.Request.Path == "/metrics", path: null,
                configureBranchedPipeline: branch => branch.Use(next => context => HttpApi.AuthorizeReadAsync(context, service, "metrics", next)),
                optionsName: null);
            ConsoleFiles.Use(app); // GET /: the browser console
            HttpApi.Map(app, service);
            var server = new PrologServer(app, backend, tcp, options);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            foreach (string torn in tornTails)
            {
                server._log.LogWarning("The commit log's last record was torn by a crash and cut off (it was never acknowledged): {Torn}", torn);
            }

            if (token.Generated)
            {
                server._log.LogWarning("A new access token was generated and saved to {File} (mode 0600): {Token} — clients send " +
                    "\"Authorization: Bearer <token>\" (TCP: {{\"op\":\"auth\",\"token\":…}} first)", token.Source, token.Value);
            }
            else
            {
                server._log.LogInformation("Clients authenticate with the token from {Source}{Reads}", token.Source,
                    options.AnonymousReads ? "; queries need none (--anonymous-reads)" : "");
            }

            server._log.LogInformation("Serving {Backend} ({Replicas} replicas) on {Http}{Tcp}{Durable}", backend.Name, backend.Replicas,
                server.HttpAddress, tcp is null ? "" : $" and tcp://{server.TcpEndPoint}",
                backend.State is { DurableIn: { } log, Sequence: var sequence } ? $"; writes durable in {log} (commit {sequence})" : "");
            return server;
        }
        catch
        {
            await backend.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<IPrologBackend> CreateBackendAsync(ServerOptions options, IGuestModule module, List<string> tornTails,
        CancellationToken cancellationToken)
    {
        if (options.Backend == BackendKind.Locked)
        {
            return new LockedBackend(module, options);
        }

        if (options.FollowSocket is { } leader)
        {
            return FollowerBackend.Connect(module, leader, options);
        }

        PoolOptions pool = options.PoolOptions;
        if (options.Durability is Durability.Log or Durability.Replicated)
        {
            // The newest snapshot (when there is one) plus every commit in the log after it; later writes are durable in it.
            return new PoolBackend(await PrologPool.OpenDurableAsync(module, Path.Combine(options.ResolvedDataDirectory, "log"),
                options.EffectiveSnapshotPath, pool, (path, offset, why) => tornTails.Add($"{path} at byte {offset}: {why}"), cancellationToken,
                options.SnapshotEvery).ConfigureAwait(false), options);
        }

        return new PoolBackend(options.SnapshotPath is { } snapshot && File.Exists(snapshot)
            ? PrologPool.CreateFromSnapshot(module, snapshot, pool)
            : PrologPool.Create(module, pool), options);
    }

    /// <summary>
    /// Graceful shutdown: stop accepting, let requests in flight finish within the grace period, save the snapshot
    /// if <see cref="ServerOptions.SaveOnShutdown"/>, dispose the backend. Idempotent.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        try
        {
            await _app.StopAsync(cancellationToken).ConfigureAwait(false);
            if (Options.SaveOnShutdown && Options.SnapshotPath is { } path && _backend.FaultCause is null)
            {
                await _backend.SaveSnapshotAsync(path, cancellationToken).ConfigureAwait(false);
                _log.LogInformation("Snapshot saved to {Path} on shutdown", path);
            }
        }
        finally
        {
            await _app.DisposeAsync().ConfigureAwait(false); // the container does not dispose instances it was given
            await _backend.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => new(StopAsync());
}
