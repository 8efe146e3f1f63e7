using System.Globalization;
using System.Numerics;

namespace CowWasm.Prolog;

/// <summary>
/// A rational number (Trealla's <c>rdiv</c>, e.g. <c>X is 7 rdiv 3</c>), in lowest terms with a positive denominator,
/// as Trealla keeps it. Trealla writes it as <c>7 div 3</c>; that is also what <see cref="ToString"/> gives.
/// </summary>
public sealed record PrologRational(BigInteger Numerator, BigInteger Denominator) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Numerator} div {Denominator}");
}
