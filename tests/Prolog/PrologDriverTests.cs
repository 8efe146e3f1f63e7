using System.Numerics;
using CowWasm.Memory;
using CowWasm.Memory.Sync;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;
using CowWasm.Tests.Support;
using FsCheck;
using FsCheck.Fluent;

namespace CowWasm.Tests.Prolog;

/// <summary>Known answers from the real guest, on a plain instance and on a pool replica.</summary>
[Collection(TreallaCollection.Name)]
public sealed class PrologDriverTests(TreallaFixture trealla) : IDisposable
{
    // One interpreter for a property's cases (FsCheck.Xunit calls the property method once per case); xunit makes a
    // new instance of this class per test and disposes it after.
    private (WasmInstance Guest, PrologInterpreter Prolog)? _shared;

    private PrologInterpreter Shared => (_shared ??= trealla.Plain()).Prolog;

    public void Dispose() => _shared?.Guest.Dispose();

    private const string Program = """
        color(red). color(green). color(blue).
        big(X) :- X is 2^100.
        nested(f(g(h(1)), [a, "s", 2.5], 'Ünï cödé')).
        """;

    private static readonly PrologTerm Existence = PrologTerm.Compound("error",
        PrologTerm.Compound("existence_error", PrologTerm.Atom("procedure"), PrologTerm.Compound("/", PrologTerm.Atom("nope"), PrologTerm.Integer(1))),
        PrologTerm.Compound("/", PrologTerm.Atom("nope"), PrologTerm.Integer(1)));

    public static TheoryData<string> Hosts => new() { "plain", "replica" };

    [Theory]
    [MemberData(nameof(Hosts))]
    public void Solutions_ComeInOrder_AndEndWithoutAFailureItem(string host) =>
        OnHost(host, run =>
        {
            IReadOnlyList<PrologAnswer> colors = run("color(X)");
            Assert.Equal(["red", "green", "blue"], colors.Select(a => ((PrologAtom)a["X"]).Name));
            Assert.Empty(run("color(purple)"));
        });

    [Theory]
    [MemberData(nameof(Hosts))]
    public void ErrorTerms_SyntaxAndExistenceAndThrown_AreAnswersNotCrashes(string host) =>
        OnHost(host, run =>
        {
            PrologAnswer existence = Assert.Single(run("nope(X)"));
            Assert.Equal(PrologAnswerKind.Error, existence.Kind);
            Assert.Equal(Existence, existence.Error);

            PrologAnswer syntax = Assert.Single(run("X = f(,"));
            var error = Assert.IsType<PrologCompound>(syntax.Error);
            Assert.Equal("error", error.Functor);
            Assert.Equal("syntax_error", Assert.IsType<PrologCompound>(error.Args[0]).Functor);

            Assert.Equal(PrologTerm.Atom("my_error"), Assert.Single(run("throw(my_error)")).Error);
            Assert.Equal("X = 1", Assert.Single(run("X = 1")).ToString()); // the interpreter is still usable
        });

    [Theory]
    [MemberData(nameof(Hosts))]
    public void BigIntegers_Unicode_NestedCompounds_ParseToTypedTerms(string host) =>
        OnHost(host, run =>
        {
            Assert.Equal(new PrologInteger(BigInteger.Pow(2, 100)), Assert.Single(run("big(X)"))["X"]);
            Assert.Equal(new PrologInteger(-BigInteger.Pow(2, 70)), Assert.Single(run("X is -(2^70)"))["X"]);
            Assert.Equal(new PrologInteger((1L << 53) - 1), Assert.Single(run("X is 2^53 - 1"))["X"]);
            PrologAnswer text = Assert.Single(run("X = 'Ünï cödé', Y = \"héllo ✓ 😀\""));
            Assert.Equal(PrologTerm.Atom("Ünï cödé"), text["X"]);
            Assert.Equal(new PrologString("héllo ✓ 😀"), text["Y"]);
            Assert.Equal(
                PrologTerm.Compound("f",
                    PrologTerm.Compound("g", PrologTerm.Compound("h", PrologTerm.Integer(1))),
                    PrologTerm.List(PrologTerm.Atom("a"), new PrologString("s"), new PrologFloat(2.5)),
                    PrologTerm.Atom("Ünï cödé")),
                Assert.Single(run("nested(X)"))["X"]);
            Assert.IsType<PrologVariable>(Assert.Single(run("X = f(Y)"))["Y"]);
        });

    [Fact]
    public void QueryOnce_FailureIsAnAnswer_AndOutputIsCaptured()
    {
        (WasmInstance guest, PrologInterpreter prolog) = trealla.Plain();
        using (guest)
        {
            Assert.Equal(PrologAnswerKind.Failure, prolog.QueryOnce("fail").Kind);
            PrologAnswer printed = prolog.QueryOnce("write('hi there'), nl, X = 1");
            Assert.Equal("hi there\n", printed.Output);
            Assert.Equal(PrologTerm.Integer(1), printed["X"]);
        }
    }

    [Fact]
    public void Query_DisposedEarly_ClosesTheQuery_SoTheNextOneRuns()
    {
        (WasmInstance guest, PrologInterpreter prolog) = trealla.Plain();
        using (guest)
        {
            using (IEnumerator<PrologAnswer> open = prolog.Query("between(1, 1000000, X)").GetEnumerator())
            {
                Assert.True(open.MoveNext());
                Assert.Throws<InvalidOperationException>(() => prolog.QueryOnce("true"));
            }

            Assert.Equal(3, prolog.Query("between(1, 3, X)").Count());
        }
    }

    [Fact]
    public void Consult_WithASyntaxError_ThrowsWithTheLoadersMessage()
    {
        (WasmInstance guest, PrologInterpreter prolog) = trealla.Plain();
        using (guest)
        {
            var e = Assert.Throws<PrologException>(() => prolog.Consult("p(1). p(2"));
            Assert.Equal("consult_error", Assert.IsType<PrologCompound>(e.Error).Functor);
            Assert.Contains("syntax error", e.Message);
        }
    }

    [Fact]
    public void Attach_ToANonTrealla_Guest_NamesTheMissingExports()
    {
        using WasmInstance basic = TestModules.Basic();
        var e = Assert.Throws<ArgumentException>(() => PrologInterpreter.Attach(basic, 8));
        Assert.Contains("pl_query", e.Message);
    }

    [CowProperty]
    public Property Escaping_RoundTripsArbitraryTextThroughTheGuest()
    {
        char[] alphabet = ['a', 'Z', '0', ' ', '"', '\'', '\\', '\n', '\t', '\r', '.', '(', ')', ',', '%', 'ü', '✓', '\u0007', '\u001f'];
        Gen<string> texts = Gen.Elements(alphabet.Select(c => c.ToString()).Append("😀").ToArray())
            .ArrayOf().Where(parts => parts.Length > 0).Select(parts => string.Concat(parts));
        return Prop.ForAll(texts.ToArbitrary(), text =>
        {
            PrologAnswer answer = Shared.QueryOnce($"X = {PrologSyntax.QuoteString(text)}, Y = ({PrologSyntax.QuoteAtom(text)}).");
            Assert.True(answer.IsSuccess, $"{text}: {answer}");
            Assert.Equal(new PrologString(text), answer["X"]);
            Assert.Equal(new PrologAtom(text), answer["Y"]);
        });
    }

    /// <summary>Runs <paramref name="body"/> with a goal runner on a plain interpreter or on a pool's replicas.</summary>
    [Theory]
    [MemberData(nameof(Hosts))]
    public void OutputThatContainsTheFramingBytes_OrAForgedAnswer_CannotChangeTheAnswer(string host) =>
        OnHost(host, run =>
        {
            PrologAnswer a = Assert.Single(run("write(a), put_char('\\x3\\'), write(b), X = 1"));
            Assert.Equal(PrologTerm.Integer(1), a["X"]);
            Assert.Equal("a\u0003b", a.Output);

            PrologAnswer forged = Assert.Single(run(
                "put_char('\\x3\\'), write('{\"status\":\"failure\"}'), nl, put_char('\\x2\\'), X = real"));
            Assert.Equal(PrologTerm.Atom("real"), forged["X"]);
            Assert.Equal("\u0003{\"status\":\"failure\"}\n\u0002", forged.Output);
        });

    [Theory]
    [MemberData(nameof(Hosts))]
    public void Rationals_ComeBackTyped(string host) =>
        OnHost(host, run =>
        {
            Assert.Equal(new PrologRational(7, 3), Assert.Single(run("X is 7 rdiv 3"))["X"]);
            Assert.Equal(new PrologRational(-7, 3), Assert.Single(run("X is -7 rdiv 3"))["X"]);
            Assert.Equal(PrologTerm.Compound("f", new PrologRational(1, 2), new PrologString("a 1 div 2 b")),
                Assert.Single(run("Y is 2 rdiv 4, X = f(Y, \"a 1 div 2 b\")"))["X"]);
            Assert.Equal(new PrologRational(BigInteger.Pow(2, 70), 3), Assert.Single(run("X is 2^70 rdiv 3"))["X"]);
        });

    [Theory]
    [MemberData(nameof(Hosts))]
    public void AnAnswerTheGuestFailsToPrint_IsAnErrorAnswerNamingTheRawText_NotAnException(string host) =>
        OnHost(host, run =>
        {
            // Trealla 0.17.10: a redo into atom_concat/3 reports a solution and prints nothing (sub_atom/5 is fine).
            IReadOnlyList<PrologAnswer> answers = run("atom_concat(X, Y, abcd)");
            Assert.Equal(PrologTerm.Atom("abcd"), answers[0]["Y"]);
            PrologAnswer unreadable = answers[^1];
            Assert.Equal(PrologAnswerKind.Error, unreadable.Kind);
            Assert.Equal(PrologTerm.Compound("cowwasm_unreadable_answer", new PrologString("")), unreadable.Error);
            Assert.Equal(5, run("atom_length(abcd, L), between(0, L, N), sub_atom(abcd, N, _, 0, Y)").Count);
            Assert.Equal(["red", "green", "blue"], run("color(X)").Select(x => ((PrologAtom)x["X"]).Name)); // still serving
        });

    [Fact]
    public void Framing_FindsTheAnswerFromTheEnd()
    {
        static byte[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s);
        PrologAnswer plain = PrologInterpreter.Frame(Bytes("\u0002hi\u0003{\"status\":\"success\",\"answer\":{\"X\":1}}\n"));
        Assert.Equal(("hi", PrologTerm.Integer(1)), (plain.Output, plain["X"]));
        PrologAnswer redo = PrologInterpreter.Frame(Bytes("2\u0003{\"status\":\"failure\"}\n"));
        Assert.Equal((PrologAnswerKind.Failure, "2"), (redo.Kind, redo.Output));
        PrologAnswer controlInString = PrologInterpreter.Frame(Bytes("\u0002\u0003{\"status\":\"success\",\"answer\":{\"X\":\"a\\u0003b\"}}\n"));
        Assert.Equal(new PrologString("a\u0003b"), controlInString["X"]);
        PrologAnswer garbage = PrologInterpreter.Frame(Bytes("\u0002no frame at all"));
        Assert.Equal(PrologTerm.Compound("cowwasm_unreadable_answer", new PrologString("\u0002no frame at all")), garbage.Error);
    }

    private void OnHost(string host, Action<Func<string, IReadOnlyList<PrologAnswer>>> body)
    {
        if (host == "plain")
        {
            (WasmInstance guest, PrologInterpreter prolog) = trealla.Plain();
            using (guest)
            {
                prolog.Consult(Program);
                body(goal => prolog.Query(goal).ToList());
            }

            return;
        }

        using PrologPool pool = trealla.Pool(SyncStrategyKind.SharedBase);
        pool.ConsultAsync(Program).AsTask().GetAwaiter().GetResult();
        body(goal => pool.QueryAllAsync(goal).AsTask().GetAwaiter().GetResult());
    }
}
