using System.Globalization;
using System.Numerics;
using System.Text.Json;
using CowWasm.Prolog;

namespace CowWasm.Server;

/// <summary>
/// Prolog terms as JSON, typed as the driver types them: <c>{"atom":"a"}</c>, <c>{"string":"text"}</c>,
/// <c>{"integer":42}</c> (a JSON string of digits beyond ±2^53, where JSON numbers stop being exact),
/// <c>{"float":1.5}</c> (<c>"inf"</c>, <c>"-inf"</c>, <c>"nan"</c> as strings), <c>{"rational":{"numerator":7,"denominator":3}}</c>,
/// lists as JSON arrays, <c>{"functor":"f","args":[…]}</c>, <c>{"variable":"_G1"}</c>.
/// </summary>
internal static class TermJson
{
    private static readonly BigInteger s_exact = BigInteger.Pow(2, 53);

    public static void Write(Utf8JsonWriter json, PrologTerm term)
    {
        switch (term)
        {
            case PrologAtom atom:
                json.WriteStartObject();
                json.WriteString("atom", atom.Name);
                json.WriteEndObject();
                break;
            case PrologString text:
                json.WriteStartObject();
                json.WriteString("string", text.Value);
                json.WriteEndObject();
                break;
            case PrologInteger integer:
                json.WriteStartObject();
                json.WritePropertyName("integer");
                WriteInteger(json, integer.Value);
                json.WriteEndObject();
                break;
            case PrologFloat number:
                json.WriteStartObject();
                if (double.IsFinite(number.Value))
                {
                    json.WriteNumber("float", number.Value);
                }
                else
                {
                    json.WriteString("float", double.IsNaN(number.Value) ? "nan" : number.Value > 0 ? "inf" : "-inf");
                }

                json.WriteEndObject();
                break;
            case PrologRational rational:
                json.WriteStartObject();
                json.WriteStartObject("rational");
                json.WritePropertyName("numerator");
                WriteInteger(json, rational.Numerator);
                json.WritePropertyName("denominator");
                WriteInteger(json, rational.Denominator);
                json.WriteEndObject();
                json.WriteEndObject();
                break;
            case PrologList list:
                json.WriteStartArray();
                foreach (PrologTerm item in list.Items)
                {
                    Write(json, item);
                }

                json.WriteEndArray();
                break;
            case PrologCompound compound:
                json.WriteStartObject();
                json.WriteString("functor", compound.Functor);
                json.WriteStartArray("args");
                foreach (PrologTerm arg in compound.Args)
                {
                    Write(json, arg);
                }

                json.WriteEndArray();
                json.WriteEndObject();
                break;
            case PrologVariable variable:
                json.WriteStartObject();
                json.WriteString("variable", variable.Name);
                json.WriteEndObject();
                break;
            default:
                throw new NotSupportedException($"No JSON form for {term.GetType().Name}.");
        }
    }

    /// <summary>An answer's bindings as one JSON object, variable → term.</summary>
    public static void WriteBindings(Utf8JsonWriter json, PrologAnswer answer)
    {
        json.WriteStartObject();
        foreach ((string name, PrologTerm value) in answer.Bindings)
        {
            json.WritePropertyName(name);
            Write(json, value);
        }

        json.WriteEndObject();
    }

    private static void WriteInteger(Utf8JsonWriter json, BigInteger value)
    {
        if (BigInteger.Abs(value) <= s_exact)
        {
            json.WriteNumberValue((long)value);
        }
        else
        {
            json.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
        }
    }
}
