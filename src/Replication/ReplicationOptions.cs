using System.Text.RegularExpressions;

namespace CowWasm.Replication;

/// <summary>
/// Where and how a pool's commits are replicated through NATS JetStream. The leader's <see cref="CommitPublisher"/> and
/// every <see cref="CommitFollower"/> of it use the same <see cref="Name"/>.
/// </summary>
public sealed partial record ReplicationOptions
{
    /// <summary>
    /// Names the JetStream stream (<c>COWWASM_{Name}</c>), its subject (<c>cowwasm.{Name}.commits</c>) and the object
    /// store bucket of snapshots (<c>cowwasm_{Name}</c>). Letters, digits, '-' and '_' only.
    /// </summary>
    public required string Name { get; init; }

    /// <summary>JetStream replicas of the stream and the bucket (1 to 5; 3 survives losing one node of a cluster).</summary>
    public int Replicas { get; init; } = 1;

    /// <summary>Commits the leader may run ahead of the log (default 1,024). When they are all unacknowledged, the next
    /// commit waits for room up to <see cref="RetryTimeout"/>, then is refused.</summary>
    public int MaxPendingCommits { get; init; } = 1024;

    /// <summary>
    /// Bytes of changed pages the leader may run ahead of JetStream (default 256 MiB), counted as whole pages: a commit
    /// that would pass it waits for published commits to free room up to <see cref="RetryTimeout"/>, then is refused.
    /// One commit larger than the budget alone still goes (nothing else is pending then).
    /// </summary>
    public long MaxPendingBytes { get; init; } = 256L << 20;

    /// <summary>
    /// After each snapshot, delete the stream's commits from before the previous snapshot (default true), so the stream
    /// holds at most about two snapshot intervals of commits instead of growing without bound. A follower that falls
    /// behind the previous snapshot then finds a gap: it stops with a <see cref="ReplicationException"/> and starts
    /// again from the newest snapshot.
    /// </summary>
    public bool PurgeStream { get; init; } = true;

    /// <summary>How long a JetStream operation is retried through transient failures (a node failing over, a lost
    /// connection) before it fails (default 30 s): one published message — after which the publisher stops and the
    /// leader refuses further commits — or a follower's opening of the stream, the bucket or the snapshot.</summary>
    public TimeSpan RetryTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Publish a snapshot after this many commits since the last one (default 10,000; 0: only when asked), so that a
    /// new follower replays at most about that many deltas. Each snapshot holds writes off while the pool saves it.
    /// </summary>
    public int SnapshotEvery { get; init; } = 10_000;

    /// <summary>Compress a delta's pages with Brotli when that saves at least 10 % (default true).</summary>
    public bool Compress { get; init; } = true;

    /// <summary>
    /// A write returns only once JetStream stored its commit (with <see cref="Replicas"/> = 3, on a majority): the
    /// publisher's wait is the write's (<see cref="CowWasm.Pool.Durability.Replicated"/>). A commit JetStream never
    /// acknowledges fails its write with a <see cref="ReplicationException"/>, and the publisher refuses later commits.
    /// Default false: commits are published in the background, up to <see cref="MaxPendingCommits"/> behind.
    /// </summary>
    public bool AcknowledgedWrites { get; init; }

    /// <summary>Largest message payload the publisher sends; 0 (default) uses the server's limit less room for headers.</summary>
    public int MaxChunkBytes { get; init; }

    internal string StreamName => $"COWWASM_{Name}";

    internal string Subject => $"cowwasm.{Name}.commits";

    internal string Bucket => $"cowwasm_{Name}";

    internal const string SnapshotObject = "snapshot";

    /// <summary>Whether <see cref="Name"/> is usable.</summary>
    public bool IsValidName() => !string.IsNullOrEmpty(Name) && NamePattern().IsMatch(Name);

    internal void Validate()
    {
        if (!IsValidName())
        {
            throw new ArgumentException($"Replication name '{Name}' must be 1 to 64 letters, digits, '-' or '_'.", nameof(Name));
        }

        if (Replicas is < 1 or > 5)
        {
            throw new ArgumentOutOfRangeException(nameof(Replicas), Replicas, "JetStream keeps 1 to 5 replicas.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingCommits, 1, nameof(MaxPendingCommits));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingBytes, 4096, nameof(MaxPendingBytes));
        ArgumentOutOfRangeException.ThrowIfNegative(SnapshotEvery, nameof(SnapshotEvery));
        if (RetryTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RetryTimeout), RetryTimeout, "The publish timeout must be positive.");
        }

        if (MaxChunkBytes is < 0 or (> 0 and < 128))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxChunkBytes), MaxChunkBytes, "Chunks are at least 128 bytes (or 0 for the server's limit).");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();
}
