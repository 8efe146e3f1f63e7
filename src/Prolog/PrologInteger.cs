using System.Globalization;
using System.Numerics;

namespace CowWasm.Prolog;

/// <summary>An integer of any size (Trealla has unbounded integers).</summary>
public sealed record PrologInteger(BigInteger Value) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
