namespace CowWasm.Prolog;

/// <summary>A compound term <c>Functor(Args…)</c>.</summary>
public sealed record PrologCompound(string Functor, IReadOnlyList<PrologTerm> Args) : PrologTerm
{
    /// <summary>The number of arguments.</summary>
    public int Arity => Args.Count;

    /// <inheritdoc/>
    public bool Equals(PrologCompound? other) =>
        other is not null && Functor == other.Functor && Args.SequenceEqual(other.Args);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Functor, PrologSyntax.HashAll(Args));

    /// <inheritdoc/>
    public override string ToString() => PrologSyntax.QuoteAtom(Functor) + "(" + string.Join(",", Args) + ")";
}
