namespace CowWasm.Prolog;

/// <summary>An atom (including <c>[]</c> when the guest reports it as an atom).</summary>
public sealed record PrologAtom(string Name) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => PrologSyntax.QuoteAtom(Name);
}
