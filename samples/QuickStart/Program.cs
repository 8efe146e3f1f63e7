// A PrologPool from the CowWasm packages: load Trealla on Wasmtime, consult, write, read on the replicas.
// Exit code 0 when every answer is the expected one.
using CowWasm.Prolog;
using CowWasm.Runtime;

using IGuestModule trealla = await TreallaGuest.LoadAsync(GuestRuntime.Wasmtime, new Progress<string>(Console.Error.WriteLine));
await using PrologPool pool = PrologPool.Create(trealla, PrologPool.DefaultOptions with { ReplicaCount = 2 });

await pool.ConsultAsync(":- dynamic(visit/1). visit(rome).");
await pool.AssertAsync("visit(paris)");          // a write transaction: one commit, seen by every replica

var seen = new List<string>();
foreach (Task<PrologAnswers> read in Enumerable.Range(0, 4).Select(_ => pool.QueryAllAsync("visit(X)").AsTask()))
{
    PrologAnswers answers = await read;         // reads run on the replicas in parallel
    seen.Add(string.Join(" ; ", answers.Select(a => a.Bindings["X"].ToString())));
}

bool retracted = await pool.RetractAsync("visit(rome)");
PrologAnswers after = await pool.QueryAllAsync("visit(X)");
Console.WriteLine($"reads: {string.Join(" | ", seen)}; retracted rome: {retracted}; now: {string.Join(" ; ", after)}");

bool ok = seen.All(s => s == "rome ; paris") && retracted && after is [{ Kind: PrologAnswerKind.Success } only]
    && only.Bindings["X"].ToString() == "paris";
Console.WriteLine(ok ? "quickstart: ok" : "quickstart: UNEXPECTED ANSWERS");
return ok ? 0 : 1;
