using System.Globalization;
using CowWasm.Pool;
using CowWasm.Prolog;
using CowWasm.Runtime;

namespace CowWasm.Server;

/// <summary>Which interpreter(s) serve requests.</summary>
public enum BackendKind
{
    /// <summary>A <see cref="Prolog.PrologPool"/>: one leader takes writes, replicas serve reads in parallel (the default).</summary>
    Pool,

    /// <summary>
    /// One plain interpreter behind a lock: the baseline the pool is measured against. It has no isolation — a read's
    /// effects stay, a failed write is not rolled back — and after a trap or a timeout its state is unknown, so it
    /// answers 503 from then on.
    /// </summary>
    Locked,
}

/// <summary>
/// The service's settings, from the command line (<c>--port 8080 --tcp-port 8081 --snapshot kb.snap</c> …) or code.
/// Immutable; <see cref="Validate"/> names the first bad value.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>HTTP port on loopback (0: any free port).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>Raw TCP (JSON lines) port on loopback; 0: any free port; -1: no TCP listener.</summary>
    public int TcpPort { get; init; } = -1;

    /// <summary>
    /// The snapshot file: the pool starts from it when it exists, and <c>POST /snapshot</c> saves to it (atomically).
    /// Clients never choose a path. A durable leader without one uses <c>snapshot</c> in <see cref="DataDirectory"/>
    /// (<see cref="EffectiveSnapshotPath"/>).
    /// </summary>
    public string? SnapshotPath { get; init; }

    /// <summary>
    /// A durable leader saves its snapshot every this many commits in the background, deleting the log it covers (default
    /// 10,000; 0: only on <c>POST /snapshot</c> and <see cref="SaveOnShutdown"/>).
    /// </summary>
    public int SnapshotEvery { get; init; } = 10_000;

    /// <summary>
    /// The snapshot in effect: <see cref="SnapshotPath"/>, or for a durable pool leader <c>snapshot</c> in the data
    /// directory (start-up is that snapshot plus the log after it); null when there is none.
    /// </summary>
    public string? EffectiveSnapshotPath => SnapshotPath
        ?? (Durability != Durability.None && Backend == BackendKind.Pool && FollowSocket is null && FollowNats is null
            ? Path.Combine(ResolvedDataDirectory, "snapshot")
            : null);

    /// <summary>
    /// Leader: serve the committed knowledge base to follower services on this host through a Unix socket here
    /// (<see cref="PrologPool.ServeFollowersAsync"/>).
    /// </summary>
    public string? FollowersSocket { get; init; }

    /// <summary>Follower: serve reads of the leader service whose <see cref="FollowersSocket"/> this is; writes are refused (409).</summary>
    public string? FollowSocket { get; init; }

    /// <summary>
    /// Leader: publish every commit to NATS JetStream at these server URLs (comma-separated), and snapshots to its object
    /// store, for follower services on other hosts (<see cref="Replication.CommitPublisher"/>; docs/followers.md).
    /// </summary>
    public string? ReplicateTo { get; init; }

    /// <summary>Follower: serve reads of the leader that replicates to these NATS server URLs under
    /// <see cref="ReplicationName"/>; writes are refused (409).</summary>
    public string? FollowNats { get; init; }

    /// <summary>Names the stream and the snapshot bucket that leader and followers share (default "prolog").</summary>
    public string ReplicationName { get; init; } = "prolog";

    /// <summary>JetStream replicas of the stream and bucket (default 1; 3 in a three-node cluster).</summary>
    public int ReplicationReplicas { get; init; } = 1;

    /// <summary>The leader publishes a snapshot every this many commits (default 10,000; 0: only on <c>POST /snapshot</c>).</summary>
    public int ReplicationSnapshotEvery { get; init; } = 10_000;

    /// <summary>Leader: bytes of changed pages that may wait for JetStream before writes are refused (default 256 MiB).</summary>
    public long ReplicationMaxPendingBytes { get; init; } = 256L << 20;

    /// <summary>Leader: after each published snapshot, delete the stream's commits from before the previous one (default true).</summary>
    public bool ReplicationPurge { get; init; } = true;

    /// <summary>Save a snapshot to <see cref="SnapshotPath"/> when the service shuts down.</summary>
    public bool SaveOnShutdown { get; init; }

    /// <summary>
    /// Which backend runs the guest: Wasmtime (default: the first answer in about a second on a fresh machine) or our
    /// native runtime (wasm2c + gcc: minutes to build Trealla once). README, "Choosing a runtime".
    /// </summary>
    public GuestRuntime Runtime { get; init; } = GuestRuntime.Wasmtime;

    /// <summary>
    /// What a write's reply waits for (the pool leader; followers do not write and the locked baseline keeps nothing):
    /// <see cref="Pool.Durability.Log"/> (default) — the commit is in the commit log in <see cref="DataDirectory"/>, so it
    /// survives <c>kill -9</c>; start-up is the snapshot plus the log after it. <see cref="Pool.Durability.Replicated"/>
    /// (with <see cref="ReplicateTo"/>) — also stored by JetStream; start-up then also takes the stream's commits after
    /// the log's. <see cref="Pool.Durability.None"/> — the reply goes out with the commit in memory only.
    /// </summary>
    public Durability Durability { get; init; } = Durability.Log;

    /// <summary>
    /// Where the commit log lives (<c>log/</c>): default <c>$XDG_STATE_HOME/cowwasm/NAME</c>, else
    /// <c>~/.local/state/cowwasm/NAME</c>, NAME being <see cref="ReplicationName"/> (default <c>prolog</c>).
    /// </summary>
    public string? DataDirectory { get; init; }

    /// <summary>The data directory in effect (<see cref="DataDirectory"/> or its default).</summary>
    public string ResolvedDataDirectory => DataDirectory is { Length: > 0 } explicitDirectory
        ? Path.GetFullPath(explicitDirectory)
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } state && Path.IsPathRooted(state)
            ? state
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state"), "cowwasm", ReplicationName);

    /// <summary>Pool or locked interpreter.</summary>
    public BackendKind Backend { get; init; } = BackendKind.Pool;

    /// <summary>The pool's read isolation (ignored by <see cref="BackendKind.Locked"/>).</summary>
    public ReadIsolation Isolation { get; init; } = ReadIsolation.PerRead;

    /// <summary>Replicas of the pool (ignored by <see cref="BackendKind.Locked"/>).</summary>
    public int Replicas { get; init; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>The largest request body (HTTP) or line (TCP) in bytes; larger ones get 413.</summary>
    public int MaxRequestBytes { get; init; } = 1 << 20;

    /// <summary>Answers a non-streaming query may ask for (<c>limit</c>); more need <c>"stream": true</c>.</summary>
    public int MaxLimit { get; init; } = 10_000;

    /// <summary>Answers a streaming query may ask for.</summary>
    public int MaxStreamLimit { get; init; } = 1_000_000;

    /// <summary>A request's deadline when it names none (<c>timeoutMs</c>).</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest deadline a request may ask for.</summary>
    public TimeSpan MaxTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Requests one TCP connection may have in flight; beyond it the server stops reading that connection.</summary>
    public int MaxInFlightPerConnection { get; init; } = 64;

    /// <summary>
    /// The bearer token clients must send (<c>Authorization: Bearer …</c> over HTTP, <c>{"op":"auth","token":…}</c> as a
    /// TCP connection's first line) to write, and to read unless <see cref="AnonymousReads"/>. Null: the
    /// <c>COWWASM_TOKEN</c> environment variable, else the file <see cref="TokenFile"/>, else <c>token</c> in the data
    /// directory — created (mode 0600) with a new random token at first start, which the start-up log then prints.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>A file holding the token (its first line); read at start-up. Null: see <see cref="Token"/>.</summary>
    public string? TokenFile { get; init; }

    /// <summary>Reads (<c>/query</c>, TCP <c>query</c>) need no token; writes and snapshots still do. <c>/health</c> never does.</summary>
    public bool AnonymousReads { get; init; }

    /// <summary>
    /// The <c>Host</c> header values HTTP requests may carry (ports ignored; <c>*.example.com</c> allowed); any other is
    /// 400, so a web page that rebinds its own DNS name to 127.0.0.1 cannot reach the API. Default: the loopback names.
    /// </summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = ["localhost", "127.0.0.1", "[::1]"];

    /// <summary>Connections open at once, HTTP and TCP together; more are closed as they arrive (Kestrel's limit).</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>
    /// Requests the backend runs at once (0: replicas + 1 — every replica busy and a write on the leader); the others
    /// wait in a queue of at most <see cref="MaxQueuedRequests"/>, and the deadline runs while they wait.
    /// </summary>
    public int MaxConcurrentRequests { get; init; }

    /// <summary>Requests waiting for the backend; one more is refused at once with 503 and <c>Retry-After</c>.</summary>
    public int MaxQueuedRequests { get; init; } = 512;

    /// <summary>The concurrency limit in effect (<see cref="MaxConcurrentRequests"/> or its default).</summary>
    public int EffectiveMaxConcurrentRequests => MaxConcurrentRequests > 0 ? MaxConcurrentRequests : (Backend == BackendKind.Locked ? 1 : Replicas) + 1;

    /// <summary>
    /// The most bytes one answer's capture may hold (its bindings as JSON plus what the goal printed); a larger answer
    /// becomes a <c>resource_error</c> answer and ends the query, without copying it out of the guest.
    /// </summary>
    public int MaxAnswerBytes { get; init; } = 1 << 20;

    /// <summary>
    /// The most answer bytes one request may produce (collected or streamed); the query stops there and says so
    /// (<c>"truncated": true</c>, <c>limitReached</c>).
    /// </summary>
    public long MaxReplyBytes { get; init; } = 16L << 20;

    /// <summary>
    /// The most linear memory one guest instance may have (leader and every replica); a goal that needs more gets a
    /// resource error, and the replica is reset. Must hold the committed state. Default 1 GiB (Trealla declares no
    /// maximum: 4 GiB).
    /// </summary>
    public long MaxMemoryBytes { get; init; } = 1L << 30;

    /// <summary>
    /// <see cref="ReadIsolation.PerCommit"/>: a replica keeps a read's effects only while its memory has grown by at
    /// most this many bytes over the committed state; past it, it is reset after the read (default 64 MiB).
    /// </summary>
    public long MaxRetainedReadBytes { get; init; } = 64L << 20;

    /// <summary>The least time between two snapshots a client asks for (<c>POST /snapshot</c>); sooner: 429 with <c>Retry-After</c>.</summary>
    public TimeSpan MinSnapshotInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>An idle connection (HTTP keep-alive, or TCP with nothing in flight and no partial line) is closed after this.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>An HTTP request's headers, or a TCP line once its first byte arrived, must arrive within this.</summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long shutdown waits for requests in flight.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>OTLP endpoint for metrics (e.g. http://localhost:4317); none: no exporter (dotnet-counters still works).</summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary>The command-line switches, for usage text and parsing.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--port"] = "HTTP port on 127.0.0.1 (default 8080; 0 = any free port)",
        ["--tcp-port"] = "JSON-lines TCP port on 127.0.0.1 (default: none; 0 = any free port)",
        ["--snapshot"] = "snapshot file: start from it if it exists; POST /snapshot saves to it",
        ["--save-on-shutdown"] = "true: save the snapshot when shutting down",
        ["--runtime"] = "wasmtime (default) or native: which backend runs the guest",
        ["--durability"] = "log (default: a write is answered once its commit is fsynced in the data directory's log), " +
            "replicated (and acknowledged by JetStream; needs --replicate-to) or none",
        ["--data-dir"] = "where the commit log (and, without --snapshot, the snapshot) lives (default $XDG_STATE_HOME/cowwasm/NAME " +
            "or ~/.local/state/cowwasm/NAME)",
        ["--snapshot-every"] = "durable leader: save the snapshot every N commits, deleting the log it covers (default 10000; 0: never)",
        ["--backend"] = "pool (default) or locked (one interpreter behind a lock: the baseline)",
        ["--replicas"] = "pool replicas (default: max(2, cores))",
        ["--isolation"] = "per-read (default) or per-commit: how long a replica keeps a read's effects",
        ["--max-request-bytes"] = "largest HTTP body or TCP line (default 1048576)",
        ["--max-limit"] = "largest answer limit of a non-streaming query (default 10000)",
        ["--default-timeout-ms"] = "deadline of requests that name none (default 5000)",
        ["--max-timeout-ms"] = "longest deadline a request may ask for (default 60000)",
        ["--shutdown-grace-ms"] = "how long shutdown waits for requests in flight (default 10000)",
        ["--otlp-endpoint"] = "export metrics over OTLP to this endpoint",
        ["--token-file"] = "a file holding the bearer token clients must send (default: $COWWASM_TOKEN, else DIR/token, created at first start)",
        ["--anonymous-reads"] = "true: queries need no token (writes and snapshots still do)",
        ["--allowed-hosts"] = "HTTP Host names accepted, comma-separated (default localhost,127.0.0.1,[::1])",
        ["--max-connections"] = "connections open at once, HTTP and TCP (default 1024)",
        ["--max-concurrent-requests"] = "requests the backend runs at once (default replicas + 1)",
        ["--max-queued-requests"] = "requests waiting for the backend; more: 503 with Retry-After (default 512)",
        ["--max-answer-bytes"] = "largest single answer (default 1048576)",
        ["--max-reply-bytes"] = "most answer bytes one request may produce (default 16777216)",
        ["--max-memory-mb"] = "most linear memory per guest instance in MiB (default 1024)",
        ["--max-retained-read-mb"] = "per-commit isolation: growth a replica may keep from reads, in MiB (default 64)",
        ["--idle-timeout-ms"] = "idle connections are closed after this (default 120000)",
        ["--header-timeout-ms"] = "HTTP headers or a started TCP line must arrive within this (default 10000)",
        ["--serve-followers"] = "leader: serve follower services on this host through a Unix socket at this path",
        ["--follow"] = "follower: serve reads of the leader whose --serve-followers socket this is (writes: 409)",
        ["--replicate-to"] = "leader: publish commits and snapshots to NATS JetStream at these URLs (comma-separated)",
        ["--follow-nats"] = "follower on another host: replay the leader's commits from NATS JetStream at these URLs (writes: 409)",
        ["--replication-name"] = "the stream and bucket name leader and followers share (default prolog)",
        ["--replication-replicas"] = "JetStream replicas of the stream and bucket (default 1)",
        ["--replication-max-pending-mb"] = "leader: MiB of commits that may wait for JetStream before writes are refused (default 256)",
        ["--replication-purge"] = "leader: false keeps every commit in the stream (default true: purge before the previous snapshot)",
        ["--replication-snapshot-every"] = "leader: publish a snapshot every N commits (default 10000; 0: on POST /snapshot only)",
    };

    /// <summary>Parses <c>--name value</c> pairs.</summary>
    /// <exception cref="ArgumentException">An unknown switch, a missing or malformed value, or a value out of range.</exception>
    public static ServerOptions Parse(IReadOnlyList<string> args)
    {
        var options = new ServerOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            if (!Switches.ContainsKey(name))
            {
                throw new ArgumentException($"Unknown option {name}.");
            }

            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{name} needs a value.");
            }

            string value = args[++i];
            options = name switch
            {
                "--port" => options with { Port = Int(name, value) },
                "--tcp-port" => options with { TcpPort = Int(name, value) },
                "--snapshot" => options with { SnapshotPath = value },
                "--save-on-shutdown" => options with { SaveOnShutdown = bool.TryParse(value, out bool b) ? b : throw Bad(name, value) },
                "--runtime" => options with { Runtime = Enum.TryParse(value, ignoreCase: true, out GuestRuntime g) && Enum.IsDefined(g) && !int.TryParse(value, out _) ? g : throw Bad(name, value) },
                "--durability" => options with { Durability = value.ToLowerInvariant() switch { "log" => Durability.Log, "replicated" => Durability.Replicated, "none" => Durability.None, _ => throw Bad(name, value) } },
                "--data-dir" => options with { DataDirectory = value },
                "--snapshot-every" => options with { SnapshotEvery = Int(name, value) },
                "--backend" => options with { Backend = Enum.TryParse(value, ignoreCase: true, out BackendKind k) ? k : throw Bad(name, value) },
                "--replicas" => options with { Replicas = Int(name, value) },
                "--isolation" => options with
                {
                    Isolation = Enum.TryParse(value.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out ReadIsolation r)
                        ? r : throw Bad(name, value),
                },
                "--max-request-bytes" => options with { MaxRequestBytes = Int(name, value) },
                "--max-limit" => options with { MaxLimit = Int(name, value) },
                "--default-timeout-ms" => options with { DefaultTimeout = TimeSpan.FromMilliseconds(Int(name, value)) },
                "--max-timeout-ms" => options with { MaxTimeout = TimeSpan.FromMilliseconds(Int(name, value)) },
                "--shutdown-grace-ms" => options with { ShutdownGrace = TimeSpan.FromMilliseconds(Int(name, value)) },
                "--serve-followers" => options with { FollowersSocket = value },
                "--follow" => options with { FollowSocket = value },
                "--replicate-to" => options with { ReplicateTo = value },
                "--follow-nats" => options with { FollowNats = value },
                "--replication-name" => options with { ReplicationName = value },
                "--replication-replicas" => options with { ReplicationReplicas = Int(name, value) },
                "--replication-max-pending-mb" => options with { ReplicationMaxPendingBytes = (long)Int(name, value) << 20 },
                "--replication-purge" => options with { ReplicationPurge = bool.TryParse(value, out bool purge) ? purge : throw Bad(name, value) },
                "--replication-snapshot-every" => options with { ReplicationSnapshotEvery = Int(name, value) },
                "--token-file" => options with { TokenFile = value },
                "--anonymous-reads" => options with { AnonymousReads = bool.TryParse(value, out bool anonymous) ? anonymous : throw Bad(name, value) },
                "--allowed-hosts" => options with { AllowedHosts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) },
                "--max-connections" => options with { MaxConnections = Int(name, value) },
                "--max-concurrent-requests" => options with { MaxConcurrentRequests = Int(name, value) },
                "--max-queued-requests" => options with { MaxQueuedRequests = Int(name, value) },
                "--max-answer-bytes" => options with { MaxAnswerBytes = Int(name, value) },
                "--max-reply-bytes" => options with { MaxReplyBytes = Int(name, value) },
                "--max-memory-mb" => options with { MaxMemoryBytes = (long)Int(name, value) << 20 },
                "--max-retained-read-mb" => options with { MaxRetainedReadBytes = (long)Int(name, value) << 20 },
                "--idle-timeout-ms" => options with { IdleTimeout = TimeSpan.FromMilliseconds(Int(name, value)) },
                "--header-timeout-ms" => options with { HeaderTimeout = TimeSpan.FromMilliseconds(Int(name, value)) },
                "--otlp-endpoint" => options with { OtlpEndpoint = Uri.TryCreate(value, UriKind.Absolute, out Uri? u) ? u : throw Bad(name, value) },
                _ => throw new ArgumentException($"Unknown option {name}."),
            };
        }

        options.Validate();
        return options;
    }

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentException">The first value out of range, named.</exception>
    public void Validate()
    {
        Check(Port is >= 0 and <= 65535, "--port", "0..65535");
        Check(TcpPort is >= -1 and <= 65535, "--tcp-port", "-1..65535");
        Check(Replicas >= 1, "--replicas", "at least 1");
        Check(MaxRequestBytes >= 256, "--max-request-bytes", "at least 256");
        Check(MaxLimit >= 1 && MaxStreamLimit >= MaxLimit, "--max-limit", "at least 1");
        Check(DefaultTimeout > TimeSpan.Zero && DefaultTimeout <= MaxTimeout, "--default-timeout-ms", "positive and at most --max-timeout-ms");
        Check(ShutdownGrace >= TimeSpan.Zero, "--shutdown-grace-ms", "not negative");
        Check(MaxInFlightPerConnection >= 1, "MaxInFlightPerConnection", "at least 1");
        Check(!SaveOnShutdown || SnapshotPath is not null, "--save-on-shutdown", "used with --snapshot");
        Check(FollowSocket is null || (Backend == BackendKind.Pool && FollowersSocket is null && SnapshotPath is null),
            "--follow", "used without --serve-followers, --snapshot and --backend locked (a follower has no state of its own)");
        Check(FollowersSocket is null || Backend == BackendKind.Pool, "--serve-followers", "used with the pool backend");
        Check(FollowNats is null || (Backend == BackendKind.Pool && FollowSocket is null && FollowersSocket is null && SnapshotPath is null && ReplicateTo is null),
            "--follow-nats", "used without --follow, --serve-followers, --snapshot, --replicate-to and --backend locked");
        Check(ReplicateTo is null || (Backend == BackendKind.Pool && FollowSocket is null), "--replicate-to", "used with the pool backend, not on a follower");
        Check(Durability != Durability.Replicated || ReplicateTo is not null, "--durability",
            "replicated only with --replicate-to (the JetStream that acknowledges writes)");
        Check(ReplicationReplicas is >= 1 and <= 5, "--replication-replicas", "1..5");
        Check(Token is null || Token.Length >= 16, "Token", "at least 16 characters");
        Check(AllowedHosts.Count > 0, "--allowed-hosts", "at least one name");
        Check(MaxConnections >= 1, "--max-connections", "at least 1");
        Check(MaxConcurrentRequests >= 0, "--max-concurrent-requests", "at least 1 (0: replicas + 1)");
        Check(MaxQueuedRequests >= 0, "--max-queued-requests", "not negative");
        Check(MaxAnswerBytes >= 1024, "--max-answer-bytes", "at least 1024");
        Check(MaxReplyBytes >= MaxAnswerBytes, "--max-reply-bytes", "at least --max-answer-bytes");
        Check(MaxMemoryBytes >= 16L << 20 && MaxMemoryBytes <= 4L << 30, "--max-memory-mb", "16..4096");
        Check(MaxRetainedReadBytes >= 0, "--max-retained-read-mb", "not negative");
        Check(IdleTimeout > TimeSpan.Zero, "--idle-timeout-ms", "positive");
        Check(HeaderTimeout > TimeSpan.Zero, "--header-timeout-ms", "positive");
        Check(MinSnapshotInterval >= TimeSpan.Zero, "MinSnapshotInterval", "not negative");
        Check(SnapshotEvery >= 0, "--snapshot-every", "not negative");
        Check(ReplicationSnapshotEvery >= 0, "--replication-snapshot-every", "not negative");
        Check(ReplicationMaxPendingBytes >= 1L << 20, "--replication-max-pending-mb", "at least 1");
        Check((ReplicateTo ?? FollowNats) is null || new Replication.ReplicationOptions { Name = ReplicationName }.IsValidName(),
            "--replication-name", "1 to 64 letters, digits, '-' or '_'");
    }

    private static void Check(bool ok, string name, string expected)
    {
        if (!ok)
        {
            throw new ArgumentException($"{name} must be {expected}.");
        }
    }

    /// <summary>The pool settings of a leader or follower service: replicas, isolation, the memory budgets.</summary>
    internal PoolOptions PoolOptions => PrologPool.DefaultOptions with
    {
        ReplicaCount = Replicas,
        Isolation = Isolation,
        MaxMemoryBytes = MaxMemoryBytes,
        MaxRetainedReadBytes = MaxRetainedReadBytes,
    };

    /// <summary>The replication settings of a leader or follower service.</summary>
    internal Replication.ReplicationOptions Replication => new()
    {
        Name = ReplicationName,
        Replicas = ReplicationReplicas,
        SnapshotEvery = ReplicationSnapshotEvery,
        AcknowledgedWrites = Durability == Durability.Replicated,
        MaxPendingBytes = ReplicationMaxPendingBytes,
        PurgeStream = ReplicationPurge,
    };

    private static int Int(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : throw Bad(name, value);

    private static ArgumentException Bad(string name, string value) => new($"{name}: \"{value}\" is not a valid value.");
}
