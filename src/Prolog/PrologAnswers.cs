using System.Collections;

namespace CowWasm.Prolog;

/// <summary>
/// The answers a query collected, in order (an error, when the goal raised, is the last), and whether collecting stopped
/// at the cap the caller gave (<see cref="LimitReached"/>): a capped list never passes for all of a goal's solutions.
/// </summary>
public sealed class PrologAnswers : IReadOnlyList<PrologAnswer>
{
    private readonly List<PrologAnswer> _answers;

    internal PrologAnswers(List<PrologAnswer> answers, int cap)
    {
        _answers = answers;
        LimitReached = answers.Count == cap && answers[^1].IsSuccess;
    }

    /// <summary>
    /// The query stopped at the cap with a solution: the goal may have more solutions (it was not asked for the next one).
    /// </summary>
    public bool LimitReached { get; }

    /// <inheritdoc/>
    public int Count => _answers.Count;

    /// <inheritdoc/>
    public PrologAnswer this[int index] => _answers[index];

    /// <inheritdoc/>
    public IEnumerator<PrologAnswer> GetEnumerator() => _answers.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
