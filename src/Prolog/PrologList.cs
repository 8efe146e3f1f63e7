namespace CowWasm.Prolog;

/// <summary>A proper list.</summary>
public sealed record PrologList(IReadOnlyList<PrologTerm> Items) : PrologTerm
{
    /// <inheritdoc/>
    public bool Equals(PrologList? other) => other is not null && Items.SequenceEqual(other.Items);

    /// <inheritdoc/>
    public override int GetHashCode() => PrologSyntax.HashAll(Items);

    /// <inheritdoc/>
    public override string ToString() => "[" + string.Join(",", Items) + "]";
}
