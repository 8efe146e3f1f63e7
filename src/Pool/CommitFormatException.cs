namespace CowWasm.Pool;

/// <summary>An encoded commit (<see cref="CommitCodec"/>) is damaged, truncated, of another format version or of another module.</summary>
public sealed class CommitFormatException : Exception
{
    /// <summary>A delta too short or without the magic to name its commit.</summary>
    public CommitFormatException(string message)
        : base(message)
    {
    }

    /// <summary>What is wrong with the delta of commit <paramref name="sequence"/>.</summary>
    public CommitFormatException(long sequence, string message)
        : base(message) => Sequence = sequence;

    /// <summary>The commit the delta claims to be, when it could be read.</summary>
    public long? Sequence { get; }
}
