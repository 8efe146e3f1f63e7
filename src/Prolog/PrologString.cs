namespace CowWasm.Prolog;

/// <summary>A string (Trealla's default double-quoted text: a list of characters, reported as one string).</summary>
public sealed record PrologString(string Value) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => PrologSyntax.QuoteString(Value);
}
