using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Wasmtime;

namespace CowWasm.Tests.Prolog;

/// <summary>
/// The module rewrite changes no answer: Trealla's answers to a set of programs are the same on the native backend, on
/// Wasmtime with the rewrite and its store barrier, and on Wasmtime with the rewrite but no barrier.
/// </summary>
[Collection(TreallaCollection.Name)]
public sealed class BackendAgreementTests(TreallaFixture trealla)
{
    private const string Program = """
        queens(N, Qs) :- numlist(1, N, Ns), place(Ns, [], Qs).
        place([], Qs, Qs).
        place(Unplaced, Safe, Qs) :- select(Q, Unplaced, Rest), \+ attacks(Q, Safe, 1), place(Rest, [Q|Safe], Qs).
        attacks(Q, [Q1|_], D) :- Q =:= Q1 + D.
        attacks(Q, [Q1|_], D) :- Q =:= Q1 - D.
        attacks(Q, [_|Qs], D) :- D1 is D + 1, attacks(Q, Qs, D1).
        fib(0, 0). fib(1, 1).
        fib(N, F) :- N > 1, A is N - 1, B is N - 2, fib(A, FA), fib(B, FB), F is FA + FB.
        test(123).
        """;

    public static TheoryData<string> Goals =>
    [
        "test(X)",
        "findall(Q, queens(6, Q), L), length(L, N)",
        "fib(18, F)",
        "atom_codes(A, \"hello\"), atom_length(A, N), sub_atom(A, 1, 3, _, S)",
        "length(L, 3), L = [a|_], msort([c, b, a, b], M)",
        "X is 2 ** 100, Y is X mod 1000007",
        "catch(atom_length(1, _), E, true)",
        "numlist(1, 20000, L), sum_list(L, S), last(L, Z)",
        "atom_to_term('foo(X, Y, X)', T, B)",
        "nope(1)",
    ];

    [Theory]
    [MemberData(nameof(Goals))]
    public async Task AGoal_HasTheSameAnswers_OnBothBackends_WithAndWithoutTheBarrier(string goal)
    {
        byte[] wasm = await File.ReadAllBytesAsync(await TreallaPackage.FetchAsync());
        using WasmtimeModule unbarriered = WasmtimeModule.Load(wasm, new WasmtimeOptions { StoreBarrier = false });
        Assert.False(unbarriered.MarksStores);
        Assert.True(trealla.Wasmtime.MarksStores);
        string[] answers = [.. new IGuestModule[] { trealla.Module, trealla.Wasmtime, unbarriered }.Select(module => Answers(module, goal))];
        Assert.Equal(answers[0], answers[1]);
        Assert.Equal(answers[0], answers[2]);
    }

    private static string Answers(IGuestModule module, string goal)
    {
        using IGuestInstance guest = module.Instantiate(TreallaGuest.CreateLinker(module.Info), TreallaGuest.DefaultInstanceOptions);
        PrologInterpreter prolog = PrologInterpreter.Initialize(guest);
        prolog.Consult(Program);
        return string.Join("\n", prolog.Query(goal).Take(50).Select(a => a.ToString()));
    }
}
