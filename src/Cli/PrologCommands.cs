using System.CommandLine;
using System.Diagnostics;
using CowWasm.Prolog;
using CowWasm.Runtime;
using CowWasm.Runtime.Native;

namespace CowWasm.Cli;

/// <summary>
/// <c>trealla-setup [variant flags]</c>: fetch, verify and compile the Trealla guest (cached), with progress; the flags
/// (<see cref="ArtifactFlags"/>) build the variants benchmarks compare against.
/// <c>prolog [--runtime wasmtime|native] [--snapshot FILE] [--consult TEXT]... GOAL...</c>: every answer of each goal, one line per goal
/// (<c>GOAL -> A1 ; A2</c>), on a plain instance or on a pool started from a snapshot.
/// </summary>
internal static class PrologCommands
{
    public static Command CreateSetup()
    {
        var flags = new ArtifactFlags();
        var command = new Command("trealla-setup",
            "Fetch (npm pack trealla@0.17.10), verify and compile the Trealla guest for the native runtime (cached; the first " +
            "build takes minutes). The variant flags build the variants benchmarks compare against, each a separate cache entry.");
        flags.AddTo(command);
        command.SetAction((parsed, cancellationToken) => SetupAsync(flags.Read(parsed), cancellationToken));
        return command;
    }

    public static Command CreateQuery()
    {
        var goals = new Argument<string[]>("GOAL") { Description = "Prolog goals, each run for every answer", Arity = ArgumentArity.ZeroOrMore };
        Option<GuestRuntime> runtime = RuntimeFlag.Create();
        var snapshot = new Option<FileInfo>("--snapshot")
        {
            Description = "start from this snapshot (PrologPool.SaveSnapshotAsync, POST /snapshot)",
            HelpName = "FILE",
        };
        snapshot.AcceptExistingOnly();
        var consults = new Option<string[]>("--consult")
        {
            Description = "program text to consult before the goals (repeatable)",
            HelpName = "TEXT",
        };
        var command = new Command("prolog",
            "Run Prolog goals and print every answer, one line per goal (GOAL -> A1 ; A2): on a plain instance, or on a pool " +
            "started from a snapshot.")
        {
            goals, runtime, snapshot, consults,
        };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(goals)?.Length ?? 0) == 0 && (result.GetValue(consults)?.Length ?? 0) == 0)
            {
                result.AddError("prolog takes at least one goal (or --consult).");
            }
        });
        command.SetAction((parsed, cancellationToken) => QueryAsync(parsed.GetValue(runtime), parsed.GetValue(snapshot)?.FullName,
            parsed.GetValue(consults) ?? [], parsed.GetValue(goals) ?? [], cancellationToken));
        return command;
    }

    private static async Task<int> SetupAsync(ArtifactOptions options, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using WasmModule module = await TreallaGuest.LoadAsync(options, new ConsoleProgress(), cancellationToken).ConfigureAwait(false);
        Artifact artifact = module.Artifact!; // loaded through the compiler, so it has one
        Console.WriteLine($"trealla ready in {clock.Elapsed.TotalSeconds:F1} s: {artifact.LibraryPath} " +
                          $"({artifact.LibraryBytes:N0} B, {(artifact.FromCache ? "cached" : $"compiled in {artifact.CompileTime.TotalSeconds:F0} s")})");
        return 0;
    }

    private static async Task<int> QueryAsync(GuestRuntime runtime, string? snapshot, string[] consults, string[] goals,
        CancellationToken cancellationToken)
    {
        using IGuestModule module = await TreallaGuest.LoadAsync(runtime, new ConsoleProgress(), cancellationToken).ConfigureAwait(false);
        await using PrologPool pool = snapshot is null
            ? PrologPool.Create(module, PrologPool.DefaultOptions with { ReplicaCount = 1 })
            : PrologPool.CreateFromSnapshot(module, snapshot, PrologPool.DefaultOptions with { ReplicaCount = 1 });
        foreach (string text in consults)
        {
            await pool.ConsultAsync(text, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        foreach (string goal in goals)
        {
            IReadOnlyList<PrologAnswer> answers = await pool.QueryAllAsync(goal, cancellationToken: cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"{goal} -> {string.Join(" ; ", answers)}");
        }

        return 0;
    }

    private sealed class ConsoleProgress : IProgress<string>
    {
        public void Report(string value) => Console.Error.WriteLine($"[trealla] {value}");
    }
}
