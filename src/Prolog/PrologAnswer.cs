using System.Globalization;
using System.Numerics;
using System.Text.Json;

namespace CowWasm.Prolog;

/// <summary>One answer of a query: a solution with bindings, a failure, or an error term.</summary>
public sealed class PrologAnswer
{
    private static readonly IReadOnlyDictionary<string, PrologTerm> s_noBindings = new Dictionary<string, PrologTerm>();

    private PrologAnswer(PrologAnswerKind kind, IReadOnlyDictionary<string, PrologTerm> bindings, PrologTerm? error, string output)
    {
        Kind = kind;
        Bindings = bindings;
        Error = error;
        Output = output;
    }

    /// <summary>Success, failure or error.</summary>
    public PrologAnswerKind Kind { get; }

    /// <summary>Variable name → value for a success (named variables only; empty otherwise).</summary>
    public IReadOnlyDictionary<string, PrologTerm> Bindings { get; }

    /// <summary>The error term (e.g. <c>error(existence_error(procedure,foo/0),foo/0)</c>) for an error answer.</summary>
    public PrologTerm? Error { get; }

    /// <summary>What the goal printed to the current output while producing this answer.</summary>
    public string Output { get; }

    /// <summary>
    /// The bytes the guest produced for this answer (its JSON line and the goal's output): what it cost to copy out. 0
    /// for answers not read from a guest.
    /// </summary>
    public int CapturedBytes { get; internal set; }

    /// <summary>True for <see cref="PrologAnswerKind.Success"/>.</summary>
    public bool IsSuccess => Kind == PrologAnswerKind.Success;

    /// <summary>The binding of <paramref name="variable"/>.</summary>
    /// <exception cref="KeyNotFoundException">Not a success, or the variable is not bound in it.</exception>
    public PrologTerm this[string variable] =>
        Bindings.TryGetValue(variable, out PrologTerm? value)
            ? value
            : throw new KeyNotFoundException($"The answer ({this}) has no binding for {variable}.");

    /// <summary>A failure answer.</summary>
    public static PrologAnswer Failure(string output = "") => new(PrologAnswerKind.Failure, s_noBindings, null, output);

    /// <summary>A success answer.</summary>
    public static PrologAnswer Success(IReadOnlyDictionary<string, PrologTerm> bindings, string output = "") =>
        new(PrologAnswerKind.Success, bindings, null, output);

    /// <summary>An error answer.</summary>
    public static PrologAnswer Raised(PrologTerm error, string output = "") => new(PrologAnswerKind.Error, s_noBindings, error, output);

    /// <summary>Throws <see cref="PrologException"/> if this is an error answer; returns it otherwise.</summary>
    public PrologAnswer ThrowIfError() => Kind == PrologAnswerKind.Error ? throw new PrologException(Error!) : this;

    /// <summary>Structural comparison of kind, bindings and error (not output).</summary>
    public bool SameAs(PrologAnswer other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Kind == other.Kind && Equals(Error, other.Error) && Bindings.Count == other.Bindings.Count &&
               Bindings.All(b => other.Bindings.TryGetValue(b.Key, out PrologTerm? v) && b.Value.Equals(v));
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        PrologAnswerKind.Success when Bindings.Count == 0 => "true",
        PrologAnswerKind.Success => string.Join(", ", Bindings.Select(b => $"{b.Key} = {b.Value}")),
        PrologAnswerKind.Failure => "false",
        _ => $"throw({Error})",
    };

    /// <summary>
    /// Parses one answer line of Trealla's <c>js_ask/1</c>:
    /// <c>{"status":"success","answer":{…}}</c>, <c>{"status":"failure"}</c> or <c>{"status":"error","error":…}</c>.
    /// </summary>
    /// <exception cref="FormatException">The text is not such an answer.</exception>
    public static PrologAnswer Parse(string json, string output = "")
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using JsonDocument document = JsonDocument.Parse(QuoteRationals(json));
            JsonElement root = document.RootElement;
            string? status = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("status", out JsonElement s)
                ? s.GetString()
                : null;
            switch (status)
            {
                case "success":
                    var bindings = new Dictionary<string, PrologTerm>();
                    if (root.TryGetProperty("answer", out JsonElement answer))
                    {
                        foreach (JsonProperty binding in answer.EnumerateObject())
                        {
                            bindings[binding.Name] = ParseTerm(binding.Value);
                        }
                    }

                    return Success(bindings, output);
                case "failure":
                    return Failure(output);
                case "error":
                    return Raised(root.TryGetProperty("error", out JsonElement error)
                        ? ParseTerm(error)
                        : throw new FormatException("an error answer without an \"error\" term"), output);
                default:
                    throw new FormatException($"unknown answer status '{status}'");
            }
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new FormatException($"Not a Trealla answer ({e.Message}): {Clip(json)}", e);
        }
    }

    /// <summary>Parses one term in Trealla's JSON term encoding.</summary>
    /// <exception cref="FormatException">An encoding this parser does not know.</exception>
    public static PrologTerm ParseTerm(JsonElement json)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.Number:
                string raw = json.GetRawText();
                return raw.AsSpan().IndexOfAny(".eE") >= 0
                    ? new PrologFloat(json.GetDouble())
                    : new PrologInteger(BigInteger.Parse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
            case JsonValueKind.String:
                return new PrologString(json.GetString()!);
            case JsonValueKind.Array:
                return new PrologList(json.EnumerateArray().Select(ParseTerm).ToArray());
            case JsonValueKind.Object:
                if (json.TryGetProperty("functor", out JsonElement functor))
                {
                    string name = functor.ValueKind switch
                    {
                        JsonValueKind.String => functor.GetString()!,
                        JsonValueKind.True => "true", // Trealla writes the atoms true and false as JSON literals inside terms
                        JsonValueKind.False => "false",
                        _ => throw new FormatException($"a functor that is not a name: {functor.GetRawText()}"),
                    };
                    return json.TryGetProperty("args", out JsonElement args) && args.GetArrayLength() > 0
                        ? new PrologCompound(name, args.EnumerateArray().Select(ParseTerm).ToArray())
                        : new PrologAtom(name);
                }

                if (json.TryGetProperty("number", out JsonElement number))
                {
                    // Outside ±(2^53 − 1) the writer quotes the number; a rational comes as "N div D" then.
                    string text = number.GetString() ?? "";
                    int div = text.IndexOf(" div ", StringComparison.Ordinal);
                    return div < 0
                        ? new PrologInteger(BigInteger.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture))
                        : new PrologRational(
                            BigInteger.Parse(text.AsSpan(0, div), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
                            BigInteger.Parse(text.AsSpan(div + 5), NumberStyles.None, CultureInfo.InvariantCulture));
                }

                if (json.TryGetProperty("var", out JsonElement variable))
                {
                    return new PrologVariable(variable.GetString() ?? "_");
                }

                if (json.TryGetProperty(RationalKey, out JsonElement rational) && rational.GetArrayLength() == 2)
                {
                    return new PrologRational(
                        BigInteger.Parse(rational[0].GetString() ?? "", NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
                        BigInteger.Parse(rational[1].GetString() ?? "", NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
                }

                break;
        }

        throw new FormatException($"unknown term encoding {Clip(json.GetRawText())}");
    }

    private static string Clip(string text) => text.Length <= 200 ? text : text[..200] + "…";

    /// <summary>A key no Trealla encoding uses, for rationals rewritten by <see cref="QuoteRationals"/>.</summary>
    private const string RationalKey = "cowwasm:rational";

    /// <summary>
    /// Trealla's JSON writer prints a rational with <c>write/2</c>, which gives <c>7 div 3</c> — not JSON. Outside
    /// string literals (where JSON can have no bare words), rewrites each <c>-?N div D</c> to
    /// <c>{"cowwasm:rational":["N","D"]}</c>, which <see cref="ParseTerm"/> reads as a <see cref="PrologRational"/>.
    /// </summary>
    private static string QuoteRationals(string json)
    {
        if (!json.Contains(" div ", StringComparison.Ordinal))
        {
            return json;
        }

        var result = new System.Text.StringBuilder(json.Length + 32);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (inString)
            {
                result.Append(c);
                if (c == '\\' && i + 1 < json.Length)
                {
                    result.Append(json[++i]);
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (c == '"')
            {
                inString = true;
                result.Append(c);
                continue;
            }

            if ((c == '-' || char.IsAsciiDigit(c)) && (i == 0 || !char.IsAsciiDigit(json[i - 1])) &&
                RationalToken.Match(json, i) is { Success: true } m)
            {
                result.Append(CultureInfo.InvariantCulture, $"{{\"{RationalKey}\":[\"{m.Groups[1].Value}\",\"{m.Groups[2].Value}\"]}}");
                i += m.Length - 1;
                continue;
            }

            result.Append(c);
        }

        return result.ToString();
    }

    private static readonly System.Text.RegularExpressions.Regex RationalToken =
        new(@"\G(-?[0-9]+) div ([0-9]+)", System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
}
