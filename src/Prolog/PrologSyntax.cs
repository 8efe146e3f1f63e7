using System.Text;

namespace CowWasm.Prolog;

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

    /// <summary>
    /// The text without trailing white space and one final full stop, if it ends in one (<c>0'.</c>, the character
    /// code of a full stop, is not one): what goals and clauses may end with and the guest is handed without.
    /// </summary>
    public static string WithoutFinalFullStop(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string trimmed = text.TrimEnd();
        return trimmed.EndsWith('.') && !trimmed.EndsWith("0'.", StringComparison.Ordinal) ? trimmed[..^1] : trimmed;
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
