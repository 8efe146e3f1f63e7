using Spectre.Console;

namespace CowWasm.Bench.Reporting;

/// <summary>
/// Progress lines that fit the terminal: Spectre.Console's idea of its width (80 when the output is piped or
/// redirected), so `./run.sh > log` stays readable at 80 columns. Colours are Spectre's business (none when piped, none
/// with NO_COLOR); these lines carry none.
/// </summary>
internal static class TerminalText
{
    public static int Width => AnsiConsole.Profile.Width;

    /// <summary>
    /// The parts on one line, two spaces apart, when they fit; else the first part on its line and the others packed
    /// after it on lines indented by four spaces.
    /// </summary>
    public static void WriteFolded(params string[] parts) =>
        Console.Out.Write(Fold(Width, parts));

    internal static string Fold(int width, IReadOnlyList<string> parts)
    {
        string single = string.Join("  ", parts);
        if (single.Length <= width || parts.Count == 1)
        {
            return single + Environment.NewLine;
        }

        var text = new System.Text.StringBuilder(parts[0]);
        string line = "";
        foreach (string part in parts.Skip(1))
        {
            string trimmed = part.Trim();
            if (line.Length > 0 && 4 + line.Length + 2 + trimmed.Length > width)
            {
                text.Append(Environment.NewLine).Append("    ").Append(line);
                line = "";
            }

            line = line.Length == 0 ? trimmed : line + "  " + trimmed;
        }

        return text.Append(Environment.NewLine).Append("    ").Append(line).Append(Environment.NewLine).ToString();
    }

    /// <summary>Where the results went and their headline keys (the file has the tables).</summary>
    public static void WriteSummary(string path, IEnumerable<KeyValuePair<string, object?>> keys)
    {
        Console.WriteLine($"wrote {path}");
        foreach ((string key, object? value) in keys)
        {
            Console.WriteLine(System.FormattableString.Invariant($"  {key} = {value}"));
        }
    }
}
