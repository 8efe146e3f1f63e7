namespace CowWasm.Prolog;

/// <summary>A variable left unbound in an answer; <see cref="Name"/> is the guest's name for it (e.g. <c>_123</c>).</summary>
public sealed record PrologVariable(string Name) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => Name;
}
