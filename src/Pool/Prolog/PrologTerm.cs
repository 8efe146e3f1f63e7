using System.Globalization;
using System.Numerics;
using System.Text;

namespace CowWasm.Pool.Prolog;

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

/// <summary>An integer of any size (Trealla has unbounded integers).</summary>
public sealed record PrologInteger(BigInteger Value) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

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

/// <summary>An atom (including <c>[]</c> when the guest reports it as an atom).</summary>
public sealed record PrologAtom(string Name) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => PrologSyntax.QuoteAtom(Name);
}

/// <summary>A string (Trealla's default double-quoted text: a list of characters, reported as one string).</summary>
public sealed record PrologString(string Value) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => PrologSyntax.QuoteString(Value);
}

/// <summary>A proper list.</summary>
public sealed record PrologList(IReadOnlyList<PrologTerm> Items) : PrologTerm
{
    /// <inheritdoc/>
    public bool Equals(PrologList? other) => other is not null && Items.SequenceEqual(other.Items);

    /// <inheritdoc/>
    public override int GetHashCode() => PrologSyntax.HashAll(Items);

    /// <inheritdoc/>
    public override string ToString() => "[" + string.Join(",", Items) + "]";
}

/// <summary>A compound term <c>Functor(Args…)</c>.</summary>
public sealed record PrologCompound(string Functor, IReadOnlyList<PrologTerm> Args) : PrologTerm
{
    /// <summary>The number of arguments.</summary>
    public int Arity => Args.Count;

    /// <inheritdoc/>
    public bool Equals(PrologCompound? other) =>
        other is not null && Functor == other.Functor && Args.SequenceEqual(other.Args);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Functor, PrologSyntax.HashAll(Args));

    /// <inheritdoc/>
    public override string ToString() => PrologSyntax.QuoteAtom(Functor) + "(" + string.Join(",", Args) + ")";
}

/// <summary>A variable left unbound in an answer; <see cref="Name"/> is the guest's name for it (e.g. <c>_123</c>).</summary>
public sealed record PrologVariable(string Name) : PrologTerm
{
    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Prolog text helpers: quoting atoms and strings, escaping text for a double-quoted literal.</summary>
public static class PrologSyntax
{
    /// <summary>
    /// Escapes <paramref name="text"/> for the inside of a double-quoted Prolog literal: backslash, double quote,
    /// and every control character (as <c>\n</c>, <c>\t</c>, … or <c>\xHEX\</c>). Other characters, including all
    /// of Unicode, pass through as they are (the guest reads UTF-8).
    /// </summary>
    public static string EscapeDoubleQuoted(string text) => Escape(text, '"');

    /// <summary>
    /// The atom in Prolog syntax: bare if it is a plain lower-case identifier, else single-quoted. An atom that is
    /// an operator (<c>-</c>, <c>\</c>, <c>dynamic</c>, …) stays an operator when quoted: as an operand, put it in
    /// parentheses, e.g. <c>X = ('\\')</c>.
    /// </summary>
    public static string QuoteAtom(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name is "[]" or "{}" or "!" or ";" or ",")
        {
            return name == "," ? "','" : name;
        }

        bool bare = name.Length > 0 && char.IsLower(name[0]) && name.All(c => char.IsLetterOrDigit(c) || c == '_');
        return bare ? name : "'" + Escape(name, '\'') + "'";
    }

    /// <summary>The string in double-quoted Prolog syntax.</summary>
    public static string QuoteString(string value) => "\"" + Escape(value, '"') + "\"";

    internal static int HashAll(IReadOnlyList<PrologTerm> terms)
    {
        var hash = new HashCode();
        foreach (PrologTerm term in terms)
        {
            hash.Add(term);
        }

        return hash.ToHashCode();
    }

    private static string Escape(string text, char quote)
    {
        ArgumentNullException.ThrowIfNull(text);
        StringBuilder? builder = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            string? escaped = c switch
            {
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                '\a' => "\\a",
                '\b' => "\\b",
                '\f' => "\\f",
                '\v' => "\\v",
                '\0' => "\\x0\\",
                _ when c == quote => "\\" + quote,
                _ when char.IsControl(c) => $"\\x{(int)c:x}\\",
                _ => null,
            };
            if (escaped is null)
            {
                builder?.Append(c);
                continue;
            }

            builder ??= new StringBuilder(text.Length + 8).Append(text, 0, i);
            builder.Append(escaped);
        }

        return builder?.ToString() ?? text;
    }
}
