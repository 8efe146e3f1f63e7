namespace CowWasm.Prolog;

/// <summary>A Prolog exception surfaced to C#: a write whose goal raised, or <see cref="PrologAnswer.ThrowIfError"/>.</summary>
public sealed class PrologException : Exception
{
    /// <summary>Creates the exception for <paramref name="error"/>.</summary>
    public PrologException(PrologTerm error)
        : base($"Prolog error: {error}")
    {
        Error = error;
    }

    /// <summary>The error term the goal raised.</summary>
    public PrologTerm Error { get; }
}
