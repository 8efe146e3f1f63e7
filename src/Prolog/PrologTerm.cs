using System.Numerics;

namespace CowWasm.Prolog;

/// <summary>
/// A Prolog term as an answer binds it. Immutable, with structural equality (lists and arguments compare
/// element by element), so answers from a replica and from a plain interpreter can be compared directly.
/// </summary>
public abstract record PrologTerm
{
    private protected PrologTerm()
    {
    }

    /// <summary>The term in Prolog syntax (quoted where needed); for messages and logs.</summary>
    public abstract override string ToString();

    /// <summary>Shorthand: the atom <paramref name="name"/>.</summary>
    public static PrologAtom Atom(string name) => new(name);

    /// <summary>Shorthand: the integer <paramref name="value"/>.</summary>
    public static PrologInteger Integer(BigInteger value) => new(value);

    /// <summary>Shorthand: the compound <paramref name="functor"/>(<paramref name="args"/>).</summary>
    public static PrologCompound Compound(string functor, params PrologTerm[] args) => new(functor, args);

    /// <summary>Shorthand: the list of <paramref name="items"/>.</summary>
    public static PrologList List(params PrologTerm[] items) => new(items);
}
