using System.Globalization;
using CowWasm.Pool;
using NATS.Client.Core;

namespace CowWasm.Replication;

/// <summary>
/// The headers on each message of a delta: which commit, which chunk of how many, the publisher's epoch (a random id
/// per <see cref="CommitPublisher"/>, so a commit a crashed leader left half-published is told apart from its redo), and
/// the commit's identity and its parent's (so a publisher starting on a stream learns the identity of the last whole
/// commit from the last message, also when that is a chunk of a commit left half-published; followers check the parent the
/// delta itself carries).
/// </summary>
internal readonly record struct ChunkHeaders(long Sequence, int Index, int Count, string Epoch, CommitId Id, CommitId Parent)
{
    public const string CommitHeader = "Cw-Commit";
    public const string ChunkHeader = "Cw-Chunk";
    public const string EpochHeader = "Cw-Epoch";
    public const string IdHeader = "Cw-Id";
    public const string ParentHeader = "Cw-Parent";

    public bool IsLast => Index == Count - 1;

    /// <summary>The message id JetStream deduplicates retries by.</summary>
    public string MessageId => $"{Epoch}.{Sequence}.{Index}";

    public NatsHeaders ToNats() => new()
    {
        [CommitHeader] = Sequence.ToString(CultureInfo.InvariantCulture),
        [ChunkHeader] = $"{Index}/{Count}",
        [EpochHeader] = Epoch,
        [IdHeader] = Id.ToHex(),
        [ParentHeader] = Parent.ToHex(),
    };

    /// <exception cref="ReplicationException">Missing or malformed: not a message of a publisher.</exception>
    public static ChunkHeaders Parse(NatsHeaders? headers, ulong streamSequence)
    {
        if (headers is not null
            && headers.TryGetValue(CommitHeader, out var commit) && long.TryParse(commit.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out long sequence)
            && headers.TryGetValue(ChunkHeader, out var chunk) && chunk.ToString().Split('/') is [var i, var n]
            && int.TryParse(i, NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            && int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            && headers.TryGetValue(EpochHeader, out var epoch) && epoch.ToString() is { Length: > 0 and <= 64 } epochText
            && sequence >= 1 && count >= 1 && index < count)
        {
            return new ChunkHeaders(sequence, index, count, epochText, IdOf(headers, IdHeader), IdOf(headers, ParentHeader));
        }

        throw new ReplicationException(
            $"Stream message {streamSequence} is not a chunk of a commit (its {CommitHeader}, {ChunkHeader} or {EpochHeader} header is missing or malformed).");
    }

    /// <summary>An identity header; a message without one (from a publisher before the hash chain) has an unknown one.</summary>
    private static CommitId IdOf(NatsHeaders headers, string name) =>
        headers.TryGetValue(name, out var text) && text.ToString() is { Length: 2 * CommitId.Size } hex && hex.All(char.IsAsciiHexDigit)
            ? CommitId.ParseHex(hex)
            : CommitId.Unknown;
}
