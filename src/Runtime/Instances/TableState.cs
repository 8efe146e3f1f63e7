namespace CowWasm.Runtime;

/// <summary>
/// What guest code can change besides memory and globals, captured from an instance: every table's length and
/// elements, and which passive data and element segments were dropped. Restores into any instance of the same module
/// (<see cref="IGuestInstance.RestoreTables"/>); function references to the instance itself are rebound to the
/// instance it is restored into.
/// </summary>
/// <remarks>Immutable; valid only in the process that captured it (elements are native function addresses), so it is
/// not part of snapshot files.</remarks>
public sealed class TableState : IEquatable<TableState>
{
    private readonly byte[] _bytes;

    internal TableState(object module, byte[] bytes)
    {
        Module = module;
        _bytes = bytes;
    }

    /// <summary>The module it was captured from (compared by reference on restore).</summary>
    internal object Module { get; }

    internal ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The state's size in bytes.</summary>
    public int Length => _bytes.Length;

    /// <summary>Whether both hold the same tables and dropped segments of the same module.</summary>
    public bool Equals(TableState? other) =>
        other is not null && ReferenceEquals(Module, other.Module) && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as TableState);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Module);
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }
}
