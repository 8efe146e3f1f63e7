namespace CowWasm.Prolog;

/// <summary>How a query answered.</summary>
public enum PrologAnswerKind
{
    /// <summary>A solution; <see cref="PrologAnswer.Bindings"/> holds the query's variables.</summary>
    Success,

    /// <summary>No (more) solutions.</summary>
    Failure,

    /// <summary>The query raised an exception (including syntax errors in the goal); see <see cref="PrologAnswer.Error"/>.</summary>
    Error,
}
