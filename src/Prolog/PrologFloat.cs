using System.Globalization;

namespace CowWasm.Prolog;

/// <summary>A float.</summary>
public sealed record PrologFloat(double Value) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString()
    {
        string text = Value.ToString("R", CultureInfo.InvariantCulture);
        return double.IsFinite(Value) && !text.Contains('.', StringComparison.Ordinal) && !text.Contains('E', StringComparison.Ordinal)
            ? text + ".0"
            : text;
    }
}
