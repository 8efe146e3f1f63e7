using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using CowWasm.Memory.Native;
using CowWasm.Memory.Sync;

namespace CowWasm.Memory.Sharing;

/// <summary>Settings of a <see cref="FollowerHub"/>.</summary>
public sealed record FollowerHubOptions
{
    /// <summary>How long a commit waits for every follower to pin its pages; a follower that has not is dropped (default 100 ms).</summary>
    public TimeSpan PinTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long a send to one follower may block once its socket buffer (the bounded buffer between hub and follower)
    /// is full; a follower that does not drain it in time is dropped (default 100 ms).
    /// </summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Followers connected at once; more are refused (default 64).</summary>
    public int MaxFollowers { get; init; } = 64;
}

/// <summary>
/// Serves a <see cref="SyncStrategy"/>'s committed state to follower processes on this host (docs/followers.md): a
/// follower connecting to the Unix socket gets the base memfd (<c>SCM_RIGHTS</c>) and maps it as the base of its own
/// replicas, so every process shares one copy of clean pages; then, for each commit, the hub sends the dirty runs
/// (<c>prepare</c>), waits up to <see cref="FollowerHubOptions.PinTimeout"/> for each follower to pin them (its
/// replicas keep private copies of the old bytes, so reads in flight stay consistent), lets the strategy write the
/// base, and sends <c>commit</c> with the new length and the embedder's state (globals, …). No page bytes travel.
/// The embedder drives it from each commit: <see cref="BeforeBaseWrite"/> from inside the strategy's commit (an
/// <see cref="ICommitObserver"/>), then <see cref="AfterBaseWrite"/> with the committed state — or
/// <see cref="AbandonBaseWrite"/> when the commit was refused after all. A <c>GuestPool</c> does this through its commit
/// listeners.
/// </summary>
/// <remarks>
/// <para>A follower that does not pin in time, or whose socket buffer stays full, is dropped: it is sent the reason
/// and its connection is closed. Its reads that overlapped a base write are reported as torn
/// (<see cref="BaseFollower.Return"/>), never passed off as consistent; it may reconnect and starts from the current
/// state.</para>
/// <para>Thread-safety: the commit calls come from one commit at a time, and the committing thread itself reads the
/// followers' answers; followers connect on one background thread. After <see cref="Dispose"/>, which disconnects every
/// follower, the commit calls do nothing.</para>
/// </remarks>
public sealed class FollowerHub : IDisposable
{
    private readonly SyncStrategy _strategy;
    private readonly string _socketPath;
    private readonly byte[] _identity;
    private readonly Socket _listener;
    private readonly WriteCounter _writes = WriteCounter.Create();
    private readonly List<Connection> _followers = [];
    private readonly object _sync = new(); // Monitor.Wait: a follower's handshake waits out a commit's base write
    private bool _writing;
    private readonly Thread _acceptor;
    private long _sequence;
    private long _pending;
    private byte[] _currentState;
    private bool _disposed;
    private Driver? _driver;

    /// <param name="strategy">The leader's strategy; its base must stay a memfd (a snapshot-loaded one is copied up now).</param>
    /// <param name="socketPath">Where to listen (created; must not exist).</param>
    /// <param name="identity">What followers must expect (e.g. the module hash); one that expects something else is refused.</param>
    /// <param name="state">The embedder's committed state now (globals, …), for followers that connect before the next
    /// commit; each commit brings its own (<see cref="AfterBaseWrite"/>).</param>
    /// <param name="options">Timeouts and limits.</param>
    /// <param name="sequence">The sequence of the current committed state (a restarted leader continues its numbering).</param>
    /// <remarks>Create it between commits: a strategy whose base is a read-only snapshot file gets a memfd copy first
    /// (<see cref="SyncStrategy.ShareBase"/>: followers map the base).</remarks>
    public FollowerHub(SyncStrategy strategy, string socketPath, ReadOnlyMemory<byte> identity, byte[] state,
        FollowerHubOptions? options = null, long sequence = 0)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Follower hubs need Linux (memfd, SCM_RIGHTS, SO_PEERCRED).");
        }

        strategy.ShareBase();
        Libc.SealAgainstShrinking(strategy.Base.Handle); // no follower (nor anyone) can truncate it under the leader
        _strategy = strategy;
        _socketPath = socketPath;
        _identity = identity.ToArray();
        Options = options ?? new FollowerHubOptions();
        _sequence = sequence;
        _currentState = state;
        _writes.Value = sequence;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            Bind(_listener, socketPath);
            // Only this user may connect (and the handshake checks the peer's uid as well); set before listen(), so no
            // connection is accepted while the file still has the umask's mode.
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _listener.Listen(16);
        }
        catch
        {
            _listener.Dispose();
            _writes.Dispose();
            throw;
        }

        _acceptor = new Thread(AcceptLoop) { IsBackground = true, Name = "cowwasm follower hub" };
        _acceptor.Start();
    }

    /// <summary>
    /// Binds the socket; a socket file nobody listens on (left by a leader that crashed) is replaced, one a live hub
    /// listens on is not.
    /// </summary>
    private static void Bind(Socket listener, string socketPath)
    {
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            return;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            if (!IsStale(socketPath))
            {
                throw new IOException($"{socketPath} already exists and is not a stale socket: another hub serves it, or it is another file.", e);
            }
        }

        File.Delete(socketPath);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
    }

    /// <summary>A socket file whose listener is gone: connecting is refused.</summary>
    private static bool IsStale(string socketPath)
    {
        if (!Libc.IsSocketFile(socketPath))
        {
            return false; // a regular file, a link, a directory: never deleted
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
            return false; // a live hub answered
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
        catch (SocketException)
        {
            return false; // not a socket, or not ours to judge
        }
    }

    /// <summary>
    /// For a strategy used on its own (no pool): creates a hub that the strategy's commits drive — it becomes the
    /// strategy's <see cref="SyncStrategy.CommitObserver"/>, reading the embedder's state from <paramref name="state"/>
    /// after each commit — and that detaches itself when disposed.
    /// </summary>
    public static FollowerHub Attach(SyncStrategy strategy, string socketPath, ReadOnlyMemory<byte> identity, Func<byte[]> state,
        FollowerHubOptions? options = null, long sequence = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        var hub = new FollowerHub(strategy, socketPath, identity, state(), options, sequence);
        try
        {
            hub._driver = new Driver(hub, state);
            strategy.CommitObserver = hub._driver;
            return hub;
        }
        catch
        {
            hub.Dispose();
            throw;
        }
    }

    /// <summary>The settings.</summary>
    public FollowerHubOptions Options { get; }

    /// <summary>The sequence number of the last commit (0 before the first, or the one given at construction).</summary>
    public long Sequence
    {
        get
        {
            lock (_sync)
            {
                return _sequence;
            }
        }
    }

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed
    {
        get
        {
            lock (_sync)
            {
                return _disposed;
            }
        }
    }

    /// <summary>Followers connected now.</summary>
    public int FollowerCount
    {
        get
        {
            lock (_sync)
            {
                return _followers.Count;
            }
        }
    }

    /// <summary>Called (on the committing thread or the acceptor) with a reason each time a follower is dropped or refused.</summary>
    public Action<string>? Dropped { get; set; }

    /// <summary>
    /// Inside a commit, before the base changes: sends the runs to every follower and waits (up to the pin timeout) for
    /// each to pin them; a follower that does not is dropped. Never throws for a follower's failure.
    /// </summary>
    /// <param name="runs">The pages the commit writes.</param>
    /// <param name="committedPageCount">The new committed length.</param>
    public void BeforeBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount)
    {
        ArgumentNullException.ThrowIfNull(runs);
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }

            _pending = _sequence + 1;
            if (_followers.Count > 0) // no frame to build and nobody to wait for in a commit without followers
            {
                byte[] prepare = FollowerWire.Prepare(_pending, committedPageCount, runs);
                foreach (Connection follower in _followers.ToArray())
                {
                    if (follower.TrySend(prepare, Options.SendTimeout, _pending) is { } failure)
                    {
                        Drop(follower, failure);
                    }
                }

                long deadline = Environment.TickCount64 + (long)Options.PinTimeout.TotalMilliseconds;
                foreach (Connection follower in _followers.ToArray())
                {
                    if (!follower.WaitPinned(_pending, deadline))
                    {
                        Drop(follower, follower.Error ?? $"it did not pin commit {_pending} within {Options.PinTimeout.TotalMilliseconds:0} ms");
                    }
                }
            }

            _writes.Value = _pending; // from here on the base may change: a follower read not pinned for it is torn
            _writing = true;
        }
    }

    /// <summary>
    /// The commit prepared by <see cref="BeforeBaseWrite"/> was refused before the base changed (by another of the
    /// embedder's listeners): followers keep their pins (copies of unchanged bytes) and are prepared again by the next commit.
    /// </summary>
    public void AbandonBaseWrite()
    {
        lock (_sync)
        {
            _writing = false;
            Monitor.PulseAll(_sync);
        }
    }

    /// <summary>After the base holds the commit: tells every follower its new length and <paramref name="state"/>.</summary>
    /// <param name="committedPageCount">The committed length.</param>
    /// <param name="state">The embedder's committed state (globals, …), also kept for followers that connect later.</param>
    public void AfterBaseWrite(long committedPageCount, byte[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }

            _writing = false;
            Monitor.PulseAll(_sync);
            _sequence = _pending;
            _currentState = state; // kept for followers that connect later
            if (_followers.Count > 0)
            {
                byte[] commit = FollowerWire.Commit(_sequence, committedPageCount, _currentState);
                foreach (Connection follower in _followers.ToArray())
                {
                    if (follower.TrySend(commit, Options.SendTimeout, _sequence) is { } failure)
                    {
                        Drop(follower, failure);
                    }
                }
            }
        }
    }

    private void AcceptLoop()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return; // disposed
            }

            try
            {
                Admit(client);
            }
            catch (Exception e) when (e is SocketException or IOException or NativeCallException or InvalidOperationException)
            {
                client.Dispose();
                Dropped?.Invoke($"A follower's handshake failed: {e.Message}");
            }
        }
    }

    /// <summary>The handshake, between commits: the descriptors, then the current state.</summary>
    private void Admit(Socket client)
    {
        client.Blocking = true;
        client.SendTimeout = (int)Options.SendTimeout.TotalMilliseconds;
        lock (_sync)
        {
            if (_disposed)
            {
                client.Dispose();
                return;
            }

            if (Libc.PeerUserId(client) is var uid && uid != Libc.EffectiveUserId)
            {
                Refuse(client, $"the connecting process runs as uid {uid}; the hub serves only its own user ({Libc.EffectiveUserId})");
                return;
            }

            if (_followers.Count >= Options.MaxFollowers)
            {
                Refuse(client, $"the hub serves at most {Options.MaxFollowers} followers");
                return;
            }

            // Between a commit's pins and its commit frame the base is being written: a follower admitted then would map
            // half of it. Wait for the commit to finish (a commit that failed there has faulted the strategy).
            long deadline = Environment.TickCount64 + 5000;
            while (_writing && Environment.TickCount64 < deadline)
            {
                Monitor.Wait(_sync, 100);
            }

            if (_writing)
            {
                Refuse(client, "the leader has been in the middle of a commit for 5 s (a failed commit faults the leader)");
                return;
            }

            // Followers get read-only descriptors: they map the base copy-on-write and read the counter; they can
            // neither write committed pages nor (the base is sealed) shrink it under the leader.
            using SafeFdHandle readOnlyBase = Libc.ReopenReadOnly(_strategy.Base.Handle);
            using SafeFdHandle readOnlyWrites = Libc.ReopenReadOnly(_writes.Handle);
            Libc.SendWithFds(client, FollowerWire.Magic, readOnlyBase, readOnlyWrites);
            byte[] hello = FollowerWire.Hello(_sequence, _strategy.CommittedPageCount, _identity, _currentState);
            client.Send(hello);
            _followers.Add(new Connection(client));
        }
    }

    private void Refuse(Socket client, string reason)
    {
        try
        {
            client.Send(FollowerWire.Dropped(reason));
        }
        catch (SocketException)
        {
        }

        client.Dispose();
        Dropped?.Invoke($"A follower was refused: {reason}.");
    }

    private void Drop(Connection follower, string reason)
    {
        _followers.Remove(follower);
        follower.Close(reason);
        Dropped?.Invoke($"A follower was dropped: {reason}.");
    }

    /// <summary>Detaches from the strategy, tells every follower, closes the socket and removes its file.</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (Connection follower in _followers)
            {
                follower.Close("the leader's hub closed");
            }

            _followers.Clear();
        }

        if (_driver is not null && ReferenceEquals(_strategy.CommitObserver, _driver))
        {
            try
            {
                _strategy.CommitObserver = null;
            }
            catch (ObjectDisposedException)
            {
                // The strategy went first.
            }
        }

        _listener.Dispose();
        _acceptor.Join();
        File.Delete(_socketPath);
        _writes.Dispose();
    }

    /// <summary>The strategy's observer for a hub made by <see cref="Attach"/>.</summary>
    private sealed class Driver(FollowerHub hub, Func<byte[]> state) : ICommitObserver
    {
        public void BeforeBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount) => hub.BeforeBaseWrite(runs, committedPageCount);

        public void AfterBaseWrite(IReadOnlyList<PageRun> runs, long committedPageCount) => hub.AfterBaseWrite(committedPageCount, state());
    }

    /// <summary>
    /// One follower: a blocking socket. Its only messages are <c>pinned</c> answers, which the committing thread reads
    /// itself while it waits for them (no thread per follower, and no hand-off between threads on the commit path).
    /// </summary>
    private sealed class Connection(Socket socket)
    {
        private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs
        private readonly byte[] _chunk = new byte[4096];
        private readonly ArrayBufferWriter<byte> _pending = new();
        private long _pinned = -1;
        private bool _closed;

        public string? Error { get; private set; }

        /// <summary>Null when sent; else why the follower must be dropped.</summary>
        public string? TrySend(byte[] frame, TimeSpan timeout, long sequence)
        {
            try
            {
                socket.Send(frame); // blocks at most SendTimeout when the follower does not drain its buffer
                return null;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                return $"its socket buffer stayed full for {timeout.TotalMilliseconds:0} ms (commit {sequence})";
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return $"its connection failed: {e.Message} (commit {sequence})";
            }
        }

        /// <summary>Reads the follower's answers until it has pinned <paramref name="sequence"/> or the deadline passes.</summary>
        public bool WaitPinned(long sequence, long deadline)
        {
            try
            {
                long spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
                while (_pinned < sequence && !_closed)
                {
                    // A follower answers within tens of microseconds: poll without sleeping for a while first, since on
                    // this VM a blocked thread's wake-up costs about as much as the answer itself.
                    bool ready = Stopwatch.GetTimestamp() < spinUntil
                        ? socket.Poll(0, SelectMode.SelectRead)
                        : socket.Poll(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)), SelectMode.SelectRead);
                    if (!ready)
                    {
                        if (Environment.TickCount64 >= deadline)
                        {
                            return false;
                        }

                        continue;
                    }

                    int n = socket.Receive(_chunk);
                    if (n == 0)
                    {
                        throw new IOException("the follower closed its connection");
                    }

                    _pending.Write(_chunk.AsSpan(0, n));
                    var frames = new ReadOnlySequence<byte>(_pending.WrittenMemory);
                    while (FollowerWire.TryTake(ref frames, out FollowerWire.FrameType type, out byte[] body))
                    {
                        if (type != FollowerWire.FrameType.Pinned)
                        {
                            throw new InvalidDataException($"a follower sent a {type} frame");
                        }

                        var reader = new FollowerWire.Reader(body);
                        _pinned = Math.Max(_pinned, reader.U64());
                        reader.End();
                    }

                    byte[] rest = frames.ToArray();
                    _pending.Clear();
                    _pending.Write(rest);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or InvalidDataException)
            {
                Error ??= $"its connection failed: {e.Message}";
                _closed = true;
            }

            return _pinned >= sequence;
        }

        public void Close(string reason)
        {
            try
            {
                socket.Send(FollowerWire.Dropped(reason)); // best effort: the buffer may be full
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }

            socket.Dispose();
            _closed = true;
        }
    }
}
