using System.Buffers;
using System.Net.Sockets;
using CowWasm.Memory.Native;

namespace CowWasm.Memory.Sharing;

/// <summary>Settings of a <see cref="BaseFollower"/>.</summary>
public sealed record FollowerOptions
{
    /// <summary>Replicas this process serves reads from (default 2).</summary>
    public int ReplicaCount { get; init; } = 2;

    /// <summary>The reservation of each replica in pages: the most the committed state may grow to (default 2^20).</summary>
    public long MaxPageCount { get; init; } = 1L << 20;

    /// <summary>Address space each replica reserves when that is more than <see cref="MaxPageCount"/> pages (a guard region).</summary>
    public long ReservedBytes { get; init; }

    /// <summary>What the hub must serve (e.g. the module hash); empty: anything.</summary>
    public ReadOnlyMemory<byte> ExpectedIdentity { get; init; }
}

/// <summary>A replica of a <see cref="BaseFollower"/>: a view of the shared base, at <see cref="Sequence"/>.</summary>
public sealed class FollowedReplica
{
    internal FollowedReplica(CowView memory) => Memory = memory;

    /// <summary>The replica's memory: the committed state of <see cref="Sequence"/> (a read may scribble on it).</summary>
    public CowView Memory { get; }

    /// <summary>The commit this replica shows.</summary>
    public long Sequence { get; internal set; }

    /// <summary>The embedder's state of that commit (what the hub's state callback returned).</summary>
    public ReadOnlyMemory<byte> State { get; internal set; }

    internal long PinnedThrough { get; set; }

    internal long BasePages { get; set; }
}

/// <summary>
/// Follows a <see cref="FollowerHub"/> in another process on this host: maps the hub's base memfd (received over the
/// Unix socket) under its own replicas, pins each commit's pages before the hub writes them, and moves idle replicas to
/// each new commit. A read rents a replica (<see cref="RentAsync"/>), which shows one committed state for the whole
/// read, and returns it (<see cref="Return"/>), which says whether that held.
/// </summary>
/// <remarks>
/// Thread-safety: rent and return from any threads; a background task applies the hub's frames. When the hub drops the
/// follower (or the connection fails) <see cref="Completion"/> faults with the reason and rentals fail; reconnect with a
/// new follower. Disposal closes the connection and unmaps everything; do not dispose while replicas are rented.
/// </remarks>
public sealed class BaseFollower : IDisposable
{
    private readonly Socket _socket;
    private readonly PageBase _base;

    /// <summary>The base as this follower received it (tests check what its descriptor allows).</summary>
    internal PageBase Base => _base;
    private readonly WriteCounter _writes;
    private readonly List<FollowedReplica> _replicas = [];
    private readonly Stack<FollowedReplica> _idle = new();
    private readonly SemaphoreSlim _available;
    private readonly Lock _sync = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<PageRun> _private = [];
    private PageRun[] _preparedRuns = [];
    private long _prepared;
    private long _sequence;
    private long _committedPages;
    private ReadOnlyMemory<byte> _state;
    private Thread? _reader;
    private int _disposed;

    private BaseFollower(Socket socket, PageBase pageBase, WriteCounter writes, long sequence, long committedPages, byte[] state,
        FollowerOptions options)
    {
        _socket = socket;
        _base = pageBase;
        _writes = writes;
        _sequence = _prepared = sequence;
        _committedPages = committedPages;
        _state = state;
        Options = options;
        _available = new SemaphoreSlim(0, options.ReplicaCount);
    }

    /// <summary>The settings.</summary>
    public FollowerOptions Options { get; }

    /// <summary>Called on the follower's reader thread right after each commit is applied, with its sequence (keep it short).</summary>
    public Action<long>? Applied { get; set; }

    /// <summary>Tests only: while reset, frames from the hub wait unapplied (a follower that has fallen behind).</summary>
    internal ManualResetEventSlim ApplyGate { get; } = new(initialState: true);

    /// <summary>The last commit applied.</summary>
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

    /// <summary>The embedder's state of <see cref="Sequence"/>.</summary>
    public ReadOnlyMemory<byte> State
    {
        get
        {
            lock (_sync)
            {
                return _state;
            }
        }
    }

    /// <summary>Completes when the follower stops: faulted with the hub's reason when it was dropped or the connection failed.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Connects to the hub at <paramref name="socketPath"/>, maps its base and creates the replicas at its current commit.</summary>
    /// <exception cref="InvalidDataException">The hub serves another identity, or spoke something else than the protocol.</exception>
    /// <exception cref="IOException">The hub refused the follower (the message says why).</exception>
    public static BaseFollower Connect(string socketPath, FollowerOptions? options = null)
    {
        options ??= new FollowerOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.ReplicaCount);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        SafeFdHandle[] fds = [];
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath)); // a local socket: connects or fails at once
            byte[] magic = new byte[FollowerWire.Magic.Length];
            int got = Libc.ReceiveWithFds(socket, magic, out fds);
            var frames = new FrameReader(socket);
            frames.Add(magic.AsSpan(0, got));
            if (got == 0 || fds.Length != 2 || got < magic.Length && !magic.AsSpan(0, got).SequenceEqual(FollowerWire.Magic[..got]))
            {
                throw Refusal(frames);
            }

            frames.Skip(FollowerWire.Magic.Length); // reads the rest of the magic if it came short
            (FollowerWire.FrameType type, byte[] body) = frames.Next() ?? throw new IOException("The hub closed the connection before its hello.");
            if (type != FollowerWire.FrameType.Hello)
            {
                throw new InvalidDataException($"The hub sent {type} where its hello belongs.");
            }

            var hello = new FollowerWire.Reader(body);
            uint version = hello.U32();
            long sequence = hello.U64(), committed = hello.U64();
            byte[] identity = hello.Bytes(), state = hello.Bytes();
            hello.End();
            if (version != FollowerWire.Version)
            {
                throw new InvalidDataException($"The hub speaks follower protocol {version}; this follower speaks {FollowerWire.Version}.");
            }

            if (!options.ExpectedIdentity.IsEmpty && !options.ExpectedIdentity.Span.SequenceEqual(identity))
            {
                throw new InvalidDataException(
                    $"The hub serves {Convert.ToHexStringLower(identity)}, not {Convert.ToHexStringLower(options.ExpectedIdentity.Span)}: " +
                    "a follower of another module is refused.");
            }

            if (committed > options.MaxPageCount)
            {
                throw new InvalidDataException($"The hub's state has {committed} pages; the follower reserves {options.MaxPageCount}.");
            }

            PageBase pageBase = PageBase.AdoptFollowed(fds[0], committed);
            WriteCounter writes;
            try
            {
                writes = WriteCounter.Adopt(fds[1]);
            }
            catch
            {
                pageBase.Dispose();
                throw;
            }

            fds = [];
            var follower = new BaseFollower(socket, pageBase, writes, sequence, committed, state, options);
            try
            {
                follower.CreateReplicas();
            }
            catch
            {
                follower.Dispose();
                throw;
            }

            // A dedicated thread with blocking reads: applying a frame must never wait for the thread pool, which a
            // leader's commit (blocked until we pin) may be holding on to.
            follower._reader = new Thread(() => follower.ReadLoop(frames)) { IsBackground = true, Name = "cowwasm follower" };
            follower._reader.Start();
            return follower;
        }
        catch
        {
            foreach (SafeFdHandle fd in fds)
            {
                fd.Dispose();
            }

            socket.Dispose();
            throw;
        }
    }

    private static Exception Refusal(FrameReader frames)
    {
        // A refusal is a Dropped frame without descriptors; its first bytes came with the recvmsg.
        try
        {
            if (frames.Next() is (FollowerWire.FrameType.Dropped, byte[] body))
            {
                return new IOException($"The hub refused the follower: {new FollowerWire.Reader(body).Text()}");
            }
        }
        catch (InvalidDataException)
        {
        }

        return new InvalidDataException("The peer is not a CowWasm follower hub (no magic, no descriptors).");
    }

    /// <summary>Whole frames off a blocking socket.</summary>
    private sealed class FrameReader(Socket socket)
    {
        private readonly byte[] _chunk = new byte[64 * 1024];
        private byte[] _buffer = new byte[64 * 1024];
        private int _start, _end;

        public void Add(ReadOnlySpan<byte> bytes)
        {
            Ensure(bytes.Length);
            bytes.CopyTo(_buffer.AsSpan(_end));
            _end += bytes.Length;
        }

        public void Skip(int count)
        {
            while (_end - _start < count && Fill())
            {
            }

            _start += Math.Min(count, _end - _start);
        }

        public (FollowerWire.FrameType, byte[])? Next()
        {
            while (true)
            {
                var available = new ReadOnlySequence<byte>(_buffer, _start, _end - _start);
                if (FollowerWire.TryTake(ref available, out FollowerWire.FrameType type, out byte[] body))
                {
                    _start = _end - (int)available.Length;
                    return (type, body);
                }

                if (!Fill())
                {
                    return null;
                }
            }
        }

        private bool Fill()
        {
            int n = socket.Receive(_chunk);
            if (n == 0)
            {
                return false;
            }

            Add(_chunk.AsSpan(0, n));
            return true;
        }

        private void Ensure(int more)
        {
            if (_end + more <= _buffer.Length)
            {
                return;
            }

            int live = _end - _start;
            byte[] target = live + more <= _buffer.Length ? _buffer : new byte[Math.Max(_buffer.Length * 2, live + more)];
            Buffer.BlockCopy(_buffer, _start, target, 0, live);
            _buffer = target;
            _start = 0;
            _end = live;
        }
    }

    private void CreateReplicas()
    {
        for (int i = 0; i < Options.ReplicaCount; i++)
        {
            var replica = new FollowedReplica(new CowView(_base, _committedPages, Options.MaxPageCount, zeroFillBeyondBase: true, Options.ReservedBytes))
            {
                Sequence = _sequence,
                PinnedThrough = _sequence,
                State = _state,
                BasePages = _committedPages,
            };
            _replicas.Add(replica);
            _idle.Push(replica);
            _available.Release();
        }
    }

    /// <summary>Waits for an idle replica; it shows the latest applied commit.</summary>
    /// <exception cref="InvalidOperationException">The follower was dropped or its connection failed (the reason is the inner exception).</exception>
    public async ValueTask<FollowedReplica> RentAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await _available.WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_sync)
        {
            if (_completion.Task.IsCompleted)
            {
                _available.Release();
                throw new InvalidOperationException("The follower has stopped; connect a new one.", _completion.Task.Exception?.InnerException);
            }

            return _idle.Pop();
        }
    }

    /// <summary>
    /// Ends a read: resets the replica to the latest applied commit and makes it idle. Returns true when the replica
    /// showed one committed state for the whole rental; false when the hub wrote a commit this follower had not pinned
    /// (it was too slow, or dropped) — the read may have seen a mix of two commits and must not be trusted.
    /// </summary>
    public bool Return(FollowedReplica replica)
    {
        ArgumentNullException.ThrowIfNull(replica);
        lock (_sync)
        {
            bool consistent = _writes.Value <= replica.PinnedThrough; // read after the read's last access
            replica.Memory.CollectPrivatePages(_private);
            replica.Memory.ResetToBase(_private);
            MoveTo(replica, _sequence, _committedPages, _state);
            _idle.Push(replica);
            _available.Release();
            return consistent;
        }
    }

    /// <summary>Waits until commit <paramref name="sequence"/> (or a later one) is applied.</summary>
    public async Task WaitForSequenceAsync(long sequence, CancellationToken cancellationToken = default)
    {
        while (Sequence < sequence)
        {
            if (_completion.Task.IsCompleted)
            {
                await _completion.Task.ConfigureAwait(false);
                throw new InvalidOperationException($"The follower stopped before commit {sequence}.");
            }

            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    private void ReadLoop(FrameReader frames)
    {
        try
        {
            while (frames.Next() is { } frame)
            {
                ApplyGate.Wait();
                Apply(frame.Item1, frame.Item2);
            }

            throw new IOException("The hub closed the connection.");
        }
        catch (Exception e)
        {
            _completion.TrySetException(e is ObjectDisposedException or SocketException && Volatile.Read(ref _disposed) != 0
                ? new ObjectDisposedException(nameof(BaseFollower))
                : e);
        }
    }

    private void Apply(FollowerWire.FrameType type, byte[] body)
    {
        var reader = new FollowerWire.Reader(body);
        switch (type)
        {
            case FollowerWire.FrameType.Prepare:
            {
                long sequence = reader.U64(), committed = reader.U64();
                PageRun[] runs = reader.Runs();
                reader.End();
                lock (_sync)
                {
                    if (sequence != _sequence + 1 || committed > Options.MaxPageCount)
                    {
                        throw new InvalidDataException($"The hub prepared commit {sequence} ({committed} pages) after commit {_sequence}.");
                    }

                    // Every replica, rented or idle, keeps private copies of what these pages show now.
                    foreach (FollowedReplica replica in _replicas)
                    {
                        replica.Memory.Pin(runs);
                    }

                    // The pins hold commit sequence-1's bytes only if the hub had not begun writing when they were made
                    // (it stores the counter before it writes): too late — we were too slow and are being dropped — and
                    // a rented replica's read is torn, which Return reports.
                    if (_writes.Value < sequence)
                    {
                        foreach (FollowedReplica replica in _replicas)
                        {
                            if (replica.PinnedThrough == sequence - 1)
                            {
                                replica.PinnedThrough = sequence;
                            }
                        }
                    }

                    _prepared = sequence;
                    _preparedRuns = runs;
                }

                try
                {
                    _socket.Send(FollowerWire.Pinned(sequence));
                }
                catch (SocketException)
                {
                    // The hub has closed the connection: its Dropped frame (or the end) is what the next read finds.
                }

                break;
            }

            case FollowerWire.FrameType.Commit:
            {
                long sequence = reader.U64(), committed = reader.U64();
                byte[] state = reader.Bytes();
                reader.End();
                lock (_sync)
                {
                    if (sequence != _prepared || sequence != _sequence + 1)
                    {
                        throw new InvalidDataException($"The hub committed {sequence}; this follower prepared {_prepared} after {_sequence}.");
                    }

                    _base.FollowGrowth(committed);
                    _sequence = sequence;
                    _committedPages = committed;
                    _state = state;
                    foreach (FollowedReplica idle in _idle)
                    {
                        // An idle replica's only private pages are this commit's pins: dropping them shows the new bytes.
                        idle.Memory.ResetToBase(Clip(_preparedRuns, idle.Memory.PageCount));
                        MoveTo(idle, sequence, committed, state);
                    }
                }

                Applied?.Invoke(sequence);

                break;
            }

            case FollowerWire.FrameType.Dropped:
                throw new IOException($"The hub dropped this follower: {reader.Text()}");
            default:
                throw new InvalidDataException($"The hub sent a {type} frame.");
        }
    }

    /// <summary>Points a replica (with no private pages left but scratch beyond the base) at a commit and its length.</summary>
    private static void MoveTo(FollowedReplica replica, long sequence, long committedPages, ReadOnlyMemory<byte> state)
    {
        CowView memory = replica.Memory;
        if (memory.PageCount > replica.BasePages)
        {
            memory.Resize(replica.BasePages); // drop scratch a read grew into: anonymous pages, not the base's
        }

        if (committedPages != memory.PageCount)
        {
            memory.Resize(committedPages);
        }

        replica.BasePages = committedPages;
        replica.Sequence = sequence;
        replica.PinnedThrough = sequence;
        replica.State = state;
    }

    private static List<PageRun> Clip(PageRun[] runs, long pageCount)
    {
        var clipped = new List<PageRun>(runs.Length);
        foreach (PageRun run in runs)
        {
            long end = Math.Min(run.EndPage, pageCount);
            if (run.StartPage < end)
            {
                clipped.Add(new PageRun(run.StartPage, end - run.StartPage));
            }
        }

        return clipped;
    }

    /// <summary>Disconnects and unmaps. Replicas must not be in use.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        _socket.Dispose();
        try
        {
            _reader?.Join(TimeSpan.FromSeconds(5));
        }
        catch (ThreadStateException)
        {
        }

        _completion.TrySetResult();
        foreach (FollowedReplica replica in _replicas)
        {
            replica.Memory.Dispose();
        }

        _base.Dispose();
        _writes.Dispose();
        _available.Dispose();
        ApplyGate.Dispose();
    }
}
