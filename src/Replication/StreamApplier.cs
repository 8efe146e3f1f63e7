using CowWasm.Memory;
using CowWasm.Pool;
using NATS.Client.JetStream;

namespace CowWasm.Replication;

/// <summary>
/// Applies a <see cref="CommitPublisher"/>'s stream to a pool, message by message: the chunks of each commit in order,
/// then the decoded, checked commit as one write transaction (<see cref="GuestPool.ApplyCommitAsync"/>, which also checks
/// that it follows the pool's own last commit). Used by <see cref="CommitFollower"/>, and by a leader catching up from the
/// stream before it publishes. Not thread-safe: one consumer loop calls it.
/// </summary>
internal sealed class StreamApplier
{
    private readonly GuestPool _pool;
    private readonly byte[] _moduleHash;
    private readonly long _maxMemoryBytes;
    private readonly long _maxDeltaBytes;
    private Assembly? _assembly;

    public StreamApplier(GuestPool pool)
    {
        _pool = pool;
        _moduleHash = PoolSnapshot.ModuleHashOf(pool.Module);
        _maxMemoryBytes = Pages.ToBytes(pool.Strategy.Options.MaxPageCount);
        // Pages, plus a run and its header per page at worst, plus globals: a stream cannot make us buffer more.
        _maxDeltaBytes = _maxMemoryBytes + _maxMemoryBytes / Pages.Size * 16 + (1 << 20);
    }

    /// <summary>Bytes one pull may buffer: two of the server's largest messages at least, not a count of possibly huge chunks.</summary>
    public static int PullBytes(long maxPayload) => (int)Math.Min(int.MaxValue, Math.Max(8L << 20, 2 * maxPayload));

    /// <summary>Short pull requests with frequent heartbeats: a consumer lost with its server is noticed and recreated in seconds.</summary>
    public static NatsJSConsumeOpts Pull(int maxBytes) =>
        new() { Expires = TimeSpan.FromSeconds(5), IdleHeartbeat = TimeSpan.FromSeconds(1), MaxBytes = maxBytes };

    /// <summary>
    /// Takes one stream message: gathers the chunks of a commit and applies the commit once whole. Returns the sequence
    /// applied, or null (a chunk of a commit still incomplete, or a commit at or before the pool's).
    /// </summary>
    /// <exception cref="ReplicationException">A gap, a chunk out of order, a damaged delta, one of another module or history,
    /// or one that does not fit the module; nothing of it is applied.</exception>
    public async ValueTask<long?> HandleAsync(INatsJSMsg<byte[]> message, CancellationToken cancellationToken)
    {
        ulong streamSequence = message.Metadata?.Sequence.Stream ?? 0;
        ChunkHeaders chunk = ChunkHeaders.Parse(message.Headers, streamSequence);
        long applied = _pool.CommitSequence;
        if (chunk.Sequence <= applied)
        {
            return null; // before the snapshot, or already applied: exactly once
        }

        if (_assembly is { } current && current.Sequence == chunk.Sequence && current.Epoch == chunk.Epoch)
        {
            if (chunk.Index != current.Next || chunk.Count != current.Count)
            {
                throw new ReplicationException(chunk.Sequence,
                    $"Stream message {streamSequence} is chunk {chunk.Index + 1}/{chunk.Count} of commit {chunk.Sequence}, where chunk " +
                    $"{current.Next + 1}/{current.Count} was next: out of order.");
            }
        }
        else
        {
            if (chunk.Sequence != applied + 1)
            {
                throw new ReplicationException(chunk.Sequence,
                    $"Stream message {streamSequence} carries commit {chunk.Sequence}, but the pool is at commit {applied}: commits " +
                    $"{applied + 1} to {chunk.Sequence - 1} are missing (removed by the stream's limits, or never published).");
            }

            if (chunk.Index != 0)
            {
                throw new ReplicationException(chunk.Sequence,
                    $"Stream message {streamSequence} is chunk {chunk.Index + 1}/{chunk.Count} of commit {chunk.Sequence}, whose first chunk never came: out of order.");
            }

            // A new commit, or the same commit redone by a new leader after one that crashed part-way: start over.
            _assembly = new Assembly(chunk.Sequence, chunk.Epoch, chunk.Count);
        }

        Assembly assembly = _assembly;
        assembly.Add(message.Data ?? [], _maxDeltaBytes);
        if (!chunk.IsLast)
        {
            return null;
        }

        _assembly = null;
        CommitRecord record;
        try
        {
            record = CommitCodec.Decode(assembly.Bytes, _moduleHash, _maxMemoryBytes);
        }
        catch (CommitFormatException e)
        {
            throw new ReplicationException(e.Sequence ?? chunk.Sequence, e.Message, e);
        }

        if (record.Sequence != chunk.Sequence)
        {
            throw new ReplicationException(chunk.Sequence, $"The delta in the messages of commit {chunk.Sequence} is of commit {record.Sequence}.");
        }

        try
        {
            await _pool.ApplyCommitAsync(record, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException)
        {
            throw new ReplicationException(record.Sequence, $"Commit {record.Sequence} cannot be applied: {e.Message}", e);
        }

        return record.Sequence;
    }

    /// <summary>The chunks of one commit, gathered in order.</summary>
    private sealed class Assembly(long sequence, string epoch, int count)
    {
        private readonly MemoryStream _bytes = new();

        public long Sequence { get; } = sequence;

        public string Epoch { get; } = epoch;

        public int Count { get; } = count;

        public int Next { get; private set; }

        public ReadOnlySpan<byte> Bytes => _bytes.GetBuffer().AsSpan(0, (int)_bytes.Length);

        public void Add(byte[] data, long maxBytes)
        {
            if (_bytes.Length + data.Length > maxBytes)
            {
                throw new ReplicationException(Sequence, $"Commit {Sequence} exceeds {maxBytes} bytes, more than any delta of this module can be.");
            }

            _bytes.Write(data);
            Next++;
        }
    }
}
